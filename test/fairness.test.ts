// Work is shared between requests: a 1-image request sent just after an 800-image one is
// claimed at the next turn and finishes while the big one is still running.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { getJson, startTestService, tempDir, upload, waitForStatus } from './helpers/service.js';

describe('fair scheduling', () => {
  let images: ImageServer;
  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.14' });
    const jpeg = new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures/rocket-small.jpg')));
    for (let i = 0; i < 800; i++) images.serve(`/big/${i}.jpg`, jpeg, 'image/jpeg');
    images.serve('/small.jpg', jpeg, 'image/jpeg');
  });
  afterAll(async () => {
    await images?.close();
  });

  it('finishes a small request sent behind a big one while the big one is still running', async () => {
    const svc = await startTestService({ FETCH_ALLOWLIST: images.cidr, WORKER_THREADS: '1' }, tempDir());
    try {
      const big = await upload(svc.base, `product_name,image_url\n${Array.from({ length: 800 }, (_, i) => `B${i},${images.url(`/big/${i}.jpg`)}`).join('\n')}\n`);
      expect(big.body.images).toBe(800);
      await waitForStatus(svc.base, big.body.request_id, { until: (b) => b.progress.done > 0 });
      const small = await upload(svc.base, `product_name,image_url\nS,${images.url('/small.jpg')}\n`);
      const done = await waitForStatus(svc.base, small.body.request_id, { timeoutMs: 60_000 });
      const bigNow = (await getJson(`${svc.base}/api/v1/status/${big.body.request_id}?limit=1`)).body;
      expect(done.status).toBe('completed');
      expect(bigNow.status).toBe('processing');
      expect(bigNow.progress.done + bigNow.progress.failed).toBeLessThan(800);
    } finally {
      await svc.stop();
    }
  }, 120_000);
});
