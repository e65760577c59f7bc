// The MongoDB schema: document shapes, collections and the indexes the hot paths use. The
// versioned migrations that bring a database to this shape are in migrations.ts. Only plain
// operations are used — no transactions, no pipeline updates, no partial or sparse indexes — so
// one path serves a standalone mongod, a replica set and FerretDB alike.
import type { Collection, Db, IndexDescription, ObjectId } from 'mongodb';
import type { HiddenStatus } from '../lifecycle.js';
import type {
  ApiKeyRecord, DeliveryAttempt, DeliveryRecord, EventRecord, ItemRecord, ProductRecord, RequestRecord, RequestStatus, Subscription,
} from '../types.js';

/** A record as stored: its `id` becomes the document's `_id`. */
type Doc<T extends { id: string }, Id = string> = Omit<T, 'id'> & { _id: Id };

/** An event waiting in its request's outbox for the relay. */
export type OutboxEntry = EventRecord;

export type RequestDoc = Omit<Doc<RequestRecord>, 'status'> & {
  /** Besides the visible states, the hidden ones of a request being removed (lifecycle.HIDDEN). */
  status: RequestStatus | HiddenStatus;
  /** Set while a retry is resetting the request's failed items (retryRequest). */
  retrying?: boolean;
  lastClaimAt: number;
  /** Events written with a transition, not yet relayed to events and deliveries. */
  outbox?: OutboxEntry[];
  /** Set while the outbox holds something: when its oldest entry was written. */
  outboxAt?: number;
  /** Items counted into done/failed whose own document is not yet marked settled. */
  settling?: string[];
};
export type IdempotencyDoc = { _id: string; tenantId: string; key: string; requestId: string; fingerprint: string | null };
export type ProductDoc = ProductRecord & { _id?: ObjectId; requestId: string };
export type ItemDoc = Omit<Doc<ItemRecord, ObjectId>, 'id'> & {
  createdAt: number;
  /** false between an item's final state and its request's counters taking it in. */
  settled?: boolean;
  /** the values of renditionKeys, as an array: what the output references index (a multikey index) looks up */
  renditionOutputKeys?: string[];
};
export type SubscriptionDoc = Doc<Subscription>;
/** `order` breaks ties between events of one millisecond: started before the final one. */
export type EventDoc = Doc<EventRecord> & { order: number };
export type DeliveryDoc = Doc<DeliveryRecord>;
export type AttemptDoc = DeliveryAttempt;
export type KeyDoc = Doc<ApiKeyRecord>;
export type LockDoc = { _id: string; owner: string; until: number };
/** _id: JSON [tenant, source sha256, settings] */
export type CacheDoc = {
  _id: string; outputKey: string; format: string; bytesOut: number; renditionKeys?: Record<string, string> | null; quality?: number | null; score?: number | null; note?: string | null; updatedAt: number;
};
/** _id: JSON [tenant, url, settings] */
export type ValidatorsDoc = {
  _id: string; etag: string | null; lastModified: string | null; outputKey: string; format: string; bytesIn: number; bytesOut: number;
  renditionKeys?: Record<string, string> | null; quality?: number | null; score?: number | null; note?: string | null; updatedAt: number;
};
export type MetaDoc = { _id: string; version: number };
/** One committed upload (the per-minute quota); _id: the request id. */
export type UploadDoc = { _id: string; tenantId: string; at: number };
/** A deployment-wide secret, made once (e.g. _id 'output_names'). */
export type SecretDoc = { _id: string; value: string };

export interface Collections {
  requests: Collection<RequestDoc>;
  idempotency: Collection<IdempotencyDoc>;
  products: Collection<ProductDoc>;
  items: Collection<ItemDoc>;
  subscriptions: Collection<SubscriptionDoc>;
  events: Collection<EventDoc>;
  deliveries: Collection<DeliveryDoc>;
  attempts: Collection<AttemptDoc>;
  keys: Collection<KeyDoc>;
  locks: Collection<LockDoc>;
  contentCache: Collection<CacheDoc>;
  validators: Collection<ValidatorsDoc>;
  meta: Collection<MetaDoc>;
  uploads: Collection<UploadDoc>;
  secrets: Collection<SecretDoc>;
}

export function collections(db: Db): Collections {
  return {
    requests: db.collection('requests'),
    idempotency: db.collection('idempotency_keys'),
    products: db.collection('products'),
    items: db.collection('items'),
    subscriptions: db.collection('subscriptions'),
    events: db.collection('events'),
    deliveries: db.collection('deliveries'),
    attempts: db.collection('delivery_attempts'),
    keys: db.collection('api_keys'),
    locks: db.collection('locks'),
    contentCache: db.collection('content_cache'),
    validators: db.collection('url_validators'),
    meta: db.collection('meta'),
    uploads: db.collection('upload_log'),
    secrets: db.collection('deployment_secrets'),
  };
}

/** The idempotency document of (tenant, key). */
export const idempotencyId = (tenantId: string, key: string) => JSON.stringify([tenantId, key]);

/** Every index a hot-path query uses (claims, status pages, the outbox relay, due deliveries). */
export const INDEXES: { [K in keyof Collections]?: IndexDescription[] } = {
  requests: [
    { key: { status: 1, createdAt: 1 }, name: 'status_created' },
    { key: { createdAt: -1, _id: -1 }, name: 'created' },
    { key: { tenantId: 1, createdAt: -1, _id: -1 }, name: 'tenant_created' },
    { key: { outboxAt: 1 }, name: 'outbox' },
    { key: { status: 1, updatedAt: 1 }, name: 'status_updated' },
    { key: { retrying: 1 }, name: 'retrying' },
  ],
  products: [{ key: { requestId: 1, serial: 1 }, name: 'request_serial', unique: true }],
  items: [
    { key: { requestId: 1, url: 1 }, name: 'request_url', unique: true },
    { key: { requestId: 1, state: 1, _id: 1 }, name: 'request_state' },
    { key: { state: 1, requestId: 1 }, name: 'state_request' },
    { key: { state: 1, leaseUntil: 1 }, name: 'state_lease' },
    { key: { leaseOwner: 1, state: 1 }, name: 'owner_state' },
    { key: { settled: 1, leaseUntil: 1 }, name: 'settled_lease' },
    { key: { outputKey: 1 }, name: 'output_key' },
    { key: { renditionOutputKeys: 1 }, name: 'rendition_output_keys' },
  ],
  subscriptions: [{ key: { tenantId: 1, createdAt: 1 }, name: 'tenant_created' }],
  events: [{ key: { requestId: 1, createdAt: 1, order: 1 }, name: 'request_created' }],
  deliveries: [
    { key: { state: 1, nextAttemptAt: 1 }, name: 'state_due' },
    { key: { subscriptionId: 1, createdAt: -1, _id: -1 }, name: 'subscription_created' },
  ],
  attempts: [{ key: { deliveryId: 1, attempt: 1 }, name: 'delivery_attempt', unique: true }],
  keys: [{ key: { hash: 1 }, name: 'hash', unique: true }],
  uploads: [{ key: { tenantId: 1, at: 1 }, name: 'tenant_at' }],
};
