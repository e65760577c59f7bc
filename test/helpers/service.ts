// Starting the real service for tests: in-process (startService) or as a child process
// (node dist/src/main.js, for kill -9 and multi-process tests). Loopback only.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import { createClient } from '@libsql/client';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/log.js';
import { startService, type RunningService } from '../../src/service.js';
import { MONGODB_URI } from './mongo.js';
import { until } from './poll.js';

export const ROOT = join(import.meta.dirname, '..', '..');

export function tempDir(prefix = 'icp-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * The store a test service uses: the SQLite file in its data dir, or, when the suite runs with
 * MONGODB_URI (scripts/test-mongo.mjs, the GitHub workflow), a database of its own on that
 * server, named after the data dir so a restarted service finds its data again.
 */
function storeEnv(dataDir: string): Record<string, string> {
  if (!MONGODB_URI) return { MONGODB_URI: '' };
  return { MONGODB_URI, DATABASE_NAME: `icp_svc_${createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}` };
}

/** Settings every test service gets: loopback, quiet, fast retries, one pool thread. */
function testEnv(port: number, dataDir: string, env: Record<string, string>): Record<string, string> {
  return {
    ...storeEnv(dataDir),
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    WORKER_THREADS: '1',
    FETCH_RETRY_BASE_MS: '20',
    FETCH_CONNECT_TIMEOUT_MS: '2000',
    FETCH_TIMEOUT_MS: '5000',
    ...env,
  };
}

export interface TestService {
  base: string;
  dataDir: string;
  config: Config;
  service: RunningService;
  stop(): Promise<void>;
}

/** `log`: where the service logs (default: the level from env, LOG_LEVEL silent unless given). */
export async function startTestService(env: Record<string, string> = {}, dataDir = tempDir(), log?: Logger): Promise<TestService> {
  const port = await freePort();
  const config = loadConfig(testEnv(port, dataDir, env));
  const service = await startService(config, log ?? createLogger(config));
  return { base: `http://127.0.0.1:${port}`, dataDir, config, service, stop: () => service.stop() };
}

export interface ChildService {
  base: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
  /** SIGTERM and wait (SIGKILL after 15 s). */
  stop(): Promise<void>;
}

export async function spawnService(env: Record<string, string>, dataDir: string): Promise<ChildService> {
  const port = await freePort();
  const proc = spawn(process.execPath, [join(ROOT, 'dist/src/main.js')], {
    env: { ...process.env, ...testEnv(port, dataDir, { LOG_LEVEL: 'warn', ...env }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  const state = await until(async () => {
    if (proc.exitCode !== null) return 'exited';
    try {
      if ((await fetch(`${base}/healthz`)).ok) return 'up';
    } catch { /* not up yet */ }
    return null;
  }, 'the service to answer /healthz', { timeoutMs: 30_000, intervalMs: 100 }).catch(() => 'timed out');
  if (state === 'exited') throw new Error(`service exited early (${proc.exitCode}): ${out}`);
  if (state === 'timed out') throw new Error(`service did not start: ${out}`);
  return {
    base, proc, exited,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resident memory high-water mark of a process, in MB (Linux). */
export function peakRssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'))!;
  return Number(line.replace(/\D+/g, '')) / 1024;
}

export async function upload(
  base: string,
  csv: string | Uint8Array,
  opts: { headers?: Record<string, string>; filename?: string; type?: string; fields?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(opts.fields ?? {})) form.append(k, v);
  form.append('file', new Blob([csv as BlobPart], { type: opts.type ?? 'text/csv' }), opts.filename ?? 'products.csv');
  const res = await fetch(`${base}/api/v1/upload`, { method: 'POST', body: form, headers: opts.headers ?? {} });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.json() };
}

/** Polls the status until it is final (or the predicate holds); fails after timeoutMs. */
export async function waitForStatus(
  base: string, id: string, opts: { timeoutMs?: number; until?: (body: any) => boolean; limit?: number; headers?: Record<string, string> } = {},
): Promise<any> {
  const reached = opts.until ?? ((b: any) => b.status === 'completed' || b.status === 'failed');
  return until(async () => {
    const { status, body } = await getJson(`${base}/api/v1/status/${id}?limit=${opts.limit ?? 1000}`, opts.headers);
    return status === 200 && reached(body) ? body : null;
  }, `request ${id} to reach the state`, { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 100 });
}

/** Rows in a service's SQLite store (DATA_DIR/store.db): what an upload left behind. */
export async function storedCounts(dataDir: string): Promise<{ requests: number; products: number; items: number }> {
  const db = createClient({ url: `file:${join(dataDir, 'store.db')}` });
  try {
    const count = async (table: string) => Number((await db.execute(`SELECT COUNT(*) AS n FROM ${table}`)).rows[0]!.n);
    return { requests: await count('requests'), products: await count('products'), items: await count('items') };
  } finally {
    db.close();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LoopbackServer {
  base: string;
  close(): Promise<void>;
}

/** An app's fetch handler served over loopback on a free port (no pool, no runner: the HTTP layer alone). */
export async function serveOnLoopback(fetch: (req: Request) => Response | Promise<Response>): Promise<LoopbackServer> {
  const server = createHttpServer(getRequestListener(fetch));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
