class LimiterAbortedError extends Error {
  name = "LimiterAbortedError";
  constructor() {
    super("aborted while waiting for a download slot");
  }
}
class HostLimiter {
  global;
  perHost;
  running = 0;
  runningByHost = /* @__PURE__ */ new Map();
  queue = [];
  constructor(opts) {
    if (!(opts.global >= 1) || !(opts.perHost >= 1)) throw new RangeError("limiter limits must be >= 1");
    this.global = Math.floor(opts.global);
    this.perHost = Math.floor(opts.perHost);
  }
  /** Tasks running now. */
  get active() {
    return this.running;
  }
  /** Tasks waiting for a slot. */
  get pending() {
    return this.queue.length;
  }
  /** Tasks running now for `host`. */
  activeFor(host) {
    return this.runningByHost.get(normaliseHost(host)) ?? 0;
  }
  /** Hosts with something running (the size of the per-host map; for tests and metrics). */
  get trackedHosts() {
    return this.runningByHost.size;
  }
  /**
   * Runs `fn` when a global slot and a slot for `host` are free. `host` is a host name
   * (e.g. `new URL(u).hostname`); it is lower-cased. If `signal` fires while waiting, rejects
   * with LimiterAbortedError and gives up the place in line (a running task is not interrupted
   * by the limiter: pass the same signal to `fn`'s work).
   */
  run(host, fn, signal) {
    const key = normaliseHost(host);
    if (signal?.aborted) return Promise.reject(new LimiterAbortedError());
    if (this.canStart(key)) return this.execute(key, fn);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i !== -1) this.queue.splice(i, 1);
        reject(new LimiterAbortedError());
      };
      const waiter = {
        host: key,
        start: () => {
          this.execute(key, fn).then(resolve, reject);
        },
        dispose: () => signal?.removeEventListener("abort", onAbort)
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
    });
  }
  canStart(host) {
    return this.running < this.global && (this.runningByHost.get(host) ?? 0) < this.perHost;
  }
  async execute(host, fn) {
    this.running++;
    this.runningByHost.set(host, (this.runningByHost.get(host) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      this.release(host);
    }
  }
  release(host) {
    this.running--;
    const n = (this.runningByHost.get(host) ?? 1) - 1;
    if (n <= 0) this.runningByHost.delete(host);
    else this.runningByHost.set(host, n);
    this.drain();
  }
  /** Starts the earliest waiters that can run now. */
  drain() {
    for (let i = 0; i < this.queue.length && this.running < this.global; ) {
      const w = this.queue[i];
      if (this.canStart(w.host)) {
        this.queue.splice(i, 1);
        w.dispose();
        w.start();
      } else {
        i++;
      }
    }
  }
}
function normaliseHost(host) {
  return host.toLowerCase();
}
export {
  HostLimiter,
  LimiterAbortedError
};
//# sourceMappingURL=concurrency.js.map
