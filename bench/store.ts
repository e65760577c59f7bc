// Store: the two store paths that run all the time, on each backend, side by side in one run.
// - Claims per second: a runner's loop in one process (claim 16, complete them together, claim
//   again) over a request of 1 000 products x 2 images, for a few seconds or until it is done.
// - Status page: what one status page reads from the store (listProducts of 100 products, then
//   getItemsByUrl of their 200 URLs) over the same request, page after page; p50 and p99.
// Backends: SQLite (a temporary file) and FerretDB 1.24 (SQLite backend, one connection), which
// this starts when its binary is built (`node scripts/test-mongo.mjs` builds it) and otherwise
// skips, saying why.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openMongoStore } from '../src/store/mongo/store.js';
import { openSqliteStore } from '../src/store/sqlite/store.js';
import type { ItemOutcome, Store } from '../src/store/types.js';
import { figure, type Figure } from './report.js';
import { median, now, percentile, round } from './stats.js';

const PRODUCTS = 1000;
const URLS_PER_PRODUCT = 2;
const PAGE = 100;
const CLAIM_BATCH = 16;
const OWNER = 'bench-runner';
const LEASE_MS = 60_000;
const DONE: ItemOutcome = { ok: true, outputKey: 'bench/out.jpg', format: 'jpeg', bytesIn: 1000, bytesOut: 500, outcome: 'compressed' };

/** scripts/ferretdb.mjs, shared with the test run (plain JavaScript: it runs before any build). */
interface FerretDbModule {
  FERRETDB_VERSION: string;
  ferretDbBinary(): string;
  startFerretDb(bin: string): Promise<{ uri: string; address: string; pid: number; stop(): Promise<void> }>;
}

export interface BackendRun {
  backend: 'sqlite' | 'ferretdb';
  /** Why this backend was not measured. */
  skipped?: string;
  setupMs?: number;
  status?: { pages: number; p50: number; p99: number; max: number; pagesPerSecond: number };
  claims?: { items: number; seconds: number; itemsPerSecond: number; claimP50: number; completeBatchP50: number; drained: boolean };
}

interface Budget {
  /** Seconds of status pages (at least MIN_PAGES pages whatever the time). */
  status: number;
  /** Seconds of claiming, or less when the request is done. */
  claims: number;
}
const MIN_PAGES = 30;

export async function storeBench(opts: { quick: boolean; log: (s: string) => void; projectRoot: string }) {
  const budget: Budget = opts.quick ? { status: 2, claims: 3 } : { status: 6, claims: 10 };
  const runs: BackendRun[] = [];

  const dir = mkdtempSync(join(tmpdir(), 'icp-bench-store-'));
  try {
    opts.log(`store: SQLite (${join(dir, 'store.db')}): ${PRODUCTS} products x ${URLS_PER_PRODUCT} images`);
    runs.push(await measure('sqlite', () => openSqliteStore(join(dir, 'store.db')), budget, opts.log));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const ferretDb = await import(pathToFileURL(join(opts.projectRoot, 'scripts', 'ferretdb.mjs')).href) as FerretDbModule;
  const bin = ferretDb.ferretDbBinary();
  if (!existsSync(bin)) {
    const skipped = `the FerretDB binary is not built (${bin}; \`node scripts/test-mongo.mjs\` builds it with Go)`;
    opts.log(`store: FerretDB skipped: ${skipped}`);
    runs.push({ backend: 'ferretdb', skipped });
  } else {
    const server = await ferretDb.startFerretDb(bin);
    try {
      opts.log(`store: FerretDB ${ferretDb.FERRETDB_VERSION} (SQLite backend) on ${server.address}, pid ${server.pid}: same workload`);
      runs.push(await measure('ferretdb', () => openMongoStore(server.uri, 'icp_bench_store', { connectTimeoutMs: 10_000 }), budget, opts.log));
    } finally {
      await server.stop();
    }
  }

  const [sqlite, ferret] = [runs.find((r) => r.backend === 'sqlite')!, runs.find((r) => r.backend === 'ferretdb')!];
  const skipNote = ferret.skipped ? `skipped: ${ferret.skipped}` : undefined;
  const figures: Figure[] = [
    figure('store.sqlite.claims_per_s', 'Store, SQLite: items claimed + completed per second (batches of 16, one process)', round(sqlite.claims!.itemsPerSecond, 0), 'items/s'),
    figure('store.ferretdb.claims_per_s', 'Store, FerretDB: items claimed + completed per second (same loop)', ferret.claims ? round(ferret.claims.itemsPerSecond, 0) : null, 'items/s', '', null, skipNote),
    figure('store.sqlite.status_page_p99', `Store, SQLite: status page reads (${PAGE} of ${PRODUCTS} products) p99`, round(sqlite.status!.p99, 2), 'ms', '', null, `p50 ${round(sqlite.status!.p50, 2)} ms`),
    figure('store.ferretdb.status_page_p99', `Store, FerretDB: status page reads (${PAGE} of ${PRODUCTS} products) p99`, ferret.status ? round(ferret.status.p99, 2) : null, 'ms', '', null,
      ferret.status ? `p50 ${round(ferret.status.p50, 2)} ms` : skipNote),
  ];
  return { figures, detail: { products: PRODUCTS, urlsPerProduct: URLS_PER_PRODUCT, pageSize: PAGE, claimBatch: CLAIM_BATCH, budgetSeconds: budget, runs } };
}

/** Ingests the request, reads status pages, then claims and completes until the budget or the work runs out. */
async function measure(backend: BackendRun['backend'], open: () => Promise<Store>, budget: Budget, log: (s: string) => void): Promise<BackendRun> {
  const t0 = now();
  const store = await open();
  try {
    const id = `bench-${Date.now()}`;
    await store.beginRequest({ id, tenantId: 'admin', idempotencyKey: null, webhookUrl: null, webhookSecret: null, now: Date.now() });
    await store.appendBatch(id, Array.from({ length: PRODUCTS }, (_, i) => ({
      serial: i + 1,
      name: `Product ${i + 1}`,
      inputUrls: Array.from({ length: URLS_PER_PRODUCT }, (_, j) => `http://img.bench/${i + 1}-${j}.jpg`),
    })));
    await store.commitRequest(id, Date.now());
    const setupMs = now() - t0;

    const status = await statusPages(store, id, budget.status);
    log(`store: ${backend}: status page p50 ${status.p50.toFixed(2)} ms, p99 ${status.p99.toFixed(2)} ms over ${status.pages} pages`);
    const claims = await claimLoop(store, id, budget.claims);
    log(`store: ${backend}: ${claims.itemsPerSecond.toFixed(0)} items/s claimed + completed (${claims.items} in ${claims.seconds.toFixed(1)} s${claims.drained ? ', request done' : ''})`);
    return { backend, setupMs: round(setupMs, 0), status, claims };
  } finally {
    await store.close();
  }
}

/** The store reads of one status page, timed page after page through the whole request. */
async function statusPages(store: Store, requestId: string, seconds: number): Promise<NonNullable<BackendRun['status']>> {
  const readPage = async (cursor: string | null) => {
    const page = await store.listProducts(requestId, { limit: PAGE, cursor });
    await store.getItemsByUrl(requestId, page.items.flatMap((p) => p.inputUrls));
    return page.nextCursor;
  };
  await readPage(await readPage(null)); // warm-up: the first two pages
  const times: number[] = [];
  const start = now();
  let cursor: string | null = null;
  while (times.length < MIN_PAGES || now() - start < seconds * 1000) {
    const t = now();
    cursor = await readPage(cursor);
    times.push(now() - t);
  }
  const elapsed = (now() - start) / 1000;
  return {
    pages: times.length, p50: round(median(times), 3), p99: round(percentile(times, 99), 3), max: round(Math.max(...times), 3),
    pagesPerSecond: round(times.length / elapsed, 1),
  };
}

/** A runner's loop: claim a batch, complete it (all at once, as items finish together), again. */
async function claimLoop(store: Store, requestId: string, seconds: number): Promise<NonNullable<BackendRun['claims']>> {
  const claimMs: number[] = [];
  const completeMs: number[] = [];
  let items = 0;
  let drained = false;
  const start = now();
  while (now() - start < seconds * 1000) {
    let t = now();
    const batch = await store.claimItems({ owner: OWNER, limit: CLAIM_BATCH, leaseMs: LEASE_MS, now: Date.now() });
    claimMs.push(now() - t);
    if (batch.length === 0) {
      drained = true;
      break;
    }
    t = now();
    const results = await Promise.all(batch.map((item) => store.completeItems([{ itemId: item.id, owner: OWNER, outcome: DONE, now: Date.now() }]).then((r) => r[0]!)));
    completeMs.push(now() - t);
    if (!results.every((r) => r.applied)) throw new Error('store bench: a completion was not applied (lease lost?)');
    items += batch.length;
  }
  const elapsed = (now() - start) / 1000;
  const request = await store.getRequest(requestId);
  if (request?.done !== items) throw new Error(`store bench: the request counts ${request?.done} done, the loop completed ${items}`);
  if (drained && request.status !== 'completed') throw new Error(`store bench: every item done but the request is ${request.status}`);
  return {
    items, seconds: round(elapsed, 2), itemsPerSecond: round(items / elapsed, 1),
    claimP50: round(median(claimMs), 3), completeBatchP50: round(median(completeMs), 3), drained,
  };
}

/** The two backends side by side, for the console. */
export function storeTable(runs: BackendRun[]): string {
  const cell = (r: BackendRun | undefined, f: (r: BackendRun) => string) => (!r ? '' : r.skipped ? 'skipped' : f(r));
  const sqlite = runs.find((r) => r.backend === 'sqlite');
  const ferret = runs.find((r) => r.backend === 'ferretdb');
  const rows: Array<[string, (r: BackendRun) => string]> = [
    ['claimed + completed, items/s', (r) => r.claims!.itemsPerSecond.toFixed(0)],
    ['claimItems(16) p50, ms', (r) => r.claims!.claimP50.toFixed(2)],
    ['16 completeItem together p50, ms', (r) => r.claims!.completeBatchP50.toFixed(2)],
    ['status page reads p50, ms', (r) => r.status!.p50.toFixed(2)],
    ['status page reads p99, ms', (r) => r.status!.p99.toFixed(2)],
    ['status pages measured', (r) => String(r.status!.pages)],
    ['ingest + commit of the request, ms', (r) => String(r.setupMs)],
  ];
  const body = rows.map(([label, f]) => [label, cell(sqlite, f), cell(ferret, f)]);
  const head = ['store', 'SQLite', 'FerretDB 1.24'];
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}
