// The loop every store-backed worker runs (the pipeline runner's items, the webhook
// dispatcher's deliveries), modelled on BullMQ's Worker: claim jobs with a lease while there is
// room, work on each, renew the leases of the jobs held every third of the lease, look again at
// once when woken, and on stop let the jobs in hand finish within a grace period before aborting
// them. What a job is, how it is claimed and renewed, and what working on it means are the
// caller's; the worker only runs the loop.

export interface JobContext {
  /** Aborted when stop() begins: finish what is under way, start nothing new. */
  readonly draining: AbortSignal;
  /** Aborted when the worker stops and the grace period ran out. */
  readonly stopped: AbortSignal;
  /** Aborted when this job's lease is lost (another worker may claim it now). */
  readonly lost: AbortSignal;
  /** When this job's lease runs out, as far as this worker knows (claim or last renewal). */
  leaseUntil(): number;
}

export interface LeasedWorkerOptions<J> {
  /** How long a claim or a renewal holds a job. */
  leaseMs: number;
  /** Renewals come every leaseMs / 3, but never more often than this. Default 100. */
  minRenewMs?: number;
  /** How long to wait before looking for jobs again after a claim that left room. */
  idleMs: number;
  /** Jobs held at once (being worked on or waiting inside process()). */
  capacity: number;
  /**
   * While jobs are held, claim only once this much room is free (default 1): one claim (one store
   * commit) for a batch of finished jobs instead of one per job. With nothing held, any room is claimed.
   */
  claimBatch?: number;
  idOf(job: J): string;
  /** Claims at most `limit` jobs with a lease of leaseMs from `now`. */
  claim(limit: number, now: number): Promise<J[]>;
  /** Works on one job; the job is held until the returned promise settles. */
  process(job: J, ctx: JobContext): Promise<void>;
  /** Renews the leases of `ids`; returns the ids still held. */
  renew(ids: string[], now: number): Promise<Iterable<string>>;
  /** A claim came back with jobs (before they start). */
  onClaimed?(jobs: J[]): void;
  onClaimError(err: unknown): void;
  onRenewError(err: unknown): void;
  /** The abort reason given to jobs still in hand when the grace period ends. */
  stopReason?: () => unknown;
  now?: () => number;
}

interface HeldJob {
  leaseUntil: number;
  lost: AbortController;
}

export class LeasedWorker<J> {
  readonly #opts: LeasedWorkerOptions<J>;
  readonly #now: () => number;
  readonly #held = new Map<string, HeldJob>();
  readonly #tasks = new Set<Promise<void>>();
  #drain = new AbortController();
  #stop = new AbortController();
  #stopping = false;
  #loop: Promise<void> | null = null;
  #renewTimer: ReturnType<typeof setInterval> | null = null;
  /** Ends the idle wait (wake, stop). */
  #wakeUp: (() => void) | null = null;
  /** Ends the wait for a free slot (a job settled, stop). */
  #slotFreed: (() => void) | null = null;
  /** A wake() that came while no wait was in progress (mid-claim): skip the next idle wait. */
  #woken = false;

  constructor(opts: LeasedWorkerOptions<J>) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Jobs held now. */
  get held(): number {
    return this.#held.size;
  }

  get running(): boolean {
    return this.#loop !== null;
  }

  /** Starts the loop and the renewals. Idempotent; a stopped worker may be started again. */
  start(): void {
    if (this.#loop) return;
    this.#stopping = false;
    if (this.#drain.signal.aborted) this.#drain = new AbortController();
    if (this.#stop.signal.aborted) this.#stop = new AbortController();
    const every = Math.max(this.#opts.minRenewMs ?? 100, Math.floor(this.#opts.leaseMs / 3));
    this.#renewTimer = setInterval(() => void this.#renew(), every);
    this.#renewTimer.unref?.();
    this.#loop = this.#run();
  }

  /** Looks for jobs now instead of after the idle wait. Cheap; never blocks. */
  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /**
   * Stops claiming; tells the jobs in hand (their `draining` signal), waits up to graceMs for
   * them to settle, then aborts them (their `stopped` signal) and waits for them to return. Jobs claimed by a claim that was under way
   * are not started: they are left to their lease (or to the caller's release).
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.#loop) return;
    this.#stopping = true;
    this.#wakeUp?.();
    this.#slotFreed?.();
    await this.#loop;
    this.#drain.abort(new Error('stopping'));
    const settled = Promise.allSettled([...this.#tasks]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      settled.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#stop.abort(this.#opts.stopReason?.() ?? new Error('shutting down'));
      await settled;
    }
    if (this.#renewTimer) clearInterval(this.#renewTimer);
    this.#renewTimer = null;
    this.#loop = null;
  }

  async #run(): Promise<void> {
    const o = this.#opts;
    while (!this.#stopping) {
      const room = o.capacity - this.#held.size;
      const batch = Math.min(o.claimBatch ?? 1, o.capacity);
      if (room <= 0 || (room < batch && this.#held.size > 0)) {
        await new Promise<void>((resolve) => (this.#slotFreed = resolve));
        this.#slotFreed = null;
        continue;
      }
      this.#woken = false;
      let claimed: J[] = [];
      const now = this.#now();
      try {
        claimed = await o.claim(room, now);
      } catch (err) {
        o.onClaimError(err);
      }
      if (claimed.length > 0) o.onClaimed?.(claimed);
      // stop() began while claiming: it no longer waits for these, so do not start work that
      // would outlive it.
      if (this.#stopping) break;
      for (const job of claimed) this.#start(job, now + o.leaseMs);
      // A full claim means more may be waiting: look again at once (after a slot frees).
      if (claimed.length === room) continue;
      if (!this.#woken && !this.#stopping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, o.idleMs);
          this.#wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wakeUp = null;
      }
    }
  }

  #start(job: J, leaseUntil: number): void {
    const id = this.#opts.idOf(job);
    const held: HeldJob = { leaseUntil, lost: new AbortController() };
    this.#held.set(id, held);
    const ctx: JobContext = { draining: this.#drain.signal, stopped: this.#stop.signal, lost: held.lost.signal, leaseUntil: () => held.leaseUntil };
    const task: Promise<void> = Promise.resolve()
      .then(() => this.#opts.process(job, ctx))
      .catch(() => {}) // process() reports its own failures; the job just ends
      .finally(() => {
        this.#tasks.delete(task);
        if (this.#held.get(id) === held) this.#held.delete(id);
        this.#slotFreed?.();
      });
    this.#tasks.add(task);
  }

  async #renew(): Promise<void> {
    if (this.#held.size === 0) return;
    const o = this.#opts;
    const entries = [...this.#held.entries()];
    const now = this.#now();
    try {
      const kept = new Set(await o.renew(entries.map(([id]) => id), now));
      for (const [id, held] of entries) {
        if (kept.has(id)) held.leaseUntil = now + o.leaseMs;
        else held.lost.abort(new Error('lease lost'));
      }
    } catch (err) {
      o.onRenewError(err);
      // A lease that runs out before the next renewal can be claimed by another worker: give
      // the job up rather than have two work on it at once.
      const soon = this.#now() + Math.max(o.minRenewMs ?? 100, Math.floor(o.leaseMs / 3)) * 1.5;
      for (const [, held] of entries) if (held.leaseUntil <= soon) held.lost.abort(new Error('lease expired'));
    }
  }
}
