// Removes output images no request refers to, never before BLOB_GRACE_SECONDS after they were
// last written: a request being processed right now that makes the same (content-addressed)
// output writes it again, which restarts its grace, so it cannot lose it.
//
// Two ways in: the outputs of a deleted request are checked once their grace has passed
// (within a few seconds of it, by a timer here), and a sweep over all of storage (run by the
// retention job, under its lock) finds files no request refers to, left by a crash between
// writing a blob and recording it, or by a process that died before its timer ran.
import type { Logger } from '../log.js';
import type { BlobStorage } from '../storage/types.js';
import type { Store } from '../store/types.js';

export interface OutputCleanupOptions {
  store: Store;
  storage: BlobStorage;
  log: Logger;
  graceMs: number;
  /** Told about every output removed (metrics). */
  onRemoved?: (n: number) => void;
}

/** Keys are checked against the store this many at a time. */
const BATCH = 500;

export class OutputCleanup {
  readonly #opts: OutputCleanupOptions;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #stopped = false;

  constructor(opts: OutputCleanupOptions) {
    this.#opts = opts;
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  /** Checks these outputs (of a deleted request) once their grace has passed. */
  schedule(keys: string[]): void {
    if (keys.length === 0 || this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.removeUnreferenced(keys).catch((err) => this.#opts.log.warn({ err }, 'output clean-up failed'));
    }, this.#opts.graceMs + 1_000);
    timer.unref?.();
    this.#timers.add(timer);
  }

  /** Removes those of `keys` no request refers to and not written within the grace; returns how many. */
  async removeUnreferenced(keys: string[], now = Date.now()): Promise<number> {
    const { store, storage, graceMs } = this.#opts;
    let removed = 0;
    for (let i = 0; i < keys.length; i += BATCH) {
      const batch = keys.slice(i, i + BATCH);
      const used = await store.referencedOutputs(batch);
      for (const key of batch) {
        if (used.has(key)) continue;
        const writtenAt = await storage.modifiedAt(key);
        if (writtenAt === null || writtenAt > now - graceMs) continue;
        await storage.remove(key);
        removed++;
      }
    }
    if (removed) {
      this.#opts.log.info({ removed }, 'removed outputs no request refers to');
      this.#opts.onRemoved?.(removed);
    }
    return removed;
  }

  /** Looks at every stored output; removes the unreferenced ones past their grace. */
  async sweep(now = Date.now()): Promise<number> {
    let removed = 0;
    let batch: string[] = [];
    for await (const { key, modifiedAt } of this.#opts.storage.list()) {
      if (this.#stopped) break;
      if (modifiedAt > now - this.#opts.graceMs) continue;
      batch.push(key);
      if (batch.length >= BATCH) {
        removed += await this.removeUnreferenced(batch, now);
        batch = [];
      }
    }
    return removed + (await this.removeUnreferenced(batch, now));
  }
}
