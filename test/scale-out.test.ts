// Many instances on one store: an API process and two worker processes sharing one SQLite file,
// one of them killed mid-run; and the start-up failure on an unreachable MongoDB.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { concurrentWritersUnsupported, MONGODB_URI } from './helpers/mongo.js';
import { ROOT, getJson, spawnService, tempDir, upload, waitForStatus } from './helpers/service.js';

const noConcurrentWriters = MONGODB_URI ? await concurrentWritersUnsupported(MONGODB_URI) : null;
if (noConcurrentWriters) console.log(`scale-out test skipped: ${noConcurrentWriters}`);

describe.skipIf(noConcurrentWriters)(`scale-out on one ${MONGODB_URI ? 'MongoDB database' : 'SQLite file'}`, () => {
  let images: ImageServer;
  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.9' });
    const jpeg = new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures/rocket-small.jpg')));
    // Distinct bytes per URL: identical bytes would be made once and reused, and this test counts codec runs.
    for (let i = 0; i < 200; i++) images.serve(`/s/${i}.jpg`, new Uint8Array([...jpeg, ...new Uint8Array(i + 1)]), 'image/jpeg');
  });
  afterAll(async () => {
    await images?.close();
  });

  it('processes a 200-image request with one api and two workers, losing nothing when a worker dies', async () => {
    const dataDir = tempDir();
    const log = join(dataDir, 'codec-runs.log');
    const env = { FETCH_ALLOWLIST: images.cidr, LEASE_MS: '2000', CODEC_RUN_LOG: log };
    const api = await spawnService({ ...env, ROLE: 'api' }, dataDir);
    const [w1, w2] = await Promise.all([spawnService({ ...env, ROLE: 'worker' }, dataDir), spawnService({ ...env, ROLE: 'worker' }, dataDir)]);
    try {
      // Workers serve health only; the API serves the rest.
      expect((await getJson(`${w1.base}/healthz`)).status).toBe(200);
      expect((await fetch(`${w1.base}/api/v1/webhooks`)).status).toBe(404);

      const csv = `product_name,image_url\n${Array.from({ length: 200 }, (_, i) => `P${i % 40},${images.url(`/s/${i}.jpg`)}`).join('\n')}\n`;
      const res = await upload(api.base, csv);
      expect(res.body).toMatchObject({ products: 40, images: 200 });
      await waitForStatus(api.base, res.body.request_id, { until: (b) => b.progress.done >= 50 });
      w1.proc.kill('SIGKILL');
      await w1.exited;

      const status = await waitForStatus(api.base, res.body.request_id, { timeoutMs: 90_000 });
      expect(status).toMatchObject({ status: 'completed', progress: { total: 200, done: 200, failed: 0 } });
      const outputs = status.products.flatMap((p: any) => p.output_urls);
      expect(outputs.filter((u: unknown) => typeof u === 'string')).toHaveLength(200);
      expect((await fetch(outputs[0])).status).toBe(200); // the API serves what a worker wrote

      const runs = readFileSync(log, 'utf8').trim().split('\n');
      const byPid = (pid: number | undefined) => runs.filter((l) => l.startsWith(`${pid} `)).length;
      expect(byPid(api.proc.pid)).toBe(0);
      expect(byPid(w1.proc.pid)).toBeGreaterThan(0);
      expect(byPid(w2.proc.pid)).toBeGreaterThan(0);
      // Only what the dead worker had in hand runs again: never a finished image.
      const rerun = runs.length - 200;
      expect(rerun).toBeGreaterThanOrEqual(0);
      expect(rerun).toBeLessThanOrEqual(20);
      const twice = Array.from({ length: 200 }, (_, i) => images.hits(`/s/${i}.jpg`)).filter((n) => n > 1).length;
      expect(twice).toBeLessThanOrEqual(20);
    } finally {
      await Promise.all([api.stop(), w1.stop(), w2.stop()]);
    }
  }, 150_000);
});

describe('start-up with an unreachable MongoDB', () => {
  it('fails fast with one clear line', async () => {
    const proc = spawn(process.execPath, [join(ROOT, 'dist/src/main.js')], {
      env: { ...process.env, MONGODB_URI: 'mongodb://user:s3cret@127.0.0.1:1/db', MONGODB_CONNECT_TIMEOUT_MS: '1500', PORT: '0', DATA_DIR: tempDir() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    expect(code).toBe(1);
    const fatal = out.trim().split('\n').filter((l) => l.includes('cannot start'));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatch(/cannot reach MongoDB at mongodb:\/\/.*127\.0\.0\.1:1.*1500 ms/);
    expect(out).not.toContain('s3cret');
    expect(out).not.toMatch(/\n\s+at /); // no stack trace
  }, 30_000);
});
