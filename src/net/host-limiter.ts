// A limiter for outbound connections: at most `global` slots taken at once, and at most `perHost`
// for one destination. The transport takes a slot keyed on the IP address it is about to connect
// to (after DNS), so two names for one machine share that machine's budget.
//
// Waiters are served in arrival order (FIFO) among those that can run: a waiter whose key is at
// its limit does not hold up waiters for other keys, and never loses its place in the line for
// its own key. Per-key bookkeeping is deleted as soon as a key has nothing running, so the map
// never grows with the number of distinct destinations seen.

export interface LimiterOptions {
  /** DOWNLOAD_CONCURRENCY */
  global: number;
  /** DOWNLOAD_PER_HOST */
  perHost: number;
}

/** Gives a slot back. Calling it more than once has no further effect. */
export type Release = () => void;

interface Waiter {
  key: string;
  grant: () => void;
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
  private readonly runningByKey = new Map<string, number>();
  private readonly queue: Waiter[] = [];

  constructor(opts: LimiterOptions) {
    if (!(opts.global >= 1) || !(opts.perHost >= 1)) throw new RangeError('limiter limits must be >= 1');
    this.global = Math.floor(opts.global);
    this.perHost = Math.floor(opts.perHost);
  }

  /** Slots taken now. */
  get active(): number {
    return this.running;
  }

  /** Waiters for a slot. */
  get pending(): number {
    return this.queue.length;
  }

  /** Slots taken now for `key`. */
  activeFor(key: string): number {
    return this.runningByKey.get(normaliseKey(key)) ?? 0;
  }

  /** Slots taken now for `key` plus the waiters for it. */
  loadFor(key: string): number {
    const k = normaliseKey(key);
    return this.activeFor(k) + this.queue.filter((w) => w.key === k).length;
  }

  /** Keys with a slot taken (the size of the per-key map; for tests and metrics). */
  get trackedHosts(): number {
    return this.runningByKey.size;
  }

  /**
   * Resolves with a release function once a global slot and a slot for `key` (lower-cased) are
   * free. If `signal` fires while waiting, rejects with LimiterAbortedError and gives up the place
   * in line.
   */
  acquire(key: string, signal?: AbortSignal): Promise<Release> {
    const k = normaliseKey(key);
    if (signal?.aborted) return Promise.reject(new LimiterAbortedError());
    // After every release the queue is drained, so every queued waiter is blocked (global limit
    // or its own key's limit): a newcomer that can start now overtakes nobody it should not.
    if (this.canStart(k)) return Promise.resolve(this.take(k));
    return new Promise<Release>((resolve, reject) => {
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i !== -1) this.queue.splice(i, 1);
        reject(new LimiterAbortedError());
      };
      const waiter: Waiter = {
        key: k,
        grant: () => resolve(this.take(k)),
        dispose: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** Runs `fn` holding a slot for `key` (see acquire); the slot is given back when `fn` settles. */
  async run<T>(key: string, fn: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(key, signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private canStart(key: string): boolean {
    return this.running < this.global && (this.runningByKey.get(key) ?? 0) < this.perHost;
  }

  private take(key: string): Release {
    this.running++;
    this.runningByKey.set(key, (this.runningByKey.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release(key);
    };
  }

  private release(key: string): void {
    this.running--;
    const n = (this.runningByKey.get(key) ?? 1) - 1;
    if (n <= 0) this.runningByKey.delete(key);
    else this.runningByKey.set(key, n);
    this.drain();
  }

  /** Grants the earliest waiters that can run now. */
  private drain(): void {
    for (let i = 0; i < this.queue.length && this.running < this.global; ) {
      const w = this.queue[i]!;
      if (this.canStart(w.key)) {
        this.queue.splice(i, 1);
        w.dispose();
        // take() counts the slot synchronously, before the waiter's continuation runs.
        w.grant();
      } else {
        i++;
      }
    }
  }
}

function normaliseKey(key: string): string {
  return key.toLowerCase();
}
