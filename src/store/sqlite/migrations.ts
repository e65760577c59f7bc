// The SQLite schema as a list of versioned migrations. The file's version is PRAGMA
// user_version; each migration runs in the same IMMEDIATE transaction that re-reads it, so
// several processes starting at once on one file apply each migration exactly once.
// Release 0.1.0 wrote no version (0): migration 1 is its schema, written so that it is a
// no-op on a file 0.1.0 made.
import type { SqlClient } from './connection.js';

interface Migration {
  version: number;
  description: string;
  up(db: MigrationTx): Promise<void>;
}

interface MigrationTx {
  execute(sql: string): Promise<{ rows: ArrayLike<Record<string, unknown>> }>;
  executeMultiple(sql: string): Promise<void>;
}

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'release 0.1.0 schema',
    async up(db) {
      await db.executeMultiple(`
        CREATE TABLE IF NOT EXISTS requests (
          id TEXT PRIMARY KEY, status TEXT NOT NULL, idempotency_key TEXT UNIQUE,
          webhook_url TEXT, webhook_secret TEXT,
          product_count INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,
          done INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
          created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS requests_status ON requests(status, created_at);
        CREATE TABLE IF NOT EXISTS products (
          request_id TEXT NOT NULL, serial INTEGER NOT NULL, name TEXT NOT NULL, input_urls TEXT NOT NULL,
          PRIMARY KEY (request_id, serial)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS items (
          id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, url TEXT NOT NULL,
          state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
          lease_owner TEXT, lease_until INTEGER, output_key TEXT, error TEXT,
          created_at INTEGER NOT NULL,
          UNIQUE (request_id, url)
        );
        CREATE INDEX IF NOT EXISTS items_state ON items(state);
        CREATE INDEX IF NOT EXISTS items_lease ON items(lease_until) WHERE state = 'running';
        CREATE TABLE IF NOT EXISTS subscriptions (
          id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, secret TEXT NOT NULL,
          previous_secret TEXT, previous_secret_expires_at INTEGER, created_at INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS events (
          id TEXT PRIMARY KEY, request_id TEXT NOT NULL, type TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS events_request ON events(request_id, created_at);
        CREATE TABLE IF NOT EXISTS deliveries (
          id TEXT PRIMARY KEY, event_id TEXT NOT NULL, subscription_id TEXT, request_id TEXT NOT NULL,
          url TEXT NOT NULL, event_type TEXT NOT NULL, payload TEXT NOT NULL,
          state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
          lease_owner TEXT, lease_until INTEGER, last_error TEXT,
          created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_attempt_at) WHERE state = 'pending';
        CREATE INDEX IF NOT EXISTS deliveries_subscription ON deliveries(subscription_id, created_at, id);
        CREATE TABLE IF NOT EXISTS delivery_attempts (
          delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, at INTEGER NOT NULL,
          status_code INTEGER, error TEXT, duration_ms INTEGER NOT NULL,
          PRIMARY KEY (delivery_id, attempt)
        ) WITHOUT ROWID;
      `);
      // 0.1.0 added requests.version to files made before it, so it may or may not be there.
      const columns = await db.execute('PRAGMA table_info(requests)');
      if (!Array.from(columns.rows).some((c) => c.name === 'version')) {
        await db.execute('ALTER TABLE requests ADD COLUMN version INTEGER NOT NULL DEFAULT 0');
      }
    },
  },
  {
    version: 2,
    description: 'tenants, output options, per-tenant idempotency, fair claims, codec attempts, outcomes, API keys',
    async up(db) {
      await db.executeMultiple(`
        ALTER TABLE requests ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'admin';
        ALTER TABLE requests ADD COLUMN options TEXT;
        ALTER TABLE requests ADD COLUMN bytes_in INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN bytes_out INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN run INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN last_claim_at INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX requests_created ON requests(created_at, id);
        CREATE INDEX requests_tenant_created ON requests(tenant_id, created_at, id);

        -- Idempotency keys become per tenant, with a fingerprint of the body. The old column
        -- stays (dropping a UNIQUE column means rebuilding the table) but is no longer written.
        CREATE TABLE idempotency_keys (
          tenant_id TEXT NOT NULL, key TEXT NOT NULL, request_id TEXT NOT NULL, fingerprint TEXT,
          PRIMARY KEY (tenant_id, key)
        ) WITHOUT ROWID;
        INSERT INTO idempotency_keys (tenant_id, key, request_id, fingerprint)
          SELECT 'admin', idempotency_key, id, NULL FROM requests WHERE idempotency_key IS NOT NULL;
        UPDATE requests SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL;

        -- attempts counted claims; now it counts codec entries and claims has its own column.
        ALTER TABLE items ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
        UPDATE items SET claims = attempts, attempts = 0;
        ALTER TABLE items ADD COLUMN outcome TEXT;
        ALTER TABLE items ADD COLUMN bytes_in INTEGER;
        ALTER TABLE items ADD COLUMN bytes_out INTEGER;
        -- Items are claimable by their request's state alone; 'staged' is gone.
        UPDATE items SET state = 'pending' WHERE state = 'staged';
        CREATE INDEX items_request_state ON items(request_id, state, id);

        ALTER TABLE subscriptions ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'admin';
        ALTER TABLE events ADD COLUMN ord INTEGER NOT NULL DEFAULT 0;
        UPDATE events SET ord = 1 WHERE type != 'processing.started';

        CREATE TABLE api_keys (
          id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
          created_at INTEGER NOT NULL, revoked_at INTEGER
        );
      `);
    },
  },
  {
    version: 3,
    description: 'output references (blob clean-up), retention and job locks',
    async up(db) {
      await db.executeMultiple(`
        CREATE INDEX items_output ON items(output_key) WHERE output_key IS NOT NULL;
        CREATE INDEX requests_status_updated ON requests(status, updated_at);
        CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 4,
    description: 'content cache and URL validators (re-imports that skip needless work)',
    async up(db) {
      await db.executeMultiple(`
        CREATE TABLE content_cache (
          tenant_id TEXT NOT NULL, source_sha256 TEXT NOT NULL, settings TEXT NOT NULL,
          output_key TEXT NOT NULL, format TEXT NOT NULL, bytes_out INTEGER NOT NULL, updated_at INTEGER NOT NULL,
          PRIMARY KEY (tenant_id, source_sha256, settings)
        ) WITHOUT ROWID;
        CREATE TABLE url_validators (
          tenant_id TEXT NOT NULL, url TEXT NOT NULL, settings TEXT NOT NULL,
          etag TEXT, last_modified TEXT, output_key TEXT NOT NULL, format TEXT NOT NULL,
          bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL, updated_at INTEGER NOT NULL,
          PRIMARY KEY (tenant_id, url, settings)
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 5,
    description: 'per-key quota overrides',
    async up(db) {
      await db.executeMultiple(`
        ALTER TABLE api_keys ADD COLUMN max_images_in_flight INTEGER;
        ALTER TABLE api_keys ADD COLUMN max_uploads_per_minute INTEGER;
      `);
    },
  },
  {
    version: 6,
    description: 'upload log for the per-minute quota (deletes free nothing), deployment secrets (output names)',
    async up(db) {
      await db.executeMultiple(`
        CREATE TABLE upload_log (tenant_id TEXT NOT NULL, at INTEGER NOT NULL, request_id TEXT NOT NULL, PRIMARY KEY (tenant_id, at, request_id)) WITHOUT ROWID;
        INSERT INTO upload_log (tenant_id, at, request_id)
          SELECT tenant_id, created_at, id FROM requests WHERE status != 'ingesting' AND created_at >= CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 3600000;
        CREATE TABLE deployment_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 7,
    description: "the uploaded file's name (older requests read null)",
    async up(db) {
      await db.execute('ALTER TABLE requests ADD COLUMN file_name TEXT');
    },
  },
  {
    version: 8,
    description: 'per-image notes (converted from, first frame of N, approximate colours)',
    async up(db) {
      await db.execute('ALTER TABLE items ADD COLUMN note TEXT');
    },
  },
  {
    version: 9,
    description: 'renditions: their output keys on items, the content cache and the URL validators',
    async up(db) {
      // Request options (JSON) carry the renditions asked for: no column for them. An item's
      // rendition keys are read with it (rendition_keys, JSON) and looked up by key in
      // rendition_outputs, which the output clean-up asks "still referenced?".
      await db.executeMultiple(`
        ALTER TABLE items ADD COLUMN rendition_keys TEXT;
        ALTER TABLE content_cache ADD COLUMN rendition_keys TEXT;
        ALTER TABLE url_validators ADD COLUMN rendition_keys TEXT;
        CREATE TABLE IF NOT EXISTS rendition_outputs (
          item_id INTEGER NOT NULL, request_id TEXT NOT NULL, output_key TEXT NOT NULL, PRIMARY KEY (item_id, output_key)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS rendition_outputs_key ON rendition_outputs(output_key);
        CREATE INDEX IF NOT EXISTS rendition_outputs_request ON rendition_outputs(request_id);
      `);
    },
  },
  {
    version: 10,
    description: 'encoder quality and SSIMULACRA2 score per image, kept with reusable outputs too (quality=auto; older rows read null)',
    async up(db) {
      await db.executeMultiple(`
        ALTER TABLE items ADD COLUMN quality INTEGER;
        ALTER TABLE items ADD COLUMN score REAL;
        ALTER TABLE content_cache ADD COLUMN quality INTEGER;
        ALTER TABLE content_cache ADD COLUMN score REAL;
        ALTER TABLE url_validators ADD COLUMN quality INTEGER;
        ALTER TABLE url_validators ADD COLUMN score REAL;
      `);
    },
  },
  {
    version: 11,
    description: 'notes on the content cache and the URL validators (a reused image says what its first import said)',
    async up(db) {
      // An entry made since notes exist (version 8) takes the note of an item that has its
      // output (items_output index); older entries, like the items of their time, have none.
      await db.executeMultiple(`
        ALTER TABLE content_cache ADD COLUMN note TEXT;
        ALTER TABLE url_validators ADD COLUMN note TEXT;
        UPDATE content_cache SET note = (SELECT note FROM items WHERE items.output_key = content_cache.output_key AND items.note IS NOT NULL LIMIT 1);
        UPDATE url_validators SET note = (SELECT note FROM items WHERE items.output_key = url_validators.output_key AND items.note IS NOT NULL LIMIT 1);
      `);
    },
  },
];

export const SQLITE_SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** Brings the file up to SQLITE_SCHEMA_VERSION; refuses a file written by a newer release. */
export async function migrateSqlite(client: SqlClient): Promise<void> {
  for (;;) {
    const tx = await client.transaction('write');
    try {
      const current = Number((await tx.execute('PRAGMA user_version')).rows[0]!.user_version);
      if (current > SQLITE_SCHEMA_VERSION) {
        throw new Error(`the store was written by a newer release (schema ${current}; this one knows up to ${SQLITE_SCHEMA_VERSION})`);
      }
      const next = MIGRATIONS.find((m) => m.version === current + 1);
      if (!next) {
        await tx.commit();
        return;
      }
      await next.up({
        execute: (sql) => tx.execute(sql),
        executeMultiple: (sql) => tx.executeMultiple(sql),
      });
      await tx.execute(`PRAGMA user_version = ${next.version}`);
      await tx.commit();
    } catch (err) {
      await tx.rollback().catch(() => {});
      throw err;
    } finally {
      tx.close();
    }
  }
}
