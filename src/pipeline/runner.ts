// A pipeline runner: claims work items from the store with leases and takes each one through
// fetch → compress → write blob → record the outcome. Any number of runners, in one process or
// many, share the work through the store alone.
import { createHash, randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { downloadIfChanged, downloadImage, FetchError, HostLimiter, redactUrl } from '../net/index.js';
import { blobKey, contentTypeOf, type BlobStorage } from '../storage/types.js';
import type { OutputOptions } from '../codecs/output-options.js';
import { compressOptionsOf } from '../ingest/request-options.js';
import type { CompleteInput, CompleteResult, ItemOutcome, ItemRecord, Store } from '../store/types.js';
import type { CompressPool } from './pool.js';

export interface RunnerDeps {
  config: Config;
  store: Store;
  storage: BlobStorage;
  pool: CompressPool;
  log: Logger;
  /** Called after a step that wrote an event, so deliveries start without waiting for a poll. */
  onEvent?: () => void;
  /** Observes every finished item (metrics). */
  onItem?: (item: ItemRecord, outcome: ItemOutcome, ms: number) => void;
  /** How long to wait before looking for work again when there was none. */
  idlePollMs?: number;
}

/** Completions written in one store commit at most. */
const COMPLETION_BATCH = 64;

interface RequestContext {
  tenantId: string;
  options: OutputOptions;
  settings: string;
}

export class PipelineRunner {
  readonly owner = `runner-${randomUUID()}`;
  readonly #deps: RunnerDeps;
  readonly #limiter: HostLimiter;
  /** Items in flight, with the controller that cancels them if their lease is lost. */
  readonly #inFlight = new Map<string, AbortController>();
  readonly #completions: Array<{ input: CompleteInput; resolve: (r: CompleteResult) => void; reject: (err: unknown) => void }> = [];
  #writingCompletions = false;
  /** Tenant and output options of the requests being worked on (fixed at upload, so cached). */
  readonly #requests = new Map<string, RequestContext>();
  /** When each in-flight item's lease runs out, as far as this runner knows (claim or last renewal). */
  readonly #leaseUntil = new Map<string, number>();
  /** Fetch + compress slots: downloads beyond this wait until the pool drains. */
  readonly #capacity: number;
  #stopping = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  /** A wake() that came while no wait was in progress (mid-claim): skip the next idle wait. */
  #woken = false;
  #slotFreed: (() => void) | null = null;
  #renewTimer: ReturnType<typeof setInterval> | null = null;

  constructor(deps: RunnerDeps) {
    this.#deps = deps;
    const { DOWNLOAD_CONCURRENCY, DOWNLOAD_PER_HOST, WORKER_THREADS } = deps.config;
    this.#limiter = new HostLimiter({ global: DOWNLOAD_CONCURRENCY, perHost: DOWNLOAD_PER_HOST });
    this.#capacity = DOWNLOAD_CONCURRENCY + WORKER_THREADS * 2;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  start(): void {
    if (this.#loop) return;
    this.#renewTimer = setInterval(() => void this.#renew(), this.#renewEveryMs());
    this.#renewTimer.unref?.();
    this.#loop = this.#run().catch((err) => this.#deps.log.fatal({ err }, 'pipeline runner stopped unexpectedly'));
  }

  /** Looks for work now instead of at the next poll (a request was just committed). */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /**
   * Stops claiming; waits up to graceMs for items in flight to finish, then cancels the rest
   * and hands them back to the store for another runner.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    this.#slotFreed?.();
    const deadline = Date.now() + graceMs;
    while (this.#inFlight.size > 0 && Date.now() < deadline) await sleep(50);
    for (const controller of this.#inFlight.values()) controller.abort(new Error('shutting down'));
    await this.#loop;
    if (this.#renewTimer) clearInterval(this.#renewTimer);
    const released = await this.#deps.store.releaseItems(this.owner);
    if (released) this.#deps.log.info({ released }, 'released unfinished items for another runner');
  }

  async #run(): Promise<void> {
    const { store, config, log } = this.#deps;
    const idle = this.#deps.idlePollMs ?? 500;
    while (!this.#stopping) {
      const room = this.#capacity - this.#inFlight.size;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.#slotFreed = resolve));
        continue;
      }
      let claimed: ItemRecord[] = [];
      this.#woken = false;
      try {
        claimed = await store.claimItems({ owner: this.owner, limit: room, leaseMs: config.LEASE_MS, now: Date.now() });
      } catch (err) {
        log.error({ err }, 'claiming work failed; retrying');
      }
      // A claim may have started a request (processing.started): let the dispatcher know.
      if (claimed.length > 0) this.#deps.onEvent?.();
      // stop() began while claiming: it no longer waits for or aborts these, so leave them to
      // releaseItems() instead of starting work that would outlive the shutdown.
      if (this.#stopping) break;
      for (const item of claimed) this.#process(item);
      if (claimed.length === 0 && !this.#woken) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, idle);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = null;
      }
    }
    while (this.#inFlight.size > 0) await sleep(20);
  }

  #process(item: ItemRecord): void {
    const controller = new AbortController();
    this.#inFlight.set(item.id, controller);
    this.#leaseUntil.set(item.id, item.leaseUntil ?? Date.now() + this.#deps.config.LEASE_MS);
    const started = Date.now();
    void this.#handle(item, controller.signal)
      .then(async (outcome) => {
        if (controller.signal.aborted) return; // lease lost or shutting down: someone else finishes it
        const result = await this.#complete({ itemId: item.id, owner: this.owner, outcome, now: Date.now() });
        if (!result.applied) this.#deps.log.warn({ request_id: item.requestId, url: redactUrl(item.url) }, 'lease lost before completion; result discarded');
        if (result.finalStatus) {
          this.#deps.log.info({ request_id: item.requestId, status: result.finalStatus }, 'request finished');
          this.#deps.onEvent?.();
        }
        this.#deps.onItem?.(item, outcome, Date.now() - started);
      })
      .catch((err) => this.#deps.log.error({ err, request_id: item.requestId, url: redactUrl(item.url) }, 'recording an item failed; its lease will expire and it will be retried'))
      .finally(() => {
        this.#inFlight.delete(item.id);
        this.#leaseUntil.delete(item.id);
        this.#slotFreed?.();
        this.#slotFreed = null;
      });
  }

  /** Fetch, compress, store. Every failure becomes this item's error, never the process's. */
  async #handle(item: ItemRecord, signal: AbortSignal): Promise<ItemOutcome> {
    const { config, pool, storage, store } = this.#deps;
    const givenUp = giveUpReason(item, config.MAX_ITEM_ATTEMPTS);
    if (givenUp) return { ok: false, error: givenUp };
    try {
      const { tenantId, options, settings } = await this.#requestOf(item.requestId);
      const fetchOptions = {
        allowlist: config.FETCH_ALLOWLIST,
        connectTimeoutMs: config.FETCH_CONNECT_TIMEOUT_MS,
        timeoutMs: config.FETCH_TIMEOUT_MS,
        retries: config.FETCH_RETRIES,
        retryBaseMs: config.FETCH_RETRY_BASE_MS,
        maxBytes: config.MAX_IMAGE_BYTES,
        // The limiter's slots are taken inside the transport, per address actually connected to.
        limiter: this.#limiter,
        log: this.#deps.log,
        signal,
      };
      // A URL this tenant fetched before with these settings: ask whether it changed, and reuse
      // the earlier output on a 304 (the body is not downloaded again).
      const known = await store.getValidators(tenantId, item.url, settings);
      const usable = known && (await storage.modifiedAt(known.outputKey)) !== null ? known : null;
      const source = usable ? await downloadIfChanged(item.url, usable, fetchOptions) : await downloadImage(item.url, fetchOptions);
      if ('notModified' in source) {
        return { ok: true, outputKey: usable!.outputKey, format: usable!.format, bytesIn: usable!.bytesIn, bytesOut: usable!.bytesOut, outcome: 'reused' };
      }
      const remember = async (o: { outputKey: string; format: string; bytesOut: number }) => {
        if (source.etag || source.lastModified) {
          await store.putValidators(tenantId, item.url, settings, { ...o, etag: source.etag, lastModified: source.lastModified, bytesIn: source.bytes.length }, Date.now());
        }
      };
      // The same bytes made into an output before, by this tenant with these settings: no decode, no encode.
      const sha = createHash('sha256').update(source.bytes).digest('hex');
      const cached = await store.getCachedOutput(tenantId, sha, settings);
      if (cached && (await storage.modifiedAt(cached.outputKey)) !== null) {
        await remember(cached);
        return { ok: true, ...cached, bytesIn: source.bytes.length, outcome: 'reused' };
      }
      // compress() waits for a pool slot (abortable): the pool's bounded queue holds downloads back.
      // The attempt is charged only once the image really goes to a codec thread, so a crash
      // while it downloads or waits costs it nothing.
      const result = await pool.compress(source.bytes, {
        ...options,
        signal,
        onAdmitted: async () => {
          if ((await store.chargeAttempt({ itemId: item.id, owner: this.owner })) === null) throw new Error('lease lost');
        },
      });
      const key = blobKey(createHash('sha256').update(result.bytes).digest('hex'), result.format);
      await storage.put(key, result.bytes, contentTypeOf(key));
      const output = { outputKey: key, format: result.format, bytesOut: result.bytesOut };
      await store.putCachedOutput(tenantId, sha, settings, output, Date.now());
      await remember(output);
      return { ok: true, ...output, bytesIn: result.bytesIn, outcome: result.outcome, note: result.note };
    } catch (err) {
      return { ok: false, error: describeFailure(err) };
    }
  }


  async #requestOf(requestId: string): Promise<RequestContext> {
    let context = this.#requests.get(requestId);
    if (!context) {
      const request = await this.#deps.store.getRequest(requestId);
      if (!request) throw new Error('request no longer exists');
      const options = compressOptionsOf(request.options, this.#deps.config.JPEG_QUALITY);
      // The encode settings the content cache and the URL validators are keyed on.
      const settings = JSON.stringify([options.format, options.quality, options.maxWidth, options.maxHeight]);
      context = { tenantId: request.tenantId, options, settings };
      if (this.#requests.size >= 1_000) this.#requests.clear(); // bounded; a miss costs one read
      this.#requests.set(requestId, context);
    }
    return context;
  }

  /**
   * Records a completion together with the others that arrive while a write is under way: one
   * store commit for a burst of finished images (reused outputs finish in bursts) instead of one
   * each. No timer: a lone completion is written at once.
   */
  #complete(input: CompleteInput): Promise<CompleteResult> {
    return new Promise((resolve, reject) => {
      this.#completions.push({ input, resolve, reject });
      if (!this.#writingCompletions) void this.#writeCompletions();
    });
  }

  async #writeCompletions(): Promise<void> {
    this.#writingCompletions = true;
    try {
      while (this.#completions.length > 0) {
        const batch = this.#completions.splice(0, COMPLETION_BATCH);
        try {
          const results = await this.#deps.store.completeItems(batch.map((b) => b.input));
          batch.forEach((b, i) => b.resolve(results[i]!));
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.#writingCompletions = false;
    }
  }

  #renewEveryMs(): number {
    return Math.max(250, Math.floor(this.#deps.config.LEASE_MS / 3));
  }

  async #renew(): Promise<void> {
    if (this.#inFlight.size === 0) return;
    const ids = [...this.#inFlight.keys()];
    const { LEASE_MS } = this.#deps.config;
    const now = Date.now();
    try {
      const held = new Set(await this.#deps.store.renewLeases({ owner: this.owner, itemIds: ids, leaseMs: LEASE_MS, now }));
      for (const id of ids) {
        if (!held.has(id)) this.#inFlight.get(id)?.abort(new Error('lease lost'));
        else if (this.#leaseUntil.has(id)) this.#leaseUntil.set(id, now + LEASE_MS);
      }
    } catch (err) {
      this.#deps.log.warn({ err }, 'renewing leases failed');
      // A lease that runs out before the next renewal can be claimed by another runner: stop
      // working on it rather than process it twice at once.
      const soon = Date.now() + this.#renewEveryMs() * 1.5;
      for (const id of ids) {
        const until = this.#leaseUntil.get(id);
        if (until !== undefined && until <= soon) this.#inFlight.get(id)?.abort(new Error('lease expired'));
      }
    }
  }
}

/** Claims beyond this many per allowed attempt mean the process keeps dying while it holds the item. */
const CLAIMS_PER_ATTEMPT = 4;

/**
 * Why an item is given up before it is worked on again, or null. An item that entered the
 * codec MAX_ITEM_ATTEMPTS times without finishing crashed or wedged the process each time;
 * an item that was only downloading or queued when the process died is not charged.
 */
export function giveUpReason(item: ItemRecord, maxAttempts: number): string | null {
  if (item.attempts >= maxAttempts) return `gave up after ${item.attempts} attempts: processing this image stopped the process each time`;
  if (item.claims > maxAttempts * CLAIMS_PER_ATTEMPT) return `gave up after ${item.claims - 1} interrupted tries`;
  return null;
}

function describeFailure(err: unknown): string {
  if (err instanceof FetchError) return err.reason;
  if (err instanceof Error) return err.message.split('\n')[0]!.slice(0, 300);
  return 'processing failed';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
