#!/usr/bin/env node
// Runs the MongoDB side of the suite against a real MongoDB-protocol server: FerretDB 1.24 with
// its embedded SQLite backend (scripts/ferretdb.mjs), built once and started here on a free
// loopback port, telemetry off, stopped by its PID at the end.
//
//   node scripts/test-mongo.mjs [vitest files...]      (npm run test:mongo)
//
// With MONGODB_URI already set (e.g. a mongo:8 service), that server is used instead.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildFerretDb, FERRETDB_VERSION, startFerretDb } from './ferretdb.mjs';

const DEFAULT_FILES = [
  'test/store.test.ts', 'test/store-upgrade.test.ts', 'test/store-indexes.test.ts',
  'test/pipeline.test.ts', 'test/webhooks-e2e.test.ts', 'test/scale-out.test.ts', 'test/tenancy.test.ts',
  'test/crash-accounting.test.ts', 'test/fairness.test.ts', 'test/operations.test.ts', 'test/options-http.test.ts', 'test/reuse.test.ts', 'test/hardening.test.ts',
];

const files = process.argv.slice(2).length ? process.argv.slice(2) : DEFAULT_FILES.filter((f) => existsSync(f));
let uri = process.env.MONGODB_URI;
let server = null;

try {
  if (!uri) {
    server = await startFerretDb(buildFerretDb());
    uri = server.uri;
    console.log(`test-mongo: FerretDB ${FERRETDB_VERSION} (SQLite backend) on ${server.address}, pid ${server.pid}`);
  }
  const code = await run(process.execPath, [join('node_modules', 'vitest', 'vitest.mjs'), 'run', ...files], { ...process.env, MONGODB_URI: uri });
  process.exitCode = code;
} finally {
  await server?.stop();
}

function run(cmd, args, env) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
