import { CompressPool } from "./pool.js";
class TimedCompressPool extends CompressPool {
  #onTask;
  constructor(options, onTask) {
    super(options);
    this.#onTask = onTask;
  }
  async compress(bytes, signal) {
    const started = performance.now();
    try {
      const result = await super.compress(bytes, signal);
      this.#onTask({ format: result.format, ok: true, seconds: (performance.now() - started) / 1e3 });
      return result;
    } catch (err) {
      if (!signal?.aborted) this.#onTask({ format: null, ok: false, seconds: (performance.now() - started) / 1e3 });
      throw err;
    }
  }
}
export {
  TimedCompressPool
};
//# sourceMappingURL=timed-pool.js.map
