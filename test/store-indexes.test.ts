// Every query the store makes on a hot path is served by an index. Each backend runs the hot
// paths on a real database (claims, status pages, the outbox relay, due deliveries, the delivery
// log) while the statements it sends are recorded, and each recorded statement is explained as
// sent: a query changed in the sqlite or mongo store is checked as it now is, and a hot path whose
// statement is no longer sent fails here rather than passing unchecked.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createClient, type Client, type InArgs, type InStatement, type Transaction } from '@libsql/client';
import { MongoClient, type Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collections } from '../src/store/mongo/schema.js';
import { MongoStore, openMongoStore } from '../src/store/mongo/store.js';
import { Mutex } from '../src/store/mutex.js';
import { openSqliteStore, SqliteStore } from '../src/store/sqlite/store.js';
import { EVENT_TYPES, type Store } from '../src/store/types.js';
import { dropDatabase, freshDatabaseName, MONGODB_URI } from './helpers/mongo.js';

interface HotPath {
  name: string;
  /** A fragment of the statement the SQLite store sends (whitespace collapsed); null: SQLite has no such query. */
  sql: string | null;
  /** What the SQLite plan must bound by index: an index that bounds less would read more rows. */
  bound?: RegExp;
  /** Recognises the command the MongoDB store sends; null: MongoDB has no such query. */
  mongo: ((cmd: Document) => boolean) | null;
  /** Newest first across all tenants: an ordered walk of an index, stopped by LIMIT, is the plan. */
  walk?: boolean;
  /** MongoDB filter fields no index needs to bound: the status, which every visible request matches. */
  residual?: string[];
  /** Sorts at most one page of rows (the attempts of the deliveries shown): a sort step is fine. */
  sortsPage?: boolean;
}

const isOp = (v: unknown): v is Document => typeof v === 'object' && v !== null && Object.keys(v).some((k) => k.startsWith('$'));
const filterOf = (cmd: Document): Document => cmd.filter ?? cmd.query ?? {};

const HOT_PATHS: HotPath[] = [
  {
    name: 'claim: expired leases',
    sql: "WHERE i.state = 'running' AND i.lease_until < ?",
    bound: /\(state=\?|\(lease_until<\?/, // every running item (in flight, few) or only the expired ones
    mongo: (c) => c.findAndModify === 'items' && filterOf(c).state === 'running' && isOp(filterOf(c).leaseUntil),
  },
  {
    name: 'claim: requests with pending items',
    sql: "AND EXISTS (SELECT 1 FROM items i WHERE i.request_id = r.id AND i.state = 'pending')",
    bound: /\(status=\?\)[^]*\(request_id=\? AND state=\?\)/,
    mongo: (c) => c.distinct === 'items' && c.key === 'requestId' && filterOf(c).state === 'pending',
  },
  {
    name: 'claim: open requests among them',
    sql: null, // the EXISTS above
    mongo: (c) => c.find === 'requests' && isOp(filterOf(c)._id),
    residual: ['status'],
  },
  {
    name: "claim: a request's pending items",
    sql: "SELECT id FROM items WHERE request_id = ? AND state = 'pending' ORDER BY id LIMIT ?",
    bound: /\(request_id=\? AND state=\?\)/,
    mongo: (c) => c.findAndModify === 'items' && typeof filterOf(c).requestId === 'string' && filterOf(c).state === 'pending',
  },
  {
    name: 'claim: completions a crash left unsettled',
    sql: null, // SQLite counts a completion in its transaction
    mongo: (c) => c.findAndModify === 'items' && filterOf(c).settled === false,
  },
  {
    name: 'status page: products',
    sql: 'FROM products WHERE request_id = ? AND serial > ? ORDER BY serial LIMIT ?',
    bound: /\(request_id=\? AND serial>\?\)/,
    mongo: (c) => c.find === 'products' && isOp(filterOf(c).serial),
  },
  {
    name: 'status page: items by URL',
    sql: 'FROM items WHERE request_id = ? AND url IN (SELECT value FROM json_each(?))',
    bound: /\(request_id=\? AND url=\?\)/,
    mongo: (c) => c.find === 'items' && isOp(filterOf(c).url),
  },
  {
    name: "requests list: a tenant's, newest first",
    sql: "FROM requests WHERE status NOT IN ('ingesting', 'aborting', 'deleting') AND tenant_id = ?",
    bound: /\(tenant_id=\?/,
    mongo: (c) => c.find === 'requests' && typeof filterOf(c).tenantId === 'string' && c.sort?.createdAt === -1,
    residual: ['status'],
  },
  {
    name: 'requests list: all tenants (admin), newest first',
    sql: "FROM requests WHERE status NOT IN ('ingesting', 'aborting', 'deleting') AND (created_at",
    mongo: (c) => c.find === 'requests' && !('tenantId' in filterOf(c)) && c.sort?.createdAt === -1,
    residual: ['status'],
    walk: true,
  },
  {
    name: 'outbox relay: outboxes left behind',
    sql: null, // SQLite writes events and deliveries in the transition's transaction
    mongo: (c) => c.find === 'requests' && isOp(filterOf(c).outboxAt),
  },
  {
    name: 'deliveries due',
    sql: "FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?",
    bound: /deliveries_due \(next_attempt_at<\?\)/,
    mongo: (c) => c.findAndModify === 'deliveries' && filterOf(c).state === 'pending' && isOp(filterOf(c).nextAttemptAt),
  },
  {
    name: 'delivery log: a subscription, newest first',
    sql: 'FROM deliveries WHERE subscription_id = ?',
    bound: /\(subscription_id=\?/,
    mongo: (c) => c.find === 'deliveries' && typeof filterOf(c).subscriptionId === 'string',
  },
  {
    name: 'delivery log: attempts of the page',
    sql: 'FROM delivery_attempts WHERE delivery_id IN',
    bound: /\(delivery_id=\?\)/,
    mongo: (c) => c.find === 'delivery_attempts' && isOp(filterOf(c).deliveryId),
    sortsPage: true,
  },
];

const TENANT = 'tenant-a';
const SUBSCRIPTION = 'sub_indexes';

/** Runs every hot path at least once, with a second page wherever there is a cursor. */
async function exerciseHotPaths(store: Store): Promise<void> {
  const t0 = Date.now();
  await store.createSubscription({
    id: SUBSCRIPTION, tenantId: TENANT, url: 'http://hooks.test/', events: [...EVENT_TYPES], secret: 'whsec_x',
    previousSecret: null, previousSecretExpiresAt: null, createdAt: t0,
  });
  const requests: string[] = [];
  for (const [n, size] of [[0, 30], [1, 5]] as const) {
    const id = `req-${n}-${t0}`;
    await store.beginRequest({ id, tenantId: TENANT, idempotencyKey: null, webhookUrl: null, webhookSecret: null, now: t0 + n });
    await store.appendBatch(id, Array.from({ length: size }, (_, i) => ({
      serial: i + 1, name: `Product ${i + 1}`, inputUrls: [`http://img.test/${n}/${i}-a.jpg`, `http://img.test/${n}/${i}-b.jpg`],
    })));
    await store.commitRequest(id, t0 + n);
    requests.push(id);
  }
  // Claims: the expired-lease query (it runs even when none has expired), then pending items
  // request by request (both requests start).
  expect((await store.claimItems({ owner: 'runner-1', limit: 16, leaseMs: 60_000, now: t0 + 10 })).length).toBe(16);
  // Status pages.
  const first = await store.listProducts(requests[0]!, { limit: 10 });
  const second = await store.listProducts(requests[0]!, { limit: 10, cursor: first.nextCursor });
  expect(second.items[0]?.serial).toBe(11);
  expect((await store.getItemsByUrl(requests[0]!, second.items.flatMap((p) => p.inputUrls))).length).toBe(20);
  for (const tenantId of [TENANT, null]) {
    const page = await store.listRequests({ tenantId, limit: 1 });
    expect((await store.listRequests({ tenantId, limit: 1, cursor: page.nextCursor })).items).toHaveLength(1);
  }
  // The outbox relay's sweep, then due deliveries (one per started request).
  expect(await store.claimDeliveries({ owner: 'dispatcher-1', limit: 8, leaseMs: 60_000, now: t0 + 10_000 })).toHaveLength(2);
  const log = await store.listDeliveries(SUBSCRIPTION, { limit: 1 });
  expect((await store.listDeliveries(SUBSCRIPTION, { limit: 1, cursor: log.nextCursor })).items).toHaveLength(1);
}

// ---- SQLite: EXPLAIN QUERY PLAN of every statement the SQLite store sent -------------------------

/** The client (and its transactions) with every statement sent also appended to `sent`. */
function recording<T extends Client | Transaction>(target: T, sent: Array<{ sql: string; args: InArgs }>): T {
  const record = (stmt: InStatement, args?: InArgs) =>
    sent.push(typeof stmt === 'string' ? { sql: stmt, args: args ?? [] } : { sql: stmt.sql, args: stmt.args ?? [] });
  return new Proxy(target, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof value !== 'function') return value;
      if (prop === 'execute') return (stmt: InStatement, args?: InArgs) => (record(stmt, args), value.call(t, stmt, args));
      if (prop === 'batch') return (stmts: InStatement[], ...rest: unknown[]) => (stmts.forEach((s) => record(s)), value.call(t, stmts, ...rest));
      if (prop === 'transaction') return async (...a: unknown[]) => recording(await value.apply(t, a), sent);
      return value.bind(t);
    },
  });
}

const oneLine = (sql: string) => sql.replace(/\s+/g, ' ').trim();

/** What is wrong with a SQLite plan for a hot path ([] when it is served by an index). */
function sqlitePlanProblems(path: HotPath, plan: string[]): string[] {
  const problems: string[] = [];
  for (const line of plan) {
    const scan = /^SCAN /.test(line) && !/VIRTUAL TABLE/.test(line);
    if (scan && !(path.walk && /USING (COVERING )?INDEX/.test(line))) problems.push(`full scan: ${line}`);
    if (/USE TEMP B-TREE/.test(line) && !path.sortsPage) problems.push(`sorts outside an index: ${line}`);
  }
  if (!plan.some((l) => /USING (COVERING )?INDEX|USING (INTEGER )?PRIMARY KEY/.test(l))) problems.push('uses no index');
  if (path.bound && !path.bound.test(plan.join('\n'))) problems.push(`bounds less than ${path.bound}`);
  return problems;
}

describe('store indexes: sqlite', () => {
  let dir: string;
  let client: Client;
  const sent: Array<{ sql: string; args: InArgs }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'icp-indexes-'));
    const file = join(dir, 'store.db');
    await (await openSqliteStore(file)).close(); // migrated: every index exists
    client = createClient({ url: pathToFileURL(file).href });
    const store = new SqliteStore(recording(client, sent), new Mutex());
    await exerciseHotPaths(store);
  });
  afterAll(() => {
    client?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const path of HOT_PATHS.filter((p) => p.sql !== null)) {
    it(`${path.name}: served by an index`, async () => {
      const statements = new Map(sent.filter((s) => oneLine(s.sql).includes(path.sql!)).map((s) => [oneLine(s.sql), s]));
      expect(statements.size, `the SQLite store no longer sends a statement containing "${path.sql}": update this test`).toBeGreaterThan(0);
      for (const [sql, stmt] of statements) {
        const plan = (await client.execute({ sql: `EXPLAIN QUERY PLAN ${stmt.sql}`, args: stmt.args })).rows.map((r) => String(r.detail));
        expect(sqlitePlanProblems(path, plan), `${sql}\nplan:\n  ${plan.join('\n  ')}`).toEqual([]);
      }
    });
  }
});

// ---- MongoDB: explain of every command the MongoDB store sent ------------------------------------

/**
 * The command as a query: what the driver added (session, retry number, $db) left out, and
 * the sort (which the driver sends as a Map) as a plain document.
 */
function asQuery(cmd: Document): Document {
  const keep = ['find', 'filter', 'sort', 'projection', 'limit', 'skip', 'findAndModify', 'query', 'update', 'new', 'upsert', 'remove', 'distinct', 'key'];
  return Object.fromEntries(Object.entries(cmd)
    .filter(([k]) => keep.includes(k))
    .map(([k, v]) => [k, v instanceof Map ? Object.fromEntries(v) : v]));
}

/** The command with every value replaced by its type: one explain per shape of query. */
function shapeOf(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? [shapeOf(v[0])] : [];
  if (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shapeOf(x)]));
  }
  return typeof v;
}

/**
 * The filter fields an index bounds for a query, reading it as MongoDB's planner does: fields
 * matched by equality (or $in) lead, then the sort (in the index's order or its reverse) or a
 * range. null when it cannot serve the query (it neither bounds a field nor gives the order).
 */
function fieldsBounded(key: Record<string, number>, filter: Document, sort: Record<string, number> = {}): string[] | null {
  const fields = Object.keys(key);
  const kind = (f: string | undefined) => {
    const v = f === undefined ? undefined : filter[f];
    if (v === undefined) return null;
    return isOp(v) ? ('$in' in v || '$eq' in v ? 'point' : 'range') : 'point';
  };
  let i = 0;
  while (kind(fields[i]) === 'point') i++;
  const bounded = fields.slice(0, i);
  const sortFields = Object.keys(sort);
  if (sortFields.length > 0) {
    const direction = key[fields[i]!] === sort[sortFields[0]!] ? 1 : -1;
    if (!sortFields.every((f, j) => fields[i + j] === f && key[f]! * direction === sort[f])) return null;
  }
  if (kind(fields[i]) === 'range') bounded.push(fields[i]!);
  return bounded.length > 0 || sortFields.length > 0 ? bounded : null;
}

/**
 * The index that serves a command: it bounds every filter field (but those the hot path leaves
 * to the fetch) and gives the order. A distinct is served by the key right after the bounds.
 */
function servingIndex(indexes: Document[], query: Document, path: HotPath): Document | undefined {
  const filter = filterOf(query);
  const sort: Record<string, number> | undefined = query.distinct ? { [query.key]: 1 } : query.sort;
  const needed = Object.keys(filter).filter((f) => !f.startsWith('$') && !path.residual?.includes(f));
  return indexes.find((ix) => {
    const bounded = fieldsBounded(ix.key, filter, sort);
    return bounded !== null && needed.every((f) => bounded.includes(f));
  });
}

/** Every stage and index name in an explained plan tree (classic and slot-based shapes). */
function stagesOf(node: unknown, out: { stages: string[]; indexes: string[] } = { stages: [], indexes: [] }) {
  if (Array.isArray(node)) node.forEach((n) => stagesOf(n, out));
  else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'stage' && typeof v === 'string') out.stages.push(v);
      else if (k === 'indexName' && typeof v === 'string') out.indexes.push(v);
      else if (k !== 'slotBasedPlan') stagesOf(v, out);
    }
  }
  return out;
}

/** Why an explain on FerretDB cannot show index use. */
const FERRETDB_LIMIT =
  'FerretDB 1.24 (SQLite backend) pushes no filter but a lone _id down to SQLite, so every query reads the whole table ' +
  'and its explain shows SQLite\'s plan of that read ("SCAN <table>"); index use is asserted on MongoDB (the GitHub ' +
  'workflow\'s mongo:8), and here only that the index the planner would pick exists';

describe('store indexes: reading an index as the planner does', () => {
  it('bounds the equality fields, then the sort (either direction) or a range', () => {
    expect(fieldsBounded({ state: 1, leaseUntil: 1 }, { state: 'running', leaseUntil: { $lt: 1 } }, { leaseUntil: 1 })).toEqual(['state', 'leaseUntil']);
    expect(fieldsBounded({ requestId: 1, url: 1 }, { requestId: 'r', url: { $in: ['u'] } })).toEqual(['requestId', 'url']);
    expect(fieldsBounded({ tenantId: 1, createdAt: -1, _id: -1 }, { tenantId: 't' }, { createdAt: 1, _id: 1 })).toEqual(['tenantId']);
    expect(fieldsBounded({ createdAt: -1, _id: -1 }, { status: { $in: ['a'] } }, { createdAt: -1, _id: -1 })).toEqual([]);
    expect(fieldsBounded({ status: 1, createdAt: 1 }, { status: { $in: ['a'] } }, { createdAt: -1, _id: -1 })).toBeNull();
    expect(fieldsBounded({ createdAt: -1, _id: 1 }, {}, { createdAt: -1, _id: -1 })).toBeNull();
    expect(fieldsBounded({ requestId: 1, state: 1, _id: 1 }, { state: 'pending' })).toBeNull();
  });
});

if (!MONGODB_URI) console.log('store indexes: mongodb skipped: MONGODB_URI is not set (scripts/test-mongo.mjs starts FerretDB and sets it)');

describe.skipIf(!MONGODB_URI)('store indexes: mongodb', () => {
  const uri = MONGODB_URI!;
  const dbName = freshDatabaseName('icp_indexes');
  const sent: Document[] = [];
  let client: MongoClient;
  let ferretDb: string | null = null;

  beforeAll(async () => {
    await (await openMongoStore(uri, dbName, { connectTimeoutMs: 10_000 })).close(); // migrated: every index exists
    client = new MongoClient(uri, { monitorCommands: true, serverSelectionTimeoutMS: 10_000 });
    client.on('commandStarted', (e) => sent.push(asQuery(e.command)));
    await client.connect();
    const info = await client.db('admin').command({ buildInfo: 1 });
    ferretDb = typeof info.ferretdbVersion === 'string' ? info.ferretdbVersion : null;
    if (ferretDb) console.log(`store indexes: ${FERRETDB_LIMIT}`);
    await exerciseHotPaths(new MongoStore(client, collections(client.db(dbName))));
  });
  afterAll(async () => {
    await client?.close();
    await dropDatabase(uri, dbName);
  });

  for (const path of HOT_PATHS.filter((p) => p.mongo !== null)) {
    it(`${path.name}: served by an index`, async () => {
      const queries = new Map(sent.filter(path.mongo!).map((c) => [JSON.stringify(shapeOf(c)), c]));
      expect(queries.size, 'the MongoDB store no longer sends this query: update this test').toBeGreaterThan(0);
      const db = client.db(dbName);
      for (const query of queries.values()) {
        const collection = String(query.find ?? query.findAndModify ?? query.distinct);
        const serving = servingIndex(await db.collection(collection).listIndexes().toArray(), query, path);
        expect(serving, `no index of ${collection} serves ${JSON.stringify(query)}`).toBeDefined();

        const explained = await db.command({ explain: query, verbosity: 'queryPlanner' });
        if (ferretDb) {
          // { queryPlanner: { Plan: ['id=2 parent=0 notused=0 detail=SCAN <table>'] }, filterPushdown, sortPushdown, limitPushdown, ... }
          const plan: unknown = explained.queryPlanner?.Plan;
          expect(Array.isArray(plan) && plan.every((l) => /^id=\d+ parent=\d+ notused=\d+ detail=/.test(String(l))), JSON.stringify(explained)).toBe(true);
          console.log(`store indexes: ${path.name}: index ${serving!.name}; FerretDB ${ferretDb} plan: ${(plan as string[]).join('; ')} (filterPushdown ${explained.filterPushdown})`);
          continue;
        }
        const { stages, indexes: used } = stagesOf(explained.queryPlanner?.winningPlan);
        const where = `${JSON.stringify(query)}\nwinning plan: ${stages.join(' <- ')} (indexes: ${used.join(', ') || 'none'})`;
        expect(stages.some((s) => /IXSCAN|DISTINCT_SCAN|IDHACK/.test(s)), where).toBe(true);
        expect(stages, where).not.toContain('COLLSCAN');
        if (!path.sortsPage) expect(stages, where).not.toContain('SORT');
      }
    });
  }
});
