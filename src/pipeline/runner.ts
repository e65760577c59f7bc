// A pipeline runner: claims work items from the store with leases and takes each one through
// fetch (in its download thread) → compress (in a pool thread) → write blob → record the outcome.
// Any number of runners, in one process or many, share the work through the store alone.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { DownloadThread, FetchError, redactUrl } from '../net/index.js';
import { blobKey, contentTypeOf, type BlobStorage } from '../storage/types.js';
import { defaultOutputOptions, storedOutputOptions, type OutputOptions } from '../codecs/output-options.js';
import { outputSetKey, type Rendition } from '../codecs/renditions.js';
import type { ChargeInput, CompleteInput, CompleteResult, ItemOutcome, ItemRecord, ReusableOutput, Store } from '../store/types.js';
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

/** Charges, and completions, written in one store commit at most (each). */
const PROGRESS_BATCH = 64;

interface Waiting<I, R> {
  input: I;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

/** An item's outcome, and what to remember of it in the same store commit (CompleteInput.remember). */
interface Handled {
  outcome: ItemOutcome;
  remember?: CompleteInput['remember'];
}

interface RequestContext {
  tenantId: string;
  options: OutputOptions;
  renditions: Rendition[];
  /** the content-cache and URL-validator key: the request-level settings and the renditions' */
  settings: string;
  /** quality=auto: the last answer in this request, where the next image's search starts */
  lastAutoQuality?: number;
}

export class PipelineRunner {
  readonly owner = `runner-${randomUUID()}`;
  readonly #deps: RunnerDeps;
  readonly #downloads: DownloadThread;
  readonly #worker: LeasedWorker<ItemRecord>;
  readonly #charges: Array<Waiting<ChargeInput, number | null>> = [];
  readonly #completions: Array<Waiting<CompleteInput, CompleteResult>> = [];
  #writingProgress = false;
  /** Tenant and output options of the requests being worked on (fixed at upload, so cached). */
  readonly #requests = new Map<string, RequestContext>();
  #nameKey: Promise<Uint8Array> | null = null;

  /** The store's output-name secret, read once (a failed read is tried again next time). */
  #outputNameKey(): Promise<Uint8Array> {
    // its own 32-byte buffer: it is copied into every pool task (not a view of a pooled slab)
    this.#nameKey ??= this.#deps.store.outputNameSecret().then((hex) => new Uint8Array(Buffer.from(hex, 'hex')));
    this.#nameKey.catch(() => { this.#nameKey = null; });
    return this.#nameKey;
  }

  constructor(deps: RunnerDeps) {
    this.#deps = deps;
    const { config, store, log } = deps;
    const { DOWNLOAD_CONCURRENCY, DOWNLOAD_PER_HOST, WORKER_THREADS } = config;
    this.#downloads = new DownloadThread({
      allowlist: config.FETCH_ALLOWLIST,
      connectTimeoutMs: config.FETCH_CONNECT_TIMEOUT_MS,
      timeoutMs: config.FETCH_TIMEOUT_MS,
      retries: config.FETCH_RETRIES,
      retryBaseMs: config.FETCH_RETRY_BASE_MS,
      maxBytes: config.MAX_IMAGE_BYTES,
      concurrency: DOWNLOAD_CONCURRENCY,
      perHost: DOWNLOAD_PER_HOST,
      logRefusals: log.isLevelEnabled('debug'),
    }, log);
    this.#worker = new LeasedWorker<ItemRecord>({
      leaseMs: deps.config.LEASE_MS,
      minRenewMs: 250,
      idleMs: deps.idlePollMs ?? 500,
      // Fetch + compress slots: downloads beyond this wait until the pool drains.
      capacity: DOWNLOAD_CONCURRENCY + WORKER_THREADS * 2,
      // Claim a quarter of the slots at a time: a claim commit per few images, not one per image,
      // while three quarters stay in hand (downloading or queued for the pool).
      claimBatch: Math.ceil((DOWNLOAD_CONCURRENCY + WORKER_THREADS * 2) / 4),
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
    await this.#downloads.close();
    const released = await this.#deps.store.releaseItems(this.owner);
    if (released) this.#deps.log.info({ released }, 'released unfinished items for another runner');
  }

  /** Takes one claimed item through to its recorded outcome; `signal` fires on a lost lease or shutdown. */
  async #process(item: ItemRecord, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    try {
      const { outcome, remember } = await this.#handle(item, signal);
      if (signal.aborted) return; // lease lost or shutting down: someone else finishes it
      const result = await this.#complete({ itemId: item.id, owner: this.owner, outcome, now: Date.now(), ...(remember ? { remember } : {}) });
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

  /**
   * Fetch, compress, store. Every failure becomes this item's error, never the process's. The
   * content cache and URL validators entries are returned, to be written with the completion.
   */
  async #handle(item: ItemRecord, signal: AbortSignal): Promise<Handled> {
    const { config, pool, storage, store } = this.#deps;
    const givenUp = giveUpReason(item, config.MAX_ITEM_ATTEMPTS);
    if (givenUp) return { outcome: { ok: false, error: givenUp } };
    try {
      const context = await this.#requestOf(item.requestId);
      const { tenantId, options, renditions, settings } = context;
      // A URL this tenant fetched before with these settings: ask whether it changed, and reuse
      // the earlier output on a 304 (the body is not downloaded again).
      const known = await store.getValidators(tenantId, item.url, settings);
      const usable = known && (await this.#allStored(known)) ? known : null;
      const source = await this.#downloads.download(item.url, usable, signal);
      if ('notModified' in source) {
        const { outputKey, format, bytesIn, bytesOut, renditionKeys, quality, score, note } = usable!;
        return {
          outcome: { ok: true, outputKey, format, bytesIn, bytesOut, renditionKeys: renditionKeys ?? null, outcome: 'reused', quality: quality ?? null, score: score ?? null, note: note ?? null },
        };
      }
      const bytesIn = source.bytes.length; // the bytes are handed to the pool thread below
      const validatorsOf = (o: ReusableOutput) => source.etag || source.lastModified
        ? { url: item.url, validators: { ...o, etag: source.etag, lastModified: source.lastModified, bytesIn } }
        : undefined;
      // The same bytes made into an output before, by this tenant with these settings: no decode,
      // no encode (the download thread hashed them).
      const sha = source.sha256;
      const cached = await store.getCachedOutput(tenantId, sha, settings);
      if (cached && (await this.#allStored(cached))) {
        const validators = validatorsOf(cached);
        return {
          outcome: { ok: true, ...cached, bytesIn, outcome: 'reused' },
          ...(validators ? { remember: { tenantId, settings, validators } } : {}),
        };
      }
      // compress() waits for a pool slot (abortable): the pool's bounded queue holds downloads back.
      // The attempt is charged only once the image really goes to a codec thread, so a crash
      // while it downloads or waits costs it nothing.
      const result = await pool.compress(source.bytes, {
        options,
        renditions,
        signal,
        // the download is this image's alone: moved to the thread, not copied
        handOver: true,
        // Named by an HMAC under the deployment's secret, not a plain hash: whoever has the same
        // photo cannot compute the name and probe /images/ for another tenant's output. The pool
        // thread computes it.
        nameKey: await this.#outputNameKey(),
        onAdmitted: async () => {
          if ((await this.#charge({ itemId: item.id, owner: this.owner })) === null) throw new Error('lease lost');
        },
        ...(context.lastAutoQuality !== undefined && { previousQuality: context.lastAutoQuality }),
      });
      if (options.quality === 'auto' && result.score !== null && result.quality !== null) context.lastAutoQuality = result.quality;
      const put = async (out: { bytes: Uint8Array; format: string; nameMac?: string }) => {
        if (!out.nameMac) throw new Error('the pool returned an output without its name');
        const key = blobKey(out.nameMac, out.format);
        await storage.put(key, out.bytes, contentTypeOf(key));
        return key;
      };
      const renditionKeys: Record<string, string> = {};
      for (const r of renditions) renditionKeys[r.name] = await put(result.renditions[r.name]!);
      // bytes and quotas count the request-level output only
      // the note goes with it: a reuse says what the first import said ("converted from HEIC")
      const output: ReusableOutput = {
        outputKey: await put(result), format: result.format, bytesOut: result.bytesOut, renditionKeys: renditions.length ? renditionKeys : null,
        quality: result.quality, score: result.score, note: result.note ?? null,
      };
      const validators = validatorsOf(output);
      return {
        outcome: { ok: true, ...output, bytesIn: result.bytesIn, outcome: result.outcome },
        remember: { tenantId, settings, cached: { sourceSha256: sha, output }, ...(validators ? { validators } : {}) },
      };
    } catch (err) {
      return { outcome: { ok: false, error: describeFailure(err) } };
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
   * Records a completion, or charges an attempt, together with the others that arrive while a
   * write is under way: one store commit for a burst (an image admitted to the pool as the one
   * before it finishes, reused outputs finishing together) instead of one each. No timer: a lone
   * write goes at once.
   */
  #complete(input: CompleteInput): Promise<CompleteResult> {
    return new Promise((resolve, reject) => {
      this.#completions.push({ input, resolve, reject });
      if (!this.#writingProgress) void this.#writeProgress();
    });
  }

  #charge(input: ChargeInput): Promise<number | null> {
    return new Promise((resolve, reject) => {
      this.#charges.push({ input, resolve, reject });
      if (!this.#writingProgress) void this.#writeProgress();
    });
  }

  async #writeProgress(): Promise<void> {
    this.#writingProgress = true;
    try {
      while (this.#charges.length > 0 || this.#completions.length > 0) {
        const charges = this.#charges.splice(0, PROGRESS_BATCH);
        const completions = this.#completions.splice(0, PROGRESS_BATCH);
        try {
          const { attempts, results } = await this.#deps.store.recordProgress({ charges: charges.map((c) => c.input), completions: completions.map((c) => c.input) });
          charges.forEach((c, i) => c.resolve(attempts[i]!));
          completions.forEach((c, i) => c.resolve(results[i]!));
        } catch (err) {
          for (const w of [...charges, ...completions]) w.reject(err);
        }
      }
    } finally {
      this.#writingProgress = false;
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

