// A limiter for outbound work: at most `global` tasks at once, and at most `perHost` per host.
//
// Waiters are served in arrival order (FIFO) among those that can run: a waiter whose host is
// at its limit does not hold up waiters for other hosts, and never loses its place in the line
// for its own host. Per-host bookkeeping is deleted as soon as a host has nothing running, so
// the map never grows with the number of distinct hosts seen.

export interface LimiterOptions {
  /** DOWNLOAD_CONCURRENCY */
  global: number;
  /** DOWNLOAD_PER_HOST */
  perHost: number;
}

interface Waiter {
  host: string;
  start: () => void;
  /** detaches the abort listener */
  dispose: () => void;
}

export class LimiterAbortedError extends Error {
  override readonly name = 'LimiterAbortedError';
  constructor() {
    super('aborted while waiting for a download slot');
  }
}

export class HostLimiter {
  readonly global: number;
  readonly perHost: number;
  private running = 0;
  private readonly runningByHost = new Map<string, number>();
  private readonly queue: Waiter[] = [];

  constructor(opts: LimiterOptions) {
    if (!(opts.global >= 1) || !(opts.perHost >= 1)) throw new RangeError('limiter limits must be >= 1');
    this.global = Math.floor(opts.global);
    this.perHost = Math.floor(opts.perHost);
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get pending(): number {
    return this.queue.length;
  }

  /** Tasks running now for `host`. */
  activeFor(host: string): number {
    return this.runningByHost.get(normaliseHost(host)) ?? 0;
  }

  /** Hosts with something running (the size of the per-host map; for tests and metrics). */
  get trackedHosts(): number {
    return this.runningByHost.size;
  }

  /**
   * Runs `fn` when a global slot and a slot for `host` are free. `host` is a host name
   * (e.g. `new URL(u).hostname`); it is lower-cased. If `signal` fires while waiting, rejects
   * with LimiterAbortedError and gives up the place in line (a running task is not interrupted
   * by the limiter: pass the same signal to `fn`'s work).
   */
  run<T>(host: string, fn: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    const key = normaliseHost(host);
    if (signal?.aborted) return Promise.reject(new LimiterAbortedError());
    // After every release the queue is drained, so every queued waiter is blocked (global limit
    // or its own host's limit): a newcomer that can start now overtakes nobody it should not.
    if (this.canStart(key)) return this.execute(key, fn);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i !== -1) this.queue.splice(i, 1);
        reject(new LimiterAbortedError());
      };
      const waiter: Waiter = {
        host: key,
        start: () => {
          this.execute(key, fn).then(resolve, reject);
        },
        dispose: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private canStart(host: string): boolean {
    return this.running < this.global && (this.runningByHost.get(host) ?? 0) < this.perHost;
  }

  private async execute<T>(host: string, fn: () => Promise<T> | T): Promise<T> {
    this.running++;
    this.runningByHost.set(host, (this.runningByHost.get(host) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      this.release(host);
    }
  }

  private release(host: string): void {
    this.running--;
    const n = (this.runningByHost.get(host) ?? 1) - 1;
    if (n <= 0) this.runningByHost.delete(host);
    else this.runningByHost.set(host, n);
    this.drain();
  }

  /** Starts the earliest waiters that can run now. */
  private drain(): void {
    for (let i = 0; i < this.queue.length && this.running < this.global; ) {
      const w = this.queue[i]!;
      if (this.canStart(w.host)) {
        this.queue.splice(i, 1);
        w.dispose();
        // execute() increments counters synchronously before awaiting fn.
        w.start();
      } else {
        i++;
      }
    }
  }
}

function normaliseHost(host: string): string {
  return host.toLowerCase();
}
