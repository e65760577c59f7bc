// The store contract: the single source of truth and the only coordination point between
// API instances, pipeline runners and webhook dispatchers. The rules (states, events, ids,
// cursors, claim order) live in lifecycle.ts; each backend only persists.
// Times are epoch milliseconds passed in by the caller, so tests control the clock. One
// exception: appendBatch stamps its items' createdAt with Date.now(); that stamp only feeds
// pendingStats' oldest-pending age, and no rule (lease, expiry, order) reads it.
import type { RequestOptions } from '../codecs/renditions.js';

export type RequestStatus = 'ingesting' | 'received' | 'processing' | 'completed' | 'failed' | 'cancelled';

export type ItemState = 'pending' | 'running' | 'done' | 'failed';
export type EventType = 'processing.started' | 'processing.completed' | 'processing.failed' | 'processing.cancelled';
export const EVENT_TYPES: readonly EventType[] = ['processing.started', 'processing.completed', 'processing.failed', 'processing.cancelled'];

/** The tenant of the admin key, of open mode, and of everything made before keys existed. */
export const ADMIN_TENANT = 'admin';

/** How an image's output came about (null while pending or failed). */
export type ItemOutcomeKind = 'compressed' | 'reused' | 'passed_through' | 'original_kept';

export interface RequestRecord {
  id: string;
  /** 'ingesting' requests are invisible to readers and runners until committed. */
  status: RequestStatus;
  /** The API key (tenant) that made it; ADMIN_TENANT in open mode. */
  tenantId: string;
  /** One-off receiver given with the upload: gets this request's events only. */
  webhookUrl: string | null;
  /** Signing secret for webhookUrl deliveries. */
  webhookSecret: string | null;
  /** Output options as checked at upload, defaults filled in, with the renditions asked for; null for requests from before options existed. */
  options: RequestOptions | null;
  /** The uploaded file's base name (cleaned, see ingest/file-name.ts); null when it had none. */
  fileName: string | null;
  productCount: number;
  /** Distinct image URLs (work items) in the request. */
  total: number;
  done: number;
  failed: number;
  /** Sum of source and output bytes of the images done so far. */
  bytesIn: number;
  bytesOut: number;
  /** 0 for the first run; a retry of failed images starts the next one (events are per run). */
  run: number;
  createdAt: number;
  updatedAt: number;
  /**
   * Grows with every change a status reader could see (a claim, a completion, a release), so
   * a rendered status is still current exactly while the version is unchanged.
   */
  version: number;
}

export interface ProductRecord {
  serial: number;
  name: string;
  inputUrls: string[];
}

export interface ItemRecord {
  id: string;
  requestId: string;
  url: string;
  state: ItemState;
  /**
   * How many times the item entered the codec (chargeAttempt). Only these count against
   * MAX_ITEM_ATTEMPTS: a crash while an item was downloading or queued costs it nothing.
   */
  attempts: number;
  /** How many times it was claimed (every claim, crashes included). */
  claims: number;
  leaseOwner: string | null;
  leaseUntil: number | null;
  /** Storage key of the output when state is 'done'. */
  outputKey: string | null;
  /** Storage keys of the renditions by name when state is 'done' and the request asked for some. */
  renditionKeys: Record<string, string> | null;
  /** Why the item failed, when state is 'failed'. */
  error: string | null;
  outcome: ItemOutcomeKind | null;
  bytesIn: number | null;
  bytesOut: number | null;
  /** what the status says about this image beside its outcome ("converted from GIF; first frame of 12"), or null */
  note: string | null;
  /** The encoder quality of the output; null where no encode of ours is the output (or PNG, or before this was kept). */
  quality: number | null;
  /** The SSIMULACRA2 score the output reached (quality=auto); null where not measured. */
  score: number | null;
}

export type ItemOutcome =
  | {
    ok: true; outputKey: string; format: string; bytesIn: number; bytesOut: number; outcome: ItemOutcomeKind; note?: string | null;
    renditionKeys?: Record<string, string> | null; quality?: number | null; score?: number | null;
  }
  | { ok: false; error: string };

export interface ChargeInput {
  itemId: string;
  owner: string;
}

export interface CompleteInput {
  itemId: string;
  owner: string;
  outcome: ItemOutcome;
  now: number;
  /**
   * Written in the completion's transaction when it applies (no commit of their own): the content
   * cache entry of a newly made output, and what the URL answered (putCachedOutput / putValidators).
   */
  remember?: {
    tenantId: string;
    settings: string;
    cached?: { sourceSha256: string; output: ReusableOutput };
    validators?: { url: string; validators: UrlValidators };
  };
}

export interface CompleteResult {
  /** false when the lease was lost (another runner owns the item now); nothing was written. */
  applied: boolean;
  /** Set when this completion moved the request to its final state. */
  finalStatus?: 'completed' | 'failed';
}

export interface Subscription {
  id: string;
  tenantId: string;
  url: string;
  events: EventType[];
  secret: string;
  /** Previous secret, still signing alongside `secret` until previousSecretExpiresAt. */
  previousSecret: string | null;
  previousSecretExpiresAt: number | null;
  createdAt: number;
}

export interface EventRecord {
  id: string;
  requestId: string;
  type: EventType;
  /**
   * The event body without anything deployment-specific (lifecycle.eventPayload), fixed when
   * the event is written; the dispatcher adds the output CSV link when it sends it.
   */
  payload: string;
  createdAt: number;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface DeliveryRecord {
  id: string;
  eventId: string;
  /** null for the per-upload webhook_url receiver. */
  subscriptionId: string | null;
  requestId: string;
  url: string;
  eventType: EventType;
  payload: string;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number;
  leaseOwner: string | null;
  leaseUntil: number | null;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface DeliveryAttempt {
  deliveryId: string;
  attempt: number;
  at: number;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

export type AttemptOutcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; nextAttemptAt: number }
  | { kind: 'failed' };

export interface ApiKeyRecord {
  id: string;
  name: string;
  /** SHA-256 (hex) of the key; the key itself is never stored. */
  hash: string;
  createdAt: number;
  revokedAt: number | null;
  /** This tenant's quotas, overriding MAX_IMAGES_IN_FLIGHT_PER_TENANT / MAX_UPLOADS_PER_MINUTE when set. */
  maxImagesInFlight: number | null;
  maxUploadsPerMinute: number | null;
}

/** An output made before, to reuse instead of compressing again (per tenant, per encode settings). */
export interface ReusableOutput {
  outputKey: string;
  format: string;
  bytesOut: number;
  /** the renditions made with it, by name (null or absent: none) */
  renditionKeys?: Record<string, string> | null;
  /** the encoder quality and SSIMULACRA2 score it was made with (null or absent: none, or made before they were kept) */
  quality?: number | null;
  score?: number | null;
  /** what the status said about the image it was made from ("converted from HEIC"); null or absent: nothing */
  note?: string | null;
}

/** What a URL answered last time, to ask it "changed since?" (If-None-Match / If-Modified-Since). */
export interface UrlValidators extends ReusableOutput {
  etag: string | null;
  lastModified: string | null;
  /** Source bytes of that download. */
  bytesIn: number;
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page, null at the end. */
  nextCursor: string | null;
}

export interface BeginInput {
  id: string;
  tenantId: string;
  idempotencyKey: string | null;
  webhookUrl: string | null;
  webhookSecret: string | null;
  /** The uploaded file's base name, already cleaned; null when the upload had none. */
  fileName?: string | null;
  now: number;
}

export interface CommitExtra {
  webhook?: { url: string; secret: string };
  /** A digest of the upload (file and fields): the same key with another body is refused. */
  fingerprint?: string | null;
  /** Output options given with the upload (form fields may follow the file), renditions included. */
  options?: RequestOptions | null;
  /**
   * The tenant's MAX_IMAGES_IN_FLIGHT (or its key's): decided in the commit itself, so
   * concurrent uploads cannot pass it together. Over it, the commit throws InFlightLimitError
   * and the request stays uncommitted (the caller aborts it). Absent: no limit (the CLI).
   */
  maxImagesInFlight?: number;
}

/** How long the upload log keeps an entry: longer than any quota window. */
export const UPLOAD_LOG_KEEP_MS = 60 * 60_000;

/** A commit refused because the tenant's queued images would pass its limit. */
export class InFlightLimitError extends Error {
  constructor(
    /** Images of this upload. */
    readonly images: number,
    /** Images of the tenant's other requests not final yet. */
    readonly inFlight: number,
    readonly limit: number,
  ) {
    super(`${images} images would take the tenant past its limit of ${limit} in flight (${inFlight} queued)`);
    this.name = 'InFlightLimitError';
  }
}

export type BeginResult =
  | { created: true }
  /** The tenant used this idempotency key before: that request, and the body it was made with. */
  | { created: false; existing: RequestRecord; fingerprint: string | null };

export interface Store {
  readonly backend: 'sqlite' | 'mongodb';

  // ---- ingest: begin → appendBatch* → commit | abort -------------------------------------
  /**
   * Creates a request in state 'ingesting'. With an idempotency key the tenant already used,
   * returns that request instead (and creates nothing); the key of a request still ingesting
   * returns it too (the caller answers 409).
   */
  beginRequest(input: BeginInput): Promise<BeginResult>;
  /** Adds products and their image URLs; URLs already in the request are stored once. */
  appendBatch(requestId: string, products: ProductRecord[]): Promise<void>;
  /**
   * Makes the request visible ('received') with its counts; returns it. `webhook` sets the
   * per-upload receiver when it became known only after the file (a form field after it);
   * `fingerprint` is the digest of the whole upload, kept with its idempotency key.
   */
  commitRequest(requestId: string, now: number, extra?: CommitExtra): Promise<RequestRecord>;
  /** Removes everything written for an ingesting request. */
  abortRequest(requestId: string): Promise<void>;
  /** Removes requests left 'ingesting' (by a crash) since before `before`. Returns how many. */
  cleanupIngesting(before: number): Promise<number>;

  // ---- reads ------------------------------------------------------------------------------
  /** A committed request (never an ingesting one), or null. Ownership is the caller's check. */
  getRequest(id: string): Promise<RequestRecord | null>;
  /**
   * A committed request's owner and version alone, or null: what a poll that already holds the
   * current page needs (status answers 304 from it without reading the row and its options).
   */
  getRequestVersion(id: string): Promise<{ tenantId: string; version: number } | null>;
  /** Committed requests, newest first; only `tenantId`'s when given. */
  listRequests(opts: { tenantId: string | null; limit: number; cursor?: string | null }): Promise<Page<RequestRecord>>;
  /** Products ordered by serial; cursor from the previous page. */
  listProducts(requestId: string, opts: { limit: number; cursor?: string | null }): Promise<Page<ProductRecord>>;
  /** The items of a request for the given URLs (for assembling a product view). */
  getItemsByUrl(requestId: string, urls: string[]): Promise<ItemRecord[]>;

  // ---- pipeline ---------------------------------------------------------------------------
  /**
   * Atomically leases up to `limit` items: expired leases first, then pending items of open
   * requests, rotating between tenants and then between a tenant's requests
   * (lifecycle.claimRounds / claimFairly). A request moving received → processing gets its
   * processing.started event in the same step (exactly once across runners).
   */
  claimItems(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<ItemRecord[]>;
  /**
   * Records that `owner` is about to run the codec on the item: the only step that counts
   * against MAX_ITEM_ATTEMPTS. Returns the attempts including this one, or null when the
   * lease is no longer held.
   */
  chargeAttempt(input: ChargeInput): Promise<number | null>;
  /**
   * Several chargeAttempt and completeItems in one step (one commit in SQLite): a runner's writes
   * that come together. Charges first; `attempts` and `results` follow the inputs' order.
   */
  recordProgress(input: { charges: ChargeInput[]; completions: CompleteInput[] }): Promise<{ attempts: (number | null)[]; results: CompleteResult[] }>;
  /** Extends the leases still held by owner; returns the ids still held. */
  renewLeases(input: { owner: string; itemIds: string[]; leaseMs: number; now: number }): Promise<string[]>;
  /**
   * Records items' final outcomes, each if its `owner` still holds its lease; updates the
   * requests' counters and, when a request's last item lands, its final status with the event.
   * A batch costs one commit where the backend can (SQLite); results are in input order.
   */
  completeItems(inputs: CompleteInput[]): Promise<CompleteResult[]>;
  /** Returns owner's running items to pending (graceful shutdown). */
  releaseItems(owner: string): Promise<number>;
  /** Counts for readiness and metrics. */
  pendingStats(now: number): Promise<{ pending: number; running: number; oldestPendingAt: number | null }>;

  // ---- operating on requests ----------------------------------------------------------------
  /**
   * Moves an open request to 'cancelled' with its processing.cancelled event: images not yet
   * claimed are never started. 'final' when it had finished already, null when unknown.
   */
  cancelRequest(id: string, now: number): Promise<'cancelled' | 'final' | null>;
  /**
   * Puts every failed image of a final request back in the queue with fresh attempts; the
   * request goes back to 'received' and starts a new run (its events follow as for a new one).
   */
  retryRequest(id: string, now: number): Promise<{ retried: number } | 'not-final' | 'none-failed' | null>;
  /**
   * Removes a request with its products, items, events and delivery log (an open one is
   * stopped first). Readers see it gone at once, even if the removal is interrupted (a later
   * purgeDeleting() finishes it). Returns the output keys its items had, or null when unknown.
   */
  deleteRequest(id: string, now: number): Promise<string[] | null>;
  /** Finishes deletions a crash interrupted; returns their output keys. */
  purgeDeleting(): Promise<string[]>;
  /** Final requests last changed before `before`, oldest first (retention). */
  listExpiredRequests(before: number, limit: number): Promise<string[]>;
  /** Of these output keys (request-level outputs or renditions), those some item of some request still refers to. */
  referencedOutputs(keys: string[]): Promise<Set<string>>;
  /**
   * What a tenant has queued (images not yet final) and how many uploads it committed since
   * `since` (a log of uploads, not the requests: deleting a request frees no quota).
   */
  tenantUsage(tenantId: string, since: number): Promise<{ inFlight: number; uploadsSince: number; oldestUploadSince: number | null }>;
  /**
   * Takes (or keeps) the named lock for ttlMs if it is free, expired or already `owner`'s: one
   * runner of a periodic job among many processes.
   */
  tryLock(name: string, owner: string, ttlMs: number, now: number): Promise<boolean>;

  // ---- skipping needless work ---------------------------------------------------------------
  /**
   * The deployment's secret for naming outputs (HMAC key, hex), made by the first caller and the
   * same for every instance sharing the store: output names cannot be computed from content alone.
   */
  outputNameSecret(): Promise<string>;
  /** The output a tenant already made from these exact source bytes with these settings. */
  getCachedOutput(tenantId: string, sourceSha256: string, settings: string): Promise<ReusableOutput | null>;
  putCachedOutput(tenantId: string, sourceSha256: string, settings: string, output: ReusableOutput, now: number): Promise<void>;
  /** What a tenant's last download of this URL with these settings answered and produced. */
  getValidators(tenantId: string, url: string, settings: string): Promise<UrlValidators | null>;
  putValidators(tenantId: string, url: string, settings: string, validators: UrlValidators, now: number): Promise<void>;

  // ---- webhooks ---------------------------------------------------------------------------
  createSubscription(sub: Subscription): Promise<void>;
  /** Every subscription, or only `tenantId`'s. */
  listSubscriptions(tenantId: string | null): Promise<Subscription[]>;
  getSubscription(id: string): Promise<Subscription | null>;
  deleteSubscription(id: string): Promise<boolean>;
  rotateSecret(input: { id: string; newSecret: string; previousSecretExpiresAt: number }): Promise<Subscription | null>;

  /** Leases deliveries that are due (pending, nextAttemptAt <= now, lease free or expired). */
  claimDeliveries(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<DeliveryRecord[]>;
  /** Extends owner's leases on deliveries being sent; returns the ids still held. */
  renewDeliveryLeases(input: { owner: string; deliveryIds: string[]; leaseMs: number; now: number }): Promise<string[]>;
  /** Records one attempt and its outcome if owner still holds the lease. */
  recordAttempt(input: { owner: string; attempt: DeliveryAttempt; outcome: AttemptOutcome; now: number }): Promise<boolean>;
  listDeliveries(subscriptionId: string, opts: { limit: number; cursor?: string | null }): Promise<Page<DeliveryRecord & { attemptLog: DeliveryAttempt[] }>>;
  /** Puts a delivered or failed delivery back to pending, due now. Null if unknown. */
  retryDelivery(input: { subscriptionId: string; deliveryId: string; now: number }): Promise<DeliveryRecord | null>;
  /** Events of a request, oldest first (tests and debugging). */
  listEvents(requestId: string): Promise<EventRecord[]>;

  // ---- API keys ---------------------------------------------------------------------------
  createKey(key: ApiKeyRecord): Promise<void>;
  /** Keys not revoked, oldest first. */
  listKeys(): Promise<ApiKeyRecord[]>;
  /** Marks a key revoked; false when unknown or already revoked. */
  revokeKey(id: string, now: number): Promise<boolean>;
  /** The key with this hash if it is not revoked. */
  findKey(hash: string): Promise<ApiKeyRecord | null>;

  // ---- lifecycle --------------------------------------------------------------------------
  /** The schema version the data is at (after the start-up migrations). */
  schemaVersion(): Promise<number>;
  /** Throws if the backend is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
