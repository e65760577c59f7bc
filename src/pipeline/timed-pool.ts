// A CompressPool that reports how long each image spent in the compress stage (metrics).
import { CompressPool, type CompressPoolOptions, type CompressResult } from './pool.js';

export interface CompressTiming {
  /** Output format; null when compression failed. */
  format: string | null;
  ok: boolean;
  /** From the call to the result: waiting for a thread plus decode/encode. */
  seconds: number;
}

export class TimedCompressPool extends CompressPool {
  readonly #onTask: (t: CompressTiming) => void;

  constructor(options: CompressPoolOptions, onTask: (t: CompressTiming) => void) {
    super(options);
    this.#onTask = onTask;
  }

  override async compress(bytes: Uint8Array, signal?: AbortSignal): Promise<CompressResult> {
    const started = performance.now();
    try {
      const result = await super.compress(bytes, signal);
      this.#onTask({ format: result.format, ok: true, seconds: (performance.now() - started) / 1000 });
      return result;
    } catch (err) {
      if (!signal?.aborted) this.#onTask({ format: null, ok: false, seconds: (performance.now() - started) / 1000 });
      throw err;
    }
  }
}
