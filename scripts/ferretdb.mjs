// FerretDB 1.24 with its embedded SQLite backend: a MongoDB-protocol server that runs on this
// machine, for the MongoDB side of the tests (scripts/test-mongo.mjs) and of the store bench
// (bench/store.ts). Built once with Go into ~/.cache/image-csv-processor/bin, started on a free
// loopback port with telemetry off, stopped by its PID.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from './free-port.mjs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

const FERRETDB = 'github.com/FerretDB/FerretDB';
export const FERRETDB_VERSION = 'v1.24.2';

/** Where the built binary lives (it may not be there yet). */
export function ferretDbBinary() {
  return join(homedir(), '.cache', 'image-csv-processor', 'bin', `ferretdb-${FERRETDB_VERSION}`);
}

/** The FerretDB binary, built from the Go module proxy on first use. */
export function buildFerretDb() {
  const bin = ferretDbBinary();
  if (existsSync(bin)) return bin;
  const binDir = join(bin, '..');
  mkdirSync(binDir, { recursive: true });
  console.log(`ferretdb: building FerretDB ${FERRETDB_VERSION} (once; cached in ${binDir})`);
  const dir = JSON.parse(execFileSync('go', ['mod', 'download', '-json', `${FERRETDB}@${FERRETDB_VERSION}`], { encoding: 'utf8' })).Dir;
  // `go install` of the module leaves build/version/version.txt empty and the binary refuses to
  // start; build from a copy of the module with the version written in.
  const src = mkdtempSync(join(tmpdir(), 'icp-ferretdb-src-'));
  try {
    cpSync(dir, src, { recursive: true });
    chmodSync(join(src, 'build', 'version'), 0o755);
    writeFileSync(join(src, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
    execFileSync('go', ['build', '-o', bin, './cmd/ferretdb'], { cwd: src, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0' } });
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
  return bin;
}

/**
 * Starts the binary on a free loopback port with its state in a new temporary folder.
 * Resolves once it accepts connections, with the URI to use and stop(), which ends it by its
 * PID and removes the folder.
 */
export async function startFerretDb(bin) {
  const port = await freePort();
  const stateDir = mkdtempSync(join(tmpdir(), 'icp-ferretdb-'));
  const server = spawn(bin, [
    '--handler=sqlite', `--sqlite-url=file:${stateDir}/`, `--state-dir=${stateDir}`,
    `--listen-addr=127.0.0.1:${port}`, '--debug-addr=-', '--telemetry=disable', '--log-level=error',
  ], { env: { ...process.env, DO_NOT_TRACK: '1' }, stdio: ['ignore', 'inherit', 'inherit'] });
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => { server.once('exit', r); setTimeout(() => { server.kill('SIGKILL'); r(); }, 5000); });
    }
    rmSync(stateDir, { recursive: true, force: true });
  };
  try {
    await waitForPort(server, port, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    // One connection per client: FerretDB 1.24 applies update operators as read, modify,
    // rewrite, so writes to one document from several connections at once can be lost
    // (docs/scale-out.md). A single connection keeps one process's writes in order.
    uri: `mongodb://127.0.0.1:${port}/?maxPoolSize=1`,
    address: `127.0.0.1:${port}`,
    pid: server.pid,
    stop,
  };
}

async function waitForPort(server, port, timeoutMs) {
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
