// A backend is assembled from one object per concern of the Store contract (the sections of
// types.ts); ComposedStore only hands each call to the part that owns it. Each backend keeps
// its parts in its own folder (sqlite/, mongo/) and adds the lifecycle calls itself.
import type {
  ApiKeyRecord, AttemptOutcome, BeginInput, ChargeInput, CommitExtra, CompleteInput, DeliveryAttempt, ProductRecord, ReusableOutput, Store,
  Subscription, UrlValidators,
} from './types.js';

export type RequestsPart = Pick<Store,
  'beginRequest' | 'appendBatch' | 'commitRequest' | 'abortRequest' | 'cleanupIngesting'
  | 'getRequest' | 'getRequestVersion' | 'listRequests' | 'listProducts' | 'getItemsByUrl'>;
export type PipelinePart = Pick<Store, 'claimItems' | 'chargeAttempt' | 'recordProgress' | 'renewLeases' | 'completeItems' | 'releaseItems' | 'pendingStats'>;
export type OperationsPart = Pick<Store,
  'cancelRequest' | 'retryRequest' | 'deleteRequest' | 'purgeDeleting' | 'listExpiredRequests' | 'referencedOutputs' | 'tenantUsage' | 'tryLock'>;
export type CachePart = Pick<Store, 'outputNameSecret' | 'getCachedOutput' | 'putCachedOutput' | 'getValidators' | 'putValidators'>;
export type WebhooksPart = Pick<Store,
  'createSubscription' | 'listSubscriptions' | 'getSubscription' | 'deleteSubscription' | 'rotateSecret'
  | 'claimDeliveries' | 'renewDeliveryLeases' | 'recordAttempt' | 'listDeliveries' | 'retryDelivery' | 'listEvents'>;
export type KeysPart = Pick<Store, 'createKey' | 'listKeys' | 'revokeKey' | 'findKey'>;

export interface StoreParts {
  requests: RequestsPart;
  pipeline: PipelinePart;
  operations: OperationsPart;
  cache: CachePart;
  webhooks: WebhooksPart;
  keys: KeysPart;
}

type Opts = { limit: number; cursor?: string | null };
type Lease = { owner: string; limit: number; leaseMs: number; now: number };

export abstract class ComposedStore implements Store {
  abstract readonly backend: Store['backend'];
  readonly #p: StoreParts;

  constructor(parts: StoreParts) {
    this.#p = parts;
  }

  // ---- ingest and reads -------------------------------------------------------------------
  beginRequest(input: BeginInput) { return this.#p.requests.beginRequest(input); }
  appendBatch(requestId: string, products: ProductRecord[]) { return this.#p.requests.appendBatch(requestId, products); }
  commitRequest(requestId: string, now: number, extra?: CommitExtra) { return this.#p.requests.commitRequest(requestId, now, extra); }
  abortRequest(requestId: string) { return this.#p.requests.abortRequest(requestId); }
  cleanupIngesting(before: number) { return this.#p.requests.cleanupIngesting(before); }
  getRequest(id: string) { return this.#p.requests.getRequest(id); }
  getRequestVersion(id: string) { return this.#p.requests.getRequestVersion(id); }
  listRequests(opts: Opts & { tenantId: string | null }) { return this.#p.requests.listRequests(opts); }
  listProducts(requestId: string, opts: Opts) { return this.#p.requests.listProducts(requestId, opts); }
  getItemsByUrl(requestId: string, urls: string[]) { return this.#p.requests.getItemsByUrl(requestId, urls); }

  // ---- pipeline ---------------------------------------------------------------------------
  claimItems(input: Lease) { return this.#p.pipeline.claimItems(input); }
  chargeAttempt(input: { itemId: string; owner: string }) { return this.#p.pipeline.chargeAttempt(input); }
  renewLeases(input: { owner: string; itemIds: string[]; leaseMs: number; now: number }) { return this.#p.pipeline.renewLeases(input); }
  completeItems(inputs: CompleteInput[]) { return this.#p.pipeline.completeItems(inputs); }
  recordProgress(input: { charges: ChargeInput[]; completions: CompleteInput[] }) { return this.#p.pipeline.recordProgress(input); }
  releaseItems(owner: string) { return this.#p.pipeline.releaseItems(owner); }
  pendingStats(now: number) { return this.#p.pipeline.pendingStats(now); }

  // ---- operating on requests --------------------------------------------------------------
  cancelRequest(id: string, now: number) { return this.#p.operations.cancelRequest(id, now); }
  retryRequest(id: string, now: number) { return this.#p.operations.retryRequest(id, now); }
  deleteRequest(id: string, now: number) { return this.#p.operations.deleteRequest(id, now); }
  purgeDeleting() { return this.#p.operations.purgeDeleting(); }
  listExpiredRequests(before: number, limit: number) { return this.#p.operations.listExpiredRequests(before, limit); }
  referencedOutputs(keys: string[]) { return this.#p.operations.referencedOutputs(keys); }
  tenantUsage(tenantId: string, since: number) { return this.#p.operations.tenantUsage(tenantId, since); }
  tryLock(name: string, owner: string, ttlMs: number, now: number) { return this.#p.operations.tryLock(name, owner, ttlMs, now); }

  // ---- skipping needless work -------------------------------------------------------------
  outputNameSecret() { return this.#p.cache.outputNameSecret(); }
  getCachedOutput(tenantId: string, sourceSha256: string, settings: string) {
    return this.#p.cache.getCachedOutput(tenantId, sourceSha256, settings);
  }
  putCachedOutput(tenantId: string, sourceSha256: string, settings: string, output: ReusableOutput, now: number) {
    return this.#p.cache.putCachedOutput(tenantId, sourceSha256, settings, output, now);
  }
  getValidators(tenantId: string, url: string, settings: string) { return this.#p.cache.getValidators(tenantId, url, settings); }
  putValidators(tenantId: string, url: string, settings: string, validators: UrlValidators, now: number) {
    return this.#p.cache.putValidators(tenantId, url, settings, validators, now);
  }

  // ---- webhooks ---------------------------------------------------------------------------
  createSubscription(sub: Subscription) { return this.#p.webhooks.createSubscription(sub); }
  listSubscriptions(tenantId: string | null) { return this.#p.webhooks.listSubscriptions(tenantId); }
  getSubscription(id: string) { return this.#p.webhooks.getSubscription(id); }
  deleteSubscription(id: string) { return this.#p.webhooks.deleteSubscription(id); }
  rotateSecret(input: { id: string; newSecret: string; previousSecretExpiresAt: number }) { return this.#p.webhooks.rotateSecret(input); }
  claimDeliveries(input: Lease) { return this.#p.webhooks.claimDeliveries(input); }
  renewDeliveryLeases(input: { owner: string; deliveryIds: string[]; leaseMs: number; now: number }) {
    return this.#p.webhooks.renewDeliveryLeases(input);
  }
  recordAttempt(input: { owner: string; attempt: DeliveryAttempt; outcome: AttemptOutcome; now: number }) {
    return this.#p.webhooks.recordAttempt(input);
  }
  listDeliveries(subscriptionId: string, opts: Opts) { return this.#p.webhooks.listDeliveries(subscriptionId, opts); }
  retryDelivery(input: { subscriptionId: string; deliveryId: string; now: number }) { return this.#p.webhooks.retryDelivery(input); }
  listEvents(requestId: string) { return this.#p.webhooks.listEvents(requestId); }

  // ---- API keys ---------------------------------------------------------------------------
  createKey(key: ApiKeyRecord) { return this.#p.keys.createKey(key); }
  listKeys() { return this.#p.keys.listKeys(); }
  revokeKey(id: string, now: number) { return this.#p.keys.revokeKey(id, now); }
  findKey(hash: string) { return this.#p.keys.findKey(hash); }

  // ---- lifecycle: the backend's own -------------------------------------------------------
  abstract schemaVersion(): Promise<number>;
  abstract ping(): Promise<void>;
  abstract close(): Promise<void>;
}
