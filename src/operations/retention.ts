// The data's upkeep, by one runner at a time across all processes (a lock in the store):
// deletes final requests older than REQUEST_RETENTION_DAYS in bounded batches, finishes
// deletions a crash interrupted, and now and then sweeps storage for orphaned outputs.
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import type { OutputCleanup } from './output-cleanup.js';
import type { RequestActions } from './request-actions.js';

export interface RetentionOptions {
  store: Store;
  actions: RequestActions;
  cleanup: OutputCleanup;
  log: Logger;
  owner: string;
  /** null: keep requests forever (only interrupted deletions are finished). */
  retentionDays: number | null;
  /** How often it runs (default 60 s). */
  everyMs?: number;
  /** Requests deleted per run at most (default 200). */
  batch?: number;
  /** How often storage is swept for outputs no request refers to (default hourly). */
  sweepEveryMs?: number;
}

export class Retention {
  readonly #opts: RetentionOptions;
  #timer: ReturnType<typeof setInterval> | null = null;
  #running: Promise<void> | null = null;
  /** The first sweep comes one interval after start, not with every process start-up. */
  #lastSweep = Date.now();

  constructor(opts: RetentionOptions) {
    this.#opts = opts;
  }

  start(): void {
    const every = this.#opts.everyMs ?? 60_000;
    const tick = () => {
      if (this.#running) return;
      this.#running = this.runOnce().then(() => {}, (err) => this.#opts.log.warn({ err }, 'retention run failed')).finally(() => { this.#running = null; });
    };
    this.#timer = setInterval(tick, every);
    this.#timer.unref?.();
    tick();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
  }

  /** One run if this process holds the lock; returns how many requests it deleted. */
  async runOnce(now = Date.now()): Promise<number> {
    const { store, actions, cleanup, log, owner, retentionDays } = this.#opts;
    if (!(await store.tryLock('retention', owner, 2 * (this.#opts.everyMs ?? 60_000), now))) return 0;
    cleanup.schedule(await store.purgeDeleting());
    if (now - this.#lastSweep >= (this.#opts.sweepEveryMs ?? 3_600_000)) {
      this.#lastSweep = now;
      await cleanup.sweep(now);
    }
    if (retentionDays === null) return 0;
    const expired = await store.listExpiredRequests(now - retentionDays * 86_400_000, this.#opts.batch ?? 200);
    let deleted = 0;
    for (const id of expired) {
      try {
        await actions.delete(id, 'retention');
        deleted++;
      } catch (err) {
        log.warn({ err, request_id: id }, 'retention could not delete a request');
      }
    }
    if (deleted) log.info({ deleted, retention_days: retentionDays }, 'deleted requests past their retention');
    return deleted;
  }
}
