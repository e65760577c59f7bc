// A crash costs only the guilty: an image that kills the process every time it reaches a codec
// is given up after MAX_ITEM_ATTEMPTS with a reason, while an innocent image that was only
// downloading at each of those kills is never charged and completes. Real processes, real
// kill -9: the test plays the crashing codec by killing the server the moment the poison image
// enters a decoder (CODEC_RUN_LOG has a line for it by then, after the attempt was recorded).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { spawnService, tempDir, upload, waitForStatus, type ChildService } from './helpers/service.js';
import { until } from './helpers/poll.js';

const KILLS = 5;

describe('crash accounting', () => {
  let images: ImageServer;
  const jpeg = new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures/rocket-small.jpg')));
  // A valid JPEG with bytes after its end-of-image marker: a size no other image has.
  const poison = new Uint8Array([...jpeg, ...new Uint8Array(777)]);

  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.13' });
    images.serve('/poison.jpg', poison, 'image/jpeg');
    // The innocent image arrives slowly (about 3 s), so it is mid-download at every kill.
    images.set('/innocent.jpg', {
      kind: 'handler',
      fn: (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(jpeg.length) });
        const step = Math.ceil(jpeg.length / 30);
        let sent = 0;
        const timer = setInterval(() => {
          if (res.destroyed) return clearInterval(timer);
          res.write(jpeg.subarray(sent, sent + step));
          sent += step;
          if (sent >= jpeg.length) {
            clearInterval(timer);
            res.end();
          }
        }, 100);
        res.on('close', () => clearInterval(timer));
      },
    });
  });
  afterAll(async () => {
    await images?.close();
  });

  it('gives up the image that crashes the process each time, and charges nothing to the one that was downloading', async () => {
    const dataDir = tempDir();
    const log = join(dataDir, 'codec-runs.log');
    const env = { FETCH_ALLOWLIST: images.cidr, LEASE_MS: '1500', CODEC_RUN_LOG: log, MAX_ITEM_ATTEMPTS: String(KILLS) };
    const poisonRuns = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.endsWith(` ${poison.length}`)).length : 0);

    let svc: ChildService = await spawnService(env, dataDir);
    const csv = `product_name,image_url\nInnocent,${images.url('/innocent.jpg')}\nPoison,${images.url('/poison.jpg')}\n`;
    const res = await upload(svc.base, csv);
    expect(res.status).toBe(202);
    let kills = 0;
    let innocentHitsAtKills = 0;
    while (kills < KILLS) {
      await until(() => poisonRuns() > kills, `the poison image to reach a codec after ${kills} kills`, { intervalMs: 5 });
      svc.proc.kill('SIGKILL');
      await svc.exited;
      kills++;
      innocentHitsAtKills = images.hits('/innocent.jpg');
      svc = await spawnService(env, dataDir);
    }
    try {
      const status = await waitForStatus(svc.base, res.body.request_id, { timeoutMs: 60_000 });
      const [innocent, guilty] = status.products;
      expect(innocent).toMatchObject({ product_name: 'Innocent', processing_status: 'completed', errors: [null] });
      expect(innocent.output_urls[0]).toMatch(/\/images\/[0-9a-f]{64}\.jpg$/);
      expect(guilty).toMatchObject({ product_name: 'Poison', processing_status: 'failed' });
      expect(guilty.errors[0]).toMatch(new RegExp(`gave up after ${KILLS} attempts`));
      expect(status).toMatchObject({ status: 'completed', progress: { total: 2, done: 1, failed: 1 } });
      expect(poisonRuns()).toBe(KILLS); // never decoded again once given up
      // The innocent image was being downloaded at every kill: one download per life of the process.
      expect(innocentHitsAtKills).toBeGreaterThanOrEqual(KILLS);
    } finally {
      await svc.stop();
    }
  }, 150_000);
});
