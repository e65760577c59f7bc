// node dist/bench/diag/status-poll-cpu.js [POLLS]: main-thread CPU of one status poll, as the e2e
// bench's client makes them (limit=1), in three cases: the request changed since the last poll
// (as while it is being processed: the page is rendered again), unchanged (the rendered page is
// reused), and unchanged with If-None-Match (304 from the version alone). The service runs in
// this thread (ROLE=api: nothing processes the request); the client runs in a worker thread and
// bumps the request's version through a connection of its own before each "changed" poll.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startService } from '../../src/service.js';
import { productCsv, upload } from '../csv.js';
import { mainThreadCpuMs } from '../stats.js';

const polls = Number(process.argv[2] ?? 1000);
const dir = mkdtempSync(join(tmpdir(), 'icp-poll-cpu-'));
const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, ROLE: 'api', LOG_LEVEL: 'silent' });
const service = await startService(config, createLogger({ LOG_LEVEL: 'silent' }));
const base = `http://127.0.0.1:${service.server.port}`;
try {
  const up = await upload(base, productCsv(110, (p) => [`http://127.0.0.1:9/${p}-a.jpg`, `http://127.0.0.1:9/${p}-b.jpg`]));
  const id = up.body.request_id!;
  const client = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const Database = require(workerData.libsql);
    const db = new Database(workerData.db, { timeout: 10000 });
    const bump = db.prepare('UPDATE requests SET version = version + 1 WHERE id = ?');
    parentPort.on('message', async ({ mode, n }) => {
      let etag = null;
      for (let i = 0; i < n; i++) {
        if (mode === 'changed') bump.run(workerData.id);
        const res = await fetch(workerData.url, { headers: mode === 'etag' && etag ? { 'if-none-match': etag } : {} });
        etag = res.headers.get('etag');
        await res.arrayBuffer();
      }
      parentPort.postMessage('done');
    });
  `, { eval: true, workerData: { libsql: createRequire(import.meta.url).resolve('libsql'), db: join(dir, 'store.db'), id, url: `${base}/api/v1/status/${id}?limit=1` } });
  const run = (mode: string, n: number) => new Promise<void>((resolve) => {
    client.once('message', () => resolve());
    client.postMessage({ mode, n });
  });
  for (const mode of ['changed', 'unchanged', 'etag']) {
    await run(mode, 200); // warm-up
    const c0 = mainThreadCpuMs();
    const t0 = performance.now();
    await run(mode, polls);
    console.log(`${mode.padEnd(9)} ${((mainThreadCpuMs() - c0) / polls).toFixed(3)} ms main-thread CPU per poll (${((performance.now() - t0) / polls).toFixed(2)} ms wall)`);
  }
  await client.terminate();
} finally {
  await service.stop();
  rmSync(dir, { recursive: true, force: true });
}
