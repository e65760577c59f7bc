// Smoke test on another runtime: start the built server with bun or deno on a free port and an
// empty data dir, upload a CSV, read its status, stop it. Usage: node scripts/smoke.mjs bun|deno
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const runtime = process.argv[2];
const commands = {
  bun: ['node_modules/.bin/bun', ['dist/src/main.js']],
  deno: ['node_modules/.bin/deno', ['run', '--allow-all', 'dist/src/main.js']],
  node: [process.execPath, ['dist/src/main.js']],
};
if (!commands[runtime]) {
  console.error('usage: node scripts/smoke.mjs bun|deno|node');
  process.exit(2);
}

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

const port = await freePort();
const dataDir = mkdtempSync(join(tmpdir(), `icp-smoke-${runtime}-`));
const [cmd, args] = commands[runtime];
const child = spawn(cmd, args, {
  env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'warn', WORKER_THREADS: '1' },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
const base = `http://127.0.0.1:${port}`;

async function waitReady() {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('server did not answer /healthz within 60 s');
}

let failed = false;
try {
  await waitReady();
  const csv = 'S. No.,Product Name,Input Image Urls\n1,SKU1,"http://127.0.0.1:9/a.jpg,http://127.0.0.1:9/b.jpg"\n2,SKU2,http://127.0.0.1:9/c.png\n';
  const form = new FormData();
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'products.csv');
  const upload = await fetch(`${base}/api/v1/upload`, { method: 'POST', body: form });
  const accepted = await upload.json();
  if (upload.status !== 202 || accepted.products !== 2 || accepted.images !== 3) throw new Error(`upload: ${upload.status} ${JSON.stringify(accepted)}`);
  const status = await fetch(`${base}/api/v1/status/${accepted.request_id}`);
  const body = await status.json();
  if (status.status !== 200 || body.products?.length !== 2 || body.progress?.total !== 3) throw new Error(`status: ${status.status} ${JSON.stringify(body)}`);
  console.log(`smoke ${runtime}: upload ${upload.status}, status ${body.status}, ${body.products.length} products`);
} catch (err) {
  failed = true;
  console.error(`smoke ${runtime}: FAILED: ${err.message}`);
} finally {
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const { code, signal } = await exited;
  clearTimeout(timer);
  if (code !== 0 && !failed) {
    failed = true;
    console.error(`smoke ${runtime}: FAILED: exit after SIGTERM was ${code ?? signal}`);
  }
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(failed ? `smoke ${runtime}: FAILED` : `smoke ${runtime}: ok`);
process.exit(failed ? 1 : 0);
