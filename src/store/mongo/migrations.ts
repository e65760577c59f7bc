// The MongoDB schema's versioned migrations (frozen: each keeps the literals of its time); the
// shapes and indexes are in schema.ts. The version lives in
// the `meta` collection. Every migration is idempotent (conditional updates, upserts), so
// several processes starting at once may run one concurrently without harm; the version only
// moves forward ($max). Only plain operations are used — no transactions, no pipeline
// updates, no partial or sparse indexes — so one path serves a standalone mongod, a replica
// set and FerretDB alike.
import type { Collection } from 'mongodb';
import { eventIdFor, eventPayload, readStatus } from '../lifecycle.js';
import { ADMIN_TENANT, UPLOAD_LOG_KEEP_MS, type EventType, type RequestRecord, type RequestStatus } from '../types.js';
import { idempotencyId, INDEXES, type Collections, type RequestDoc } from './schema.js';

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
    description: 'upload log for the per-minute quota (deletes free nothing), deployment secrets (output names)',
    async up(c) {
      // The last hour's uploads keep counting; deployment_secrets fills on first use.
      const recent = c.requests.find({ status: { $in: ['received', 'processing', 'completed', 'failed', 'cancelled'] }, createdAt: { $gte: Date.now() - UPLOAD_LOG_KEEP_MS } }, { projection: { tenantId: 1, createdAt: 1 } });
      for await (const r of recent) {
        await c.uploads.updateOne({ _id: r._id }, { $setOnInsert: { tenantId: r.tenantId, at: r.createdAt } }, { upsert: true });
      }
    },
  },
  {
    version: 7,
    description: "the uploaded file's name (older requests read null)",
    async up(c) {
      await c.requests.updateMany({ fileName: { $exists: false } }, { $set: { fileName: null } });
    },
  },
  {
    version: 8,
    description: 'per-image notes (converted from, first frame of N, approximate colours)',
    async up(c) {
      await c.items.updateMany({ note: { $exists: false } }, { $set: { note: null } });
    },
  },
  {
    version: 9,
    description: 'renditions: their output keys on items (and the rendition_output_keys index, created below)',
    async up(c) {
      // Request options carry the renditions asked for, and cache entries without renditionKeys have none: nothing to fill there.
      await c.items.updateMany({ renditionKeys: { $exists: false } }, { $set: { renditionKeys: null, renditionOutputKeys: [] } });
    },
  },
  {
    version: 10,
    description: 'encoder quality and SSIMULACRA2 score per image, kept with reusable outputs too (quality=auto; older rows read null)',
    async up(c) {
      await c.items.updateMany({ quality: { $exists: false } }, { $set: { quality: null, score: null } });
      await c.contentCache.updateMany({ quality: { $exists: false } }, { $set: { quality: null, score: null } });
      await c.validators.updateMany({ quality: { $exists: false } }, { $set: { quality: null, score: null } });
    },
  },
  {
    version: 11,
    description: 'notes on the content cache and the URL validators (a reused image says what its first import said)',
    async up(c) {
      // An entry made since notes exist (version 8) takes the note of an item that has its
      // output; older entries, like the items of their time, have none. Noted items are few
      // (input-only formats, animations), so this walks them, not the cache.
      const noted = c.items.find({ note: { $type: 'string' }, outputKey: { $type: 'string' } }, { projection: { outputKey: 1, note: 1 } });
      for await (const item of noted) {
        const unset = { outputKey: item.outputKey!, note: { $exists: false } };
        await c.contentCache.updateMany(unset, { $set: { note: item.note! } });
        await c.validators.updateMany(unset, { $set: { note: item.note! } });
      }
      await c.contentCache.updateMany({ note: { $exists: false } }, { $set: { note: null } });
      await c.validators.updateMany({ note: { $exists: false } }, { $set: { note: null } });
    },
  },
];

export const MONGO_SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

function toV1Record(d: V1Request): RequestRecord {
  return {
    id: d._id, status: readStatus(d.status), tenantId: ADMIN_TENANT,
    webhookUrl: d.webhookUrl ?? null, webhookSecret: d.webhookSecret ?? null, options: null, fileName: null,
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
