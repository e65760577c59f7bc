import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
function resolveWorkerFile(moduleUrl = import.meta.url) {
  const here = fileURLToPath(moduleUrl);
  const root = resolve(dirname(here), "..", "..");
  if (here.endsWith(".js")) return join(root, "workers", "compress.js");
  const g = globalThis;
  if (g.Bun !== void 0 || g.Deno !== void 0) return join(root, "workers", "compress.ts");
  const built = join(root, "dist", "workers", "compress.js");
  if (!existsSync(built)) throw new Error(`compress worker not built: ${built} is missing (run "npm run build")`);
  return built;
}
class CompressPool {
  constructor(options) {
    this.options = options;
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new Error("CompressPool: threads must be a positive integer");
    this.threads = options.threads;
    this.capacity = options.threads + Math.max(0, options.maxQueue ?? options.threads * 2);
    const workerData = { codecRunLog: options.codecRunLog };
    this.piscina = new Piscina({
      filename: pathToFileURL(options.workerFile ?? resolveWorkerFile()).href,
      minThreads: options.threads,
      maxThreads: options.threads,
      concurrentTasksPerWorker: 1,
      idleTimeout: 6e4,
      workerData
    });
    this.piscina.on("error", () => {
    });
  }
  options;
  piscina;
  capacity;
  threads;
  inFlight = 0;
  waiters = [];
  completed = 0;
  failed = 0;
  closed = false;
  warm;
  /** Resolves when a compress() call would start without waiting for a slot. */
  waitForCapacity() {
    if (this.closed) return Promise.reject(new Error("compress pool is closed"));
    if (this.inFlight < this.capacity && this.waiters.every((w) => !w.take)) return Promise.resolve();
    return new Promise((resolve2, reject) => this.waiters.push({ take: false, resolve: resolve2, reject }));
  }
  /**
   * Compresses one image in a worker thread. The bytes are copied into the task (the caller's
   * buffer is left intact) and the output buffer is transferred back, not copied. Rejects with a
   * short message for unsupported formats, too many pixels, undecodable input and codec errors.
   */
  async compress(bytes, signal) {
    await this.acquire(signal);
    try {
      const own = bytes.slice();
      const task = { bytes: own, maxPixels: this.options.maxPixels, jpegQuality: this.options.jpegQuality };
      const result = await this.piscina.run(task, { signal, transferList: [own.buffer] });
      this.completed++;
      return result;
    } catch (err) {
      this.failed++;
      throw err;
    } finally {
      this.release();
    }
  }
  stats() {
    const piscinaQueued = this.piscina.queueSize;
    return {
      threads: this.threads,
      running: Math.max(0, this.inFlight - piscinaQueued),
      queued: piscinaQueued + this.waiters.filter((w) => w.take).length,
      utilization: this.piscina.utilization,
      completed: this.completed,
      failed: this.failed
    };
  }
  /**
   * Resolves once a thread has loaded every codec; rejects if they cannot load or the pool is
   * closed. The first success is remembered, so readiness probes never queue behind images
   * (Piscina replaces dead threads itself).
   */
  ready() {
    if (this.closed) return Promise.reject(new Error("compress pool is closed"));
    this.warm ??= this.piscina.run({ warmUp: true }).then(
      () => void 0,
      (err) => {
        this.warm = void 0;
        throw err;
      }
    );
    return this.warm;
  }
  /** Stops accepting work, lets running tasks finish, and ends the threads. */
  async close() {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new Error("compress pool is closed"));
    await this.piscina.close();
  }
  acquire(signal) {
    if (this.closed) return Promise.reject(new Error("compress pool is closed"));
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error("aborted"));
    if (this.inFlight < this.capacity && this.waiters.length === 0) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve2, reject) => {
      const waiter = {
        take: true,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve2();
        },
        reject
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason ?? new Error("aborted"));
        this.pump();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }
  release() {
    this.inFlight--;
    this.pump();
  }
  pump() {
    while (this.waiters.length > 0 && this.inFlight < this.capacity) {
      const w = this.waiters.shift();
      if (w.take) this.inFlight++;
      w.resolve();
    }
  }
}
export {
  CompressPool,
  resolveWorkerFile
};
//# sourceMappingURL=pool.js.map
