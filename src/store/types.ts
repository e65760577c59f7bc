// The store contract: the single source of truth and the only coordination point between
// API instances, pipeline runners and webhook dispatchers. One file per backend implements it.
// All times are epoch milliseconds passed in by the caller, so tests control the clock.

export type RequestStatus = 'ingesting' | 'received' | 'processing' | 'completed' | 'failed';
export type ItemState = 'pending' | 'running' | 'done' | 'failed';
export type EventType = 'processing.started' | 'processing.completed' | 'processing.failed';
export const EVENT_TYPES: readonly EventType[] = ['processing.started', 'processing.completed', 'processing.failed'];

export interface RequestRecord {
  id: string;
  /** 'ingesting' requests are invisible to readers and runners until committed. */
  status: RequestStatus;
  idempotencyKey: string | null;
  /** One-off receiver given with the upload: gets this request's events only. */
  webhookUrl: string | null;
  /** Signing secret for webhookUrl deliveries. */
  webhookSecret: string | null;
  productCount: number;
  /** Distinct image URLs (work items) in the request. */
  total: number;
  done: number;
  failed: number;
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
  /** How many times the item has been claimed (a crash mid-item counts). */
  attempts: number;
  leaseOwner: string | null;
  leaseUntil: number | null;
  /** Storage key of the output when state is 'done'. */
  outputKey: string | null;
  /** Why the item failed, when state is 'failed'. */
  error: string | null;
}

export type ItemOutcome =
  | { ok: true; outputKey: string; format: string; bytesIn: number; bytesOut: number }
  | { ok: false; error: string };

export interface CompleteResult {
  /** false when the lease was lost (another runner owns the item now); nothing was written. */
  applied: boolean;
  /** Set when this completion moved the request to its final state. */
  finalStatus?: 'completed' | 'failed';
}

export interface Subscription {
  id: string;
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
  /** The JSON body sent to receivers, fixed when the event is written. */
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

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page, null at the end. */
  nextCursor: string | null;
}

/** Builds the event body for a request's transition; the store calls it inside its transaction. */
export type EventPayloadBuilder = (type: EventType, request: RequestRecord, eventId: string, at: number) => string;

export interface Store {
  readonly backend: 'sqlite' | 'mongodb';

  // ---- ingest: begin → appendBatch* → commit | abort -------------------------------------
  /**
   * Creates a request in state 'ingesting'. With an idempotency key already used by a
   * committed request, returns that request instead (and creates nothing). A key whose
   * request is still ingesting returns it too (caller answers 409).
   */
  beginRequest(input: {
    id: string;
    idempotencyKey: string | null;
    webhookUrl: string | null;
    webhookSecret: string | null;
    now: number;
  }): Promise<{ created: true } | { created: false; existing: RequestRecord }>;
  /** Adds products and their image URLs; URLs already in the request are stored once. */
  appendBatch(requestId: string, products: ProductRecord[]): Promise<void>;
  /**
   * Makes the request visible ('received') with its counts; returns it. `webhook` sets the
   * per-upload receiver when it became known only after the file (a form field after it).
   */
  commitRequest(requestId: string, now: number, webhook?: { url: string; secret: string }): Promise<RequestRecord>;
  /** Removes everything written for an ingesting request. */
  abortRequest(requestId: string): Promise<void>;
  /** Removes requests left 'ingesting' (by a crash) since before `before`. Returns how many. */
  cleanupIngesting(before: number): Promise<number>;

  // ---- reads ------------------------------------------------------------------------------
  /** A committed request (never an ingesting one), or null. */
  getRequest(id: string): Promise<RequestRecord | null>;
  /** Products ordered by serial; cursor from the previous page. */
  listProducts(requestId: string, opts: { limit: number; cursor?: string | null }): Promise<Page<ProductRecord>>;
  /** The items of a request for the given URLs (for assembling a product view). */
  getItemsByUrl(requestId: string, urls: string[]): Promise<ItemRecord[]>;

  // ---- pipeline ---------------------------------------------------------------------------
  /**
   * Atomically leases up to `limit` items that are pending or whose lease expired, in
   * committed requests. Increments attempts. A request moving received → processing gets
   * its processing.started event in the same step (exactly once across runners).
   */
  claimItems(input: { owner: string; limit: number; leaseMs: number; now: number; payload: EventPayloadBuilder }): Promise<ItemRecord[]>;
  /** Extends the leases still held by owner; returns the ids still held. */
  renewLeases(input: { owner: string; itemIds: string[]; leaseMs: number; now: number }): Promise<string[]>;
  /**
   * Records an item's final outcome if `owner` still holds its lease; updates the request's
   * counters and, when the last item lands, its final status with the event, all in one step.
   */
  completeItem(input: { itemId: string; owner: string; outcome: ItemOutcome; now: number; payload: EventPayloadBuilder }): Promise<CompleteResult>;
  /** Returns owner's running items to pending (graceful shutdown). */
  releaseItems(owner: string): Promise<number>;
  /** Counts for readiness and metrics. */
  pendingStats(now: number): Promise<{ pending: number; running: number; oldestPendingAt: number | null }>;

  // ---- webhooks ---------------------------------------------------------------------------
  createSubscription(sub: Subscription): Promise<void>;
  listSubscriptions(): Promise<Subscription[]>;
  getSubscription(id: string): Promise<Subscription | null>;
  deleteSubscription(id: string): Promise<boolean>;
  rotateSecret(input: { id: string; newSecret: string; previousSecretExpiresAt: number }): Promise<Subscription | null>;

  /** Leases deliveries that are due (pending, nextAttemptAt <= now, lease free or expired). */
  claimDeliveries(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<DeliveryRecord[]>;
  /** Records one attempt and its outcome if owner still holds the lease. */
  recordAttempt(input: { owner: string; attempt: DeliveryAttempt; outcome: AttemptOutcome; now: number }): Promise<boolean>;
  listDeliveries(subscriptionId: string, opts: { limit: number; cursor?: string | null }): Promise<Page<DeliveryRecord & { attemptLog: DeliveryAttempt[] }>>;
  /** Puts a delivered or failed delivery back to pending, due now. Null if unknown. */
  retryDelivery(input: { subscriptionId: string; deliveryId: string; now: number }): Promise<DeliveryRecord | null>;
  /** Events of a request, oldest first (tests and debugging). */
  listEvents(requestId: string): Promise<EventRecord[]>;

  // ---- lifecycle --------------------------------------------------------------------------
  /** Throws if the backend is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
