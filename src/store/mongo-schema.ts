// The MongoDB schema: document shapes, indexes and versioned migrations. The version lives in
// the `meta` collection. Every migration is idempotent (conditional updates, upserts), so
// several processes starting at once may run one concurrently without harm; the version only
// moves forward ($max). Only plain operations are used — no transactions, no pipeline
// updates, no partial or sparse indexes — so one path serves a standalone mongod, a replica
// set and FerretDB alike.
import type { Collection, Db, IndexDescription, ObjectId } from 'mongodb';
import { eventIdFor, eventPayload } from './lifecycle.js';
import {
  ADMIN_TENANT,
  type ApiKeyRecord, type DeliveryAttempt, type DeliveryRecord, type EventRecord, type EventType, type ItemRecord,
  type ProductRecord, type RequestRecord, type RequestStatus, type Subscription,
} from './types.js';

/** A record as stored: its `id` becomes the document's `_id`. */
type Doc<T extends { id: string }, Id = string> = Omit<T, 'id'> & { _id: Id };

/** An event waiting in its request's outbox for the relay. */
export type OutboxEntry = EventRecord;

export type RequestDoc = Omit<Doc<RequestRecord>, 'status'> & {
  /** 'aborting' is an ingesting request being removed; 'deleting' a committed one. */
  status: RequestStatus | 'aborting' | 'deleting';
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
};
export type SubscriptionDoc = Doc<Subscription>;
/** `order` breaks ties between events of one millisecond: started before the final one. */
export type EventDoc = Doc<EventRecord> & { order: number };
export type DeliveryDoc = Doc<DeliveryRecord>;
export type AttemptDoc = DeliveryAttempt;
export type KeyDoc = Doc<ApiKeyRecord>;
export type LockDoc = { _id: string; owner: string; until: number };
/** _id: JSON [tenant, source sha256, settings] */
export type CacheDoc = { _id: string; outputKey: string; format: string; bytesOut: number; updatedAt: number };
/** _id: JSON [tenant, url, settings] */
export type ValidatorsDoc = { _id: string; etag: string | null; lastModified: string | null; outputKey: string; format: string; bytesIn: number; bytesOut: number; updatedAt: number };
type MetaDoc = { _id: string; version: number };

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
  };
}

/** The idempotency document of (tenant, key). */
export const idempotencyId = (tenantId: string, key: string) => JSON.stringify([tenantId, key]);

/** Every index a hot-path query uses (claims, status pages, the outbox relay, due deliveries). */
const INDEXES: { [K in keyof Collections]?: IndexDescription[] } = {
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
  ],
  subscriptions: [{ key: { tenantId: 1, createdAt: 1 }, name: 'tenant_created' }],
  events: [{ key: { requestId: 1, createdAt: 1, order: 1 }, name: 'request_created' }],
  deliveries: [
    { key: { state: 1, nextAttemptAt: 1 }, name: 'state_due' },
    { key: { subscriptionId: 1, createdAt: -1, _id: -1 }, name: 'subscription_created' },
  ],
  attempts: [{ key: { deliveryId: 1, attempt: 1 }, name: 'delivery_attempt', unique: true }],
  keys: [{ key: { hash: 1 }, name: 'hash', unique: true }],
};

/** Indexes of release 0.1.0 that other servers reject (partial) or that nothing uses any more. */
const RETIRED_INDEXES: Array<[keyof Collections, string]> = [
  ['requests', 'idempotency_key'],
  ['requests', 'pending_events'],
  ['items', 'running_owner'],
  ['items', 'state_id'],
];

interface Migration {
  version: number;
  description: string;
  up(c: Collections): Promise<void>;
}

/** 0.1.0 documents, as far as the upgrade needs to know them. */
type V1Request = RequestDoc & { idempotencyKey?: string; pendingEvents?: Array<{ type: EventType; at: number }> };

const MIGRATIONS: Migration[] = [
  { version: 1, description: 'release 0.1.0 schema (collections are created on first write)', async up() {} },
  {
    version: 2,
    description: 'tenants, output options, per-tenant idempotency, outbox on the request, codec attempts, API keys',
    async up(c) {
      const requests = c.requests as unknown as Collection<V1Request>;
      await requests.updateMany({ tenantId: { $exists: false } }, {
        $set: { tenantId: ADMIN_TENANT, options: null, bytesIn: 0, bytesOut: 0, run: 0, lastClaimAt: 0 },
      });
      await requests.updateMany({ version: { $exists: false } }, { $set: { version: 0 } });
      for await (const doc of requests.find({ idempotencyKey: { $type: 'string' } })) {
        const key = doc.idempotencyKey!;
        await c.idempotency.updateOne(
          { _id: idempotencyId(ADMIN_TENANT, key) },
          { $setOnInsert: { tenantId: ADMIN_TENANT, key, requestId: doc._id, fingerprint: null } },
          { upsert: true },
        );
        await requests.updateOne({ _id: doc._id }, { $unset: { idempotencyKey: '' } });
      }
      // Transitions whose event 0.1.0 had not written yet go to the outbox, with the ids 0.1.0
      // gave them (the relay's upserts make an event already written a no-op).
      for await (const doc of requests.find({ pendingEvents: { $exists: true } })) {
        const entries = (doc.pendingEvents ?? []).map(({ type, at }) => {
          const status: RequestStatus = type === 'processing.started' ? 'processing' : type === 'processing.completed' ? 'completed' : 'failed';
          return { id: eventIdFor(doc._id, 0, type), requestId: doc._id, type, createdAt: at, payload: eventPayload(type, { ...toV1Record(doc), status }, at) };
        });
        const update: Record<string, unknown> = { $unset: { pendingEvents: '' } };
        if (entries.length) Object.assign(update, { $push: { outbox: { $each: entries } }, $set: { outboxAt: Math.min(...entries.map((e) => e.createdAt)) } });
        await requests.updateOne({ _id: doc._id }, update);
      }
      // attempts counted claims; now it counts codec entries and claims has its own field.
      // (No pipeline updates: one update per distinct value.)
      for (const n of await c.items.distinct('attempts', { claims: { $exists: false } })) {
        await c.items.updateMany({ attempts: n, claims: { $exists: false } }, { $set: { claims: n, attempts: 0 } });
      }
      await c.items.updateMany({ outcome: { $exists: false } }, { $set: { outcome: null, bytesIn: null, bytesOut: null } });
      await (c.items as unknown as Collection<{ state: string }>).updateMany({ state: 'staged' }, { $set: { state: 'pending' } });
      await c.subscriptions.updateMany({ tenantId: { $exists: false } }, { $set: { tenantId: ADMIN_TENANT } });
    },
  },
  // Indexes only (created below for every version): output references, retention, retries.
  { version: 3, description: 'output references (blob clean-up), retention and job locks', async up() {} },
  // New collections, keyed by _id alone.
  { version: 4, description: 'content cache and URL validators (re-imports that skip needless work)', async up() {} },
  {
    version: 5,
    description: 'per-key quota overrides',
    async up(c) {
      await c.keys.updateMany({ maxImagesInFlight: { $exists: false } }, { $set: { maxImagesInFlight: null, maxUploadsPerMinute: null } });
    },
  },
  {
    version: 6,
    description: 'per-image notes (converted from, first frame of N, approximate colours)',
    async up(c) {
      await c.items.updateMany({ note: { $exists: false } }, { $set: { note: null } });
    },
  },
];

export const MONGO_SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

function toV1Record(d: V1Request): RequestRecord {
  return {
    id: d._id, status: d.status === 'aborting' || d.status === 'deleting' ? 'ingesting' : d.status, tenantId: ADMIN_TENANT,
    webhookUrl: d.webhookUrl ?? null, webhookSecret: d.webhookSecret ?? null, options: null,
    productCount: d.productCount, total: d.total, done: d.done, failed: d.failed, bytesIn: 0, bytesOut: 0, run: 0,
    createdAt: d.createdAt, updatedAt: d.updatedAt, version: d.version ?? 0,
  };
}

/** The schema version the database is at; a database 0.1.0 wrote (no meta) is at 1. */
export async function schemaVersionOf(c: Collections): Promise<number> {
  const meta = await c.meta.findOne({ _id: 'schema' });
  if (meta) return meta.version;
  return (await c.requests.estimatedDocumentCount()) > 0 || (await c.subscriptions.estimatedDocumentCount()) > 0 ? 1 : 0;
}

/** Brings the database up to MONGO_SCHEMA_VERSION and makes sure every index exists. */
export async function migrateMongo(c: Collections): Promise<void> {
  const current = await schemaVersionOf(c);
  if (current > MONGO_SCHEMA_VERSION) {
    throw new Error(`the database was written by a newer release (schema ${current}; this one knows up to ${MONGO_SCHEMA_VERSION})`);
  }
  for (const m of MIGRATIONS.filter((x) => x.version > current)) {
    await m.up(c);
    await c.meta.updateOne({ _id: 'schema' }, { $max: { version: m.version } }, { upsert: true });
  }
  for (const [name, index] of RETIRED_INDEXES) {
    await c[name].dropIndex(index).catch(() => {}); // absent on new databases
  }
  // One index per command: FerretDB 1.24 drops the connection when one createIndexes command
  // names several indexes that all exist already.
  for (const [name, list] of Object.entries(INDEXES)) {
    for (const index of list) await c[name as keyof Collections].createIndexes([index]);
  }
}
