#!/usr/bin/env node
// Runs the MongoDB side of the suite against a real MongoDB-protocol server: FerretDB 1.24 with
// its embedded SQLite backend, built once with Go into ~/.cache/image-csv-processor/bin and
// started here on a free loopback port, telemetry off, stopped by its PID at the end.
//
//   node scripts/test-mongo.mjs [vitest files...]      (npm run test:mongo)
//
// With MONGODB_URI already set (e.g. a mongo:8 service), that server is used instead.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, cpSync, chmodSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

const FERRETDB = 'github.com/FerretDB/FerretDB';
const VERSION = 'v1.24.2';
const DEFAULT_FILES = [
  'test/store.test.ts', 'test/store-upgrade.test.ts', 'test/store-indexes.test.ts',
  'test/pipeline.test.ts', 'test/webhooks-e2e.test.ts', 'test/scale-out.test.ts', 'test/tenancy.test.ts',
];

const files = process.argv.slice(2).length ? process.argv.slice(2) : DEFAULT_FILES.filter((f) => existsSync(f));
let uri = process.env.MONGODB_URI;
let server = null;
let stateDir = null;

try {
  if (!uri) {
    const bin = buildFerretDb();
    const port = await freePort();
    stateDir = mkdtempSync(join(tmpdir(), 'icp-ferretdb-'));
    server = spawn(bin, [
      '--handler=sqlite', `--sqlite-url=file:${stateDir}/`, `--state-dir=${stateDir}`,
      `--listen-addr=127.0.0.1:${port}`, '--debug-addr=-', '--telemetry=disable', '--log-level=error',
    ], { env: { ...process.env, DO_NOT_TRACK: '1' }, stdio: ['ignore', 'inherit', 'inherit'] });
    await waitForPort(port, 30_000);
    // One connection per client: FerretDB 1.24 applies update operators as read, modify,
    // rewrite, so writes to one document from several connections at once can be lost
    // (docs/scale-out.md). A single connection keeps one process's writes in order.
    uri = `mongodb://127.0.0.1:${port}/?maxPoolSize=1`;
    console.log(`test-mongo: FerretDB ${VERSION} (SQLite backend) on 127.0.0.1:${port}, pid ${server.pid}`);
  }
  const code = await run(process.execPath, [join('node_modules', 'vitest', 'vitest.mjs'), 'run', ...files], { ...process.env, MONGODB_URI: uri });
  process.exitCode = code;
} finally {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => { server.once('exit', r); setTimeout(() => { server.kill('SIGKILL'); r(); }, 5000); });
  }
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
}

/** The FerretDB binary, built from the Go module proxy on first use. */
function buildFerretDb() {
  const binDir = join(homedir(), '.cache', 'image-csv-processor', 'bin');
  const bin = join(binDir, `ferretdb-${VERSION}`);
  if (existsSync(bin)) return bin;
  mkdirSync(binDir, { recursive: true });
  console.log(`test-mongo: building FerretDB ${VERSION} (once; cached in ${binDir})`);
  const dir = JSON.parse(execFileSync('go', ['mod', 'download', '-json', `${FERRETDB}@${VERSION}`], { encoding: 'utf8' })).Dir;
  // `go install` of the module leaves build/version/version.txt empty and the binary refuses to
  // start; build from a copy of the module with the version written in.
  const src = mkdtempSync(join(tmpdir(), 'icp-ferretdb-src-'));
  try {
    cpSync(dir, src, { recursive: true });
    chmodSync(join(src, 'build', 'version'), 0o755);
    writeFileSync(join(src, 'build', 'version', 'version.txt'), `${VERSION}\n`);
    execFileSync('go', ['build', '-o', bin, './cmd/ferretdb'], { cwd: src, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0' } });
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`FerretDB exited (${server.exitCode})`);
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => { socket.end(); resolve(true); });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('FerretDB did not start listening');
    await new Promise((r) => setTimeout(r, 100));
  }
}

function run(cmd, args, env) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
