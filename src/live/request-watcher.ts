// The one store poller behind every live progress stream of this process. While a stream is
// open it reads, every pollMs, the `recent` newest requests of all tenants plus each request a
// status stream follows that is not among them (one read per request, however many streams
// follow it), and hands every request whose summary moved to the streams watching. So an
// open stream costs no store query of its own, and servers sharing one store see each other's
// changes without anything pushed between them. When the last stream closes, polling stops.
import type { RequestRecord, Store } from '../store/types.js';

export interface Watch {
  /** The request a status stream follows; null for a list stream (every recent request). */
  readonly requestId: string | null;
  /** The tenant key behind the stream when it can be revoked (not the admin, not open mode). */
  readonly tenantKey: string | null;
  /**
   * A request whose summary moved, with that summary (made once for all watches); null when
   * the followed request no longer exists.
   */
  changed(request: RequestRecord | null, summary: string): void;
  /** The stream's key was revoked. */
  revoked(): void;
}

export interface WatcherOptions {
  store: Store;
  pollMs: number;
  /** How many of the newest requests each poll reads. */
  recent: number;
  /** A request as clients see it (the JSON list streams send): a change is delivered only when it moves. */
  summary: (request: RequestRecord) => string;
  /** Tenant keys behind open streams are checked every this many polls. */
  keyCheckEvery?: number;
  /** A poll failed (first of a run of failures), or polls work again after failing. */
  onPollError?: (err: unknown) => void;
  onPollRecovered?: () => void;
}

interface Seen {
  version: number;
  summary: string;
}

export class RequestWatcher {
  readonly #opts: WatcherOptions;
  readonly #watches = new Set<Watch>();
  #seen = new Map<string, Seen>();
  #loop: Promise<void> | null = null;
  /** Resolves once the first poll of a run has read the store: the baseline changes are measured against. */
  #baseline: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  /** add() calls waiting for the baseline: the loop must not end under them. */
  #adding = 0;
  #polls = 0;
  #failing = false;
  #stopped = false;

  constructor(opts: WatcherOptions) {
    this.#opts = opts;
  }

  /** Open watches. */
  get size(): number {
    return this.#watches.size;
  }

  /** Whether the poller is running. */
  get running(): boolean {
    return this.#loop !== null;
  }

  /**
   * Registers a watch. It resolves once the watch is counted: from then on every change the
   * store shows is delivered to it, so a client that reads the current state after this (a
   * status page, a list) misses nothing. Returns the function that removes the watch.
   */
  async add(watch: Watch): Promise<() => void> {
    if (this.#stopped) throw new Error('the request watcher is stopped');
    if (this.#loop === null) {
      let ready!: () => void;
      this.#baseline = new Promise((resolve) => (ready = resolve));
      this.#loop = this.#run(ready);
    }
    this.#adding++;
    try {
      await this.#baseline;
    } finally {
      this.#adding--;
    }
    if (this.#stopped) throw new Error('the request watcher is stopped');
    this.#watches.add(watch);
    return () => {
      this.#watches.delete(watch);
    };
  }

  /** Stops polling for good; resolves when the poll in progress, if any, has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watches.clear();
    this.#wake?.();
    await this.#loop;
  }

  /** Resolves when the poller is idle (no watch left, or stopped). */
  async idle(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  async #run(baselineRead: () => void): Promise<void> {
    // The first poll only records what is there: a watch is added after it.
    let first = true;
    for (;;) {
      const started = Date.now();
      try {
        await this.#poll(first ? [] : [...this.#watches]);
      } catch (err) {
        this.#opts.onPollError?.(err); // a stream that threw while being handed a change: a bug, not a reason to stop
      }
      if (first) {
        first = false;
        baselineRead();
      }
      // Checked and cleared in one synchronous step, so add() never sees a loop about to end.
      if ((this.#watches.size === 0 && this.#adding === 0) || this.#stopped) {
        this.#loop = null;
        this.#seen.clear();
        return;
      }
      await this.#sleep(this.#opts.pollMs - (Date.now() - started));
    }
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#wake?.(), ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
    });
  }

  /**
   * One read of the store. `watches` are those registered before it started: a watch added
   * while it reads gets only what the next poll reads, which is never older than what its
   * client read after registering.
   */
  async #poll(watches: Watch[]): Promise<void> {
    const { store, summary } = this.#opts;
    let requests: Map<string, RequestRecord>;
    const gone = new Set<string>();
    try {
      const recent = await store.listRequests({ tenantId: null, limit: this.#opts.recent });
      requests = new Map(recent.items.map((r) => [r.id, r]));
      const missing = [...new Set(watches.flatMap((w) => (w.requestId !== null && !requests.has(w.requestId) ? [w.requestId] : [])))];
      const found = await Promise.all(missing.map((id) => store.getRequest(id)));
      missing.forEach((id, i) => (found[i] ? requests.set(id, found[i]) : gone.add(id)));
      if (++this.#polls % (this.#opts.keyCheckEvery ?? 4) === 0) await this.#checkKeys(watches);
      if (this.#failing) {
        this.#failing = false;
        this.#opts.onPollRecovered?.();
      }
    } catch (err) {
      if (!this.#failing) this.#opts.onPollError?.(err);
      this.#failing = true;
      return;
    }

    const moved = new Map<string, { request: RequestRecord; summary: string }>();
    const seen = new Map<string, Seen>();
    for (const r of requests.values()) {
      const before = this.#seen.get(r.id);
      // The version grows with every visible change: an unchanged one needs no rendering.
      const now = before?.version === r.version ? before : { version: r.version, summary: summary(r) };
      if (now.summary !== before?.summary) moved.set(r.id, { request: r, summary: now.summary });
      seen.set(r.id, now);
    }
    this.#seen = seen; // bounded: what this poll read
    if (watches.length === 0) return;

    for (const w of watches) {
      if (!this.#watches.has(w)) continue; // removed while the poll read
      if (w.requestId === null) moved.forEach((m) => w.changed(m.request, m.summary));
      else if (gone.has(w.requestId)) w.changed(null, '');
      else {
        const m = moved.get(w.requestId);
        if (m) w.changed(m.request, m.summary);
      }
    }
  }


  /** Ends the watches of tenant keys revoked since they opened (one store read for all of them). */
  async #checkKeys(watches: Watch[]): Promise<void> {
    if (!watches.some((w) => w.tenantKey !== null)) return;
    const live = new Set((await this.#opts.store.listKeys()).map((k) => k.id));
    for (const w of watches) if (w.tenantKey !== null && !live.has(w.tenantKey)) w.revoked();
  }
}
