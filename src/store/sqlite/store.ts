// The embedded store: one SQLite file (WAL) under DATA_DIR, shared safely by any number of
// processes on the same machine. Every multi-statement change runs in one IMMEDIATE
// transaction, so a state change and its event (with its deliveries) commit together;
// within a process, writes are serialised by a mutex because libsql runs statements
// synchronously and a second connection waiting on the lock would block the event loop that
// the first one needs to finish. The rules come from lifecycle.ts.
//
// The store is assembled from one part per concern, in this folder: requests (ingest and reads),
// pipeline, operations, cache, webhooks, keys, with the outbox, the shared context and the
// row mappers beside them.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../../storage/private-files.js';
import { ComposedStore } from '../compose.js';
import { Mutex } from '../mutex.js';
import { SqliteCache } from './cache.js';
import { SqliteConnections, type SqlClient } from './connection.js';
import { run, SqliteContext } from './context.js';
import { SqliteKeys } from './keys.js';
import { SqliteOperations } from './operations.js';
import { SqlitePipeline } from './pipeline.js';
import { SqliteRequests } from './requests.js';
import { SqliteWebhooks } from './webhooks.js';
import { migrateSqlite, SQLITE_SCHEMA_VERSION } from './migrations.js';

/**
 * One write mutex per database file for the whole process, shared by every store opened on
 * it: a second connection in the same thread waiting on the lock would never see it freed.
 */
const writeMutexes = new Map<string, Mutex>();

export async function openSqliteStore(file: string, opts: { busyTimeoutMs?: number } = {}): Promise<SqliteStore> {
  file = resolve(file);
  // Private whatever the umask; SQLite gives the -wal and -shm files the mode of this one.
  mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
  closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
  const client = new SqliteConnections(file, { timeoutMs: opts.busyTimeoutMs ?? 10_000 });
  // journal_mode is persistent in the file; the others are per connection and are the
  // defaults we want (synchronous=FULL keeps a commit durable across power loss too).
  await client.execute('PRAGMA journal_mode = WAL');
  let mutex = writeMutexes.get(file);
  if (!mutex) writeMutexes.set(file, (mutex = new Mutex()));
  await mutex.run(() => migrateSqlite(client));
  return new SqliteStore(client, mutex);
}

export class SqliteStore extends ComposedStore {
  readonly backend = 'sqlite' as const;
  readonly #ctx: SqliteContext;

  constructor(db: SqlClient, writes: Mutex) {
    const ctx = new SqliteContext(db, writes);
    super({
      requests: new SqliteRequests(ctx), pipeline: new SqlitePipeline(ctx), operations: new SqliteOperations(ctx),
      cache: new SqliteCache(ctx), webhooks: new SqliteWebhooks(ctx), keys: new SqliteKeys(ctx),
    });
    this.#ctx = ctx;
  }

  // ---- lifecycle ------------------------------------------------------------------------

  async schemaVersion(): Promise<number> {
    return Number((await run(this.#ctx.db, 'PRAGMA user_version')).rows[0]!.user_version);
  }

  async ping(): Promise<void> {
    await run(this.#ctx.db, 'SELECT 1');
  }

  async close(): Promise<void> {
    await this.#ctx.close();
  }
}

export { SQLITE_SCHEMA_VERSION };
