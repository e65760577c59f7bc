// A pipeline runner: claims work items from the store with leases and takes each one through
// fetch → compress → write blob → record the outcome. Any number of runners, in one process or
// many, share the work through the store alone.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { downloadIfChanged, downloadImage, FetchError, HostLimiter, redactUrl } from '../net/index.js';
import { blobKey, contentTypeOf, type BlobStorage } from '../storage/types.js';
import { defaultOutputOptions, storedOutputOptions, type OutputOptions } from '../codecs/output-options.js';
import { outputSetKey, type Rendition } from '../codecs/renditions.js';
import type { CompleteInput, CompleteResult, ItemOutcome, ItemRecord, ReusableOutput, Store } from '../store/types.js';
import { LeasedWorker } from '../jobs/leased-worker.js';
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
  renditions: Rendition[];
  /** the content-cache and URL-validator key: the request-level settings and the renditions' */
  settings: string;
}

export class PipelineRunner {
  readonly owner = `runner-${randomUUID()}`;
  readonly #deps: RunnerDeps;
  readonly #limiter: HostLimiter;
  readonly #worker: LeasedWorker<ItemRecord>;
  readonly #completions: Array<{ input: CompleteInput; resolve: (r: CompleteResult) => void; reject: (err: unknown) => void }> = [];
  #writingCompletions = false;
  /** Tenant and output options of the requests being worked on (fixed at upload, so cached). */
  readonly #requests = new Map<string, RequestContext>();
  #nameKey: Promise<Buffer> | null = null;

  /** The store's output-name secret, read once (a failed read is tried again next time). */
  #outputNameKey(): Promise<Buffer> {
    this.#nameKey ??= this.#deps.store.outputNameSecret().then((hex) => Buffer.from(hex, 'hex'));
    this.#nameKey.catch(() => { this.#nameKey = null; });
    return this.#nameKey;
  }

  constructor(deps: RunnerDeps) {
    this.#deps = deps;
    const { DOWNLOAD_CONCURRENCY, DOWNLOAD_PER_HOST, WORKER_THREADS } = deps.config;
    this.#limiter = new HostLimiter({ global: DOWNLOAD_CONCURRENCY, perHost: DOWNLOAD_PER_HOST });
    const { store, log } = deps;
    this.#worker = new LeasedWorker<ItemRecord>({
      leaseMs: deps.config.LEASE_MS,
      minRenewMs: 250,
      idleMs: deps.idlePollMs ?? 500,
      // Fetch + compress slots: downloads beyond this wait until the pool drains.
      capacity: DOWNLOAD_CONCURRENCY + WORKER_THREADS * 2,
      idOf: (item) => item.id,
      claim: (limit, now) => store.claimItems({ owner: this.owner, limit, leaseMs: deps.config.LEASE_MS, now }),
      // A claim may have started a request (processing.started): let the dispatcher know.
      onClaimed: () => deps.onEvent?.(),
      process: (item, ctx) => this.#process(item, AbortSignal.any([ctx.stopped, ctx.lost])),
      renew: (ids, now) => store.renewLeases({ owner: this.owner, itemIds: ids, leaseMs: deps.config.LEASE_MS, now }),
      onClaimError: (err) => log.error({ err }, 'claiming work failed; retrying'),
      onRenewError: (err) => log.warn({ err }, 'renewing leases failed'),
    });
  }

  get inFlight(): number {
    return this.#worker.held;
  }

  start(): void {
    this.#worker.start();
  }

  /** Looks for work now instead of at the next poll (a request was just committed). */
  wake(): void {
    this.#worker.wake();
  }

  /**
   * Stops claiming; waits up to graceMs for items in flight to finish, then cancels the rest
   * and hands them back to the store for another runner.
   */
  async stop(graceMs = 10_000): Promise<void> {
    await this.#worker.stop(graceMs);
    const released = await this.#deps.store.releaseItems(this.owner);
    if (released) this.#deps.log.info({ released }, 'released unfinished items for another runner');
  }

  /** Takes one claimed item through to its recorded outcome; `signal` fires on a lost lease or shutdown. */
  async #process(item: ItemRecord, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    try {
      const outcome = await this.#handle(item, signal);
      if (signal.aborted) return; // lease lost or shutting down: someone else finishes it
      const result = await this.#complete({ itemId: item.id, owner: this.owner, outcome, now: Date.now() });
      if (!result.applied) this.#deps.log.warn({ request_id: item.requestId, url: redactUrl(item.url) }, 'lease lost before completion; result discarded');
      if (result.finalStatus) {
        this.#deps.log.info({ request_id: item.requestId, status: result.finalStatus }, 'request finished');
        this.#deps.onEvent?.();
      }
      this.#deps.onItem?.(item, outcome, Date.now() - started);
    } catch (err) {
      this.#deps.log.error({ err, request_id: item.requestId, url: redactUrl(item.url) }, 'recording an item failed; its lease will expire and it will be retried');
    }
  }

  /** Fetch, compress, store. Every failure becomes this item's error, never the process's. */
  async #handle(item: ItemRecord, signal: AbortSignal): Promise<ItemOutcome> {
    const { config, pool, storage, store } = this.#deps;
    const givenUp = giveUpReason(item, config.MAX_ITEM_ATTEMPTS);
    if (givenUp) return { ok: false, error: givenUp };
    try {
      const { tenantId, options, renditions, settings } = await this.#requestOf(item.requestId);
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
      const usable = known && (await this.#allStored(known)) ? known : null;
      const source = usable ? await downloadIfChanged(item.url, usable, fetchOptions) : await downloadImage(item.url, fetchOptions);
      if ('notModified' in source) {
        const { outputKey, format, bytesIn, bytesOut, renditionKeys, note } = usable!;
        return { ok: true, outputKey, format, bytesIn, bytesOut, renditionKeys: renditionKeys ?? null, outcome: 'reused', note: note ?? null };
      }
      const remember = async (o: ReusableOutput) => {
        if (source.etag || source.lastModified) {
          await store.putValidators(tenantId, item.url, settings, { ...o, etag: source.etag, lastModified: source.lastModified, bytesIn: source.bytes.length }, Date.now());
        }
      };
      // The same bytes made into an output before, by this tenant with these settings: no decode, no encode.
      const sha = createHash('sha256').update(source.bytes).digest('hex');
      const cached = await store.getCachedOutput(tenantId, sha, settings);
      if (cached && (await this.#allStored(cached))) {
        await remember(cached);
        return { ok: true, ...cached, bytesIn: source.bytes.length, outcome: 'reused' };
      }
      // compress() waits for a pool slot (abortable): the pool's bounded queue holds downloads back.
      // The attempt is charged only once the image really goes to a codec thread, so a crash
      // while it downloads or waits costs it nothing.
      const result = await pool.compress(source.bytes, {
        options,
        renditions,
        signal,
        onAdmitted: async () => {
          if ((await store.chargeAttempt({ itemId: item.id, owner: this.owner })) === null) throw new Error('lease lost');
        },
      });
      // Named by an HMAC under the deployment's secret, not a plain hash: whoever has the same
      // photo cannot compute the name and probe /images/ for another tenant's output.
      const nameKey = await this.#outputNameKey();
      const put = async (out: { bytes: Uint8Array; format: string }) => {
        const key = blobKey(createHmac('sha256', nameKey).update(out.bytes).digest('hex'), out.format);
        await storage.put(key, out.bytes, contentTypeOf(key));
        return key;
      };
      const renditionKeys: Record<string, string> = {};
      for (const r of renditions) renditionKeys[r.name] = await put(result.renditions[r.name]!);
      // bytes and quotas count the request-level output only
      // the note goes with it: a reuse says what the first import said ("converted from HEIC")
      const output: ReusableOutput = { outputKey: await put(result), format: result.format, bytesOut: result.bytesOut, renditionKeys: renditions.length ? renditionKeys : null, note: result.note ?? null };
      await store.putCachedOutput(tenantId, sha, settings, output, Date.now());
      await remember(output);
      return { ok: true, ...output, bytesIn: result.bytesIn, outcome: result.outcome };
    } catch (err) {
      return { ok: false, error: describeFailure(err) };
    }
  }

  /** The output and every rendition of an earlier result are still in storage (the orphan sweep or retention may have removed them). */
  async #allStored(o: ReusableOutput): Promise<boolean> {
    const keys = [o.outputKey, ...Object.values(o.renditionKeys ?? {})];
    for (const key of keys) if ((await this.#deps.storage.modifiedAt(key)) === null) return false;
    return true;
  }


  async #requestOf(requestId: string): Promise<RequestContext> {
    let context = this.#requests.get(requestId);
    if (!context) {
      const request = await this.#deps.store.getRequest(requestId);
      if (!request) throw new Error('request no longer exists');
      const options = storedOutputOptions(request.options, defaultOutputOptions(this.#deps.config.JPEG_QUALITY));
      const renditions = request.options?.renditions ?? [];
      context = { tenantId: request.tenantId, options, renditions, settings: outputSetKey(options, renditions) };
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

