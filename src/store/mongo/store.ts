// The MongoDB store: the backend for running on many machines. Every instance (API and
// runners) coordinates only through these collections, with single-document atomic updates
// and no multi-document transactions, so one path runs on a standalone server, a replica
// set and FerretDB. The rules come from lifecycle.ts.
//
// - A transition and its event are one update of the request document: the event goes into
//   the request's `outbox` in the same write. A relay then writes it to `events` and its
//   `deliveries` (upserts on ids derived from the event, so running it twice is harmless) and
//   pulls it from the outbox. The relay runs right after the transition and again, for what
//   a crash left behind, from claimDeliveries.
// - A completion marks the item final but not `settled`, adds it to the request's counters
//   (guarded by the request's `settling` list, so it is counted once), moves the request to
//   its final state when it was the last one, then marks the item settled. An item left
//   unsettled by a crash is settled by the next claim after its lease runs out.
// - Claims are findOneAndUpdate on (state, lease), one document at a time.
//
// Ingest: a request stays ingesting (invisible) while its batches are written; commit makes
// it visible in one update. Claims go by committed request, so its items need no staging.
//
// The store is assembled from one part per concern, in this folder: requests (ingest and reads),
// pipeline, operations, cache, webhooks, keys, with the outbox relay, the shared helpers and
// the document mappers beside them.
import type { MongoClient } from 'mongodb';
import { ComposedStore } from '../compose.js';
import { connectMongo, oneLine, redactUri, type MongoStoreOptions } from './connect.js';
import { migrateMongo, schemaVersionOf } from './migrations.js';
import { collections, type Collections } from './schema.js';
import { MongoCache } from './cache.js';
import { MongoKeys } from './keys.js';
import { MongoOperations } from './operations.js';
import { MongoOutbox } from './outbox.js';
import { MongoPipeline } from './pipeline.js';
import { MongoRequests } from './requests.js';
import { MongoWebhooks } from './webhooks.js';

export { redactUri };

/** Connects, migrates, and returns the store. Start-up failures are one line naming the host. */
export async function openMongoStore(uri: string, dbName: string, opts: MongoStoreOptions): Promise<MongoStore> {
  const { client, db } = await connectMongo(uri, dbName, opts);
  const c = collections(db);
  try {
    await migrateMongo(c);
  } catch (err) {
    await client.close(true).catch(() => {});
    throw new Error(`cannot prepare MongoDB database ${dbName} at ${redactUri(uri)}: ${oneLine(err, uri)}`);
  }
  return new MongoStore(client, c);
}

export class MongoStore extends ComposedStore {
  readonly backend = 'mongodb' as const;
  readonly #client: MongoClient;
  readonly #c: Collections;

  constructor(client: MongoClient, c: Collections) {
    const outbox = new MongoOutbox(c);
    super({
      requests: new MongoRequests(c), pipeline: new MongoPipeline(c, outbox), operations: new MongoOperations(c, outbox),
      cache: new MongoCache(c), webhooks: new MongoWebhooks(c, outbox), keys: new MongoKeys(c),
    });
    this.#client = client;
    this.#c = c;
  }

  // ---- lifecycle ------------------------------------------------------------------------

  async schemaVersion(): Promise<number> {
    return schemaVersionOf(this.#c);
  }

  async ping(): Promise<void> {
    await this.#c.meta.db.command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
