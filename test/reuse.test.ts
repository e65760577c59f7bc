// Re-imports that cost almost nothing: an image already made from the same bytes with the same
// settings is reused (no decode, no encode, same URL), a URL fetched before is asked whether it
// changed (304: its body is not downloaded), and a changed image is processed again. Per tenant.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from './helpers/decode.js';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { startTestService, tempDir, upload, waitForStatus, type TestService } from './helpers/service.js';

describe('skipping needless work', () => {
  let images: ImageServer;
  let svc: TestService;
  let codecLog: string;
  /** Answers 304 to a matching If-None-Match; counts full bodies sent. */
  const versions = new Map<string, { etag: string; body: Uint8Array }>();
  const bodiesSent = new Map<string, number>();
  const conditional = (path: string) => (req: IncomingMessage, res: ServerResponse) => {
    const v = versions.get(path)!;
    if (req.headers['if-none-match'] === v.etag) {
      res.writeHead(304, { etag: v.etag }).end();
      return;
    }
    bodiesSent.set(path, (bodiesSent.get(path) ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'image/jpeg', etag: v.etag, 'content-length': String(v.body.length) }).end(v.body);
  };
  const codecRuns = () => (existsSync(codecLog) ? readFileSync(codecLog, 'utf8').trim().split('\n').filter(Boolean).length : 0);

  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.20' });
    const jpeg = fixture('rocket-small.jpg');
    // Distinct content: the same photo with different bytes after its end-of-image marker.
    for (let i = 0; i < 3; i++) images.serve(`/plain/${i}.jpg`, new Uint8Array([...jpeg, ...new Uint8Array(i + 1)]), 'image/jpeg');
    versions.set('/etag.jpg', { etag: '"v1"', body: jpeg });
    images.set('/etag.jpg', { kind: 'handler', fn: conditional('/etag.jpg') });
    // images whose status says something: reused by content (HEIC) and by a 304 (GIF)
    images.serve('/noted.heic', fixture('rocket-small.heic'), 'image/heic');
    versions.set('/noted.gif', { etag: '"g1"', body: fixture('rocket-small.gif') });
    images.set('/noted.gif', { kind: 'handler', fn: conditional('/noted.gif') });
    const dataDir = tempDir();
    codecLog = join(dataDir, 'codec-runs.log');
    svc = await startTestService({ FETCH_ALLOWLIST: images.cidr, CODEC_RUN_LOG: codecLog, API_KEY: 'admin-reuse' }, dataDir);
  });
  afterAll(async () => {
    await svc?.stop();
    await images?.close();
  });

  const admin = { 'x-api-key': 'admin-reuse' };
  const outcomesOf = async (requestId: string) => {
    const status = await waitForStatus(svc.base, requestId, { headers: admin });
    const urls = status.products.flatMap((p: { input_urls: string[] }) => p.input_urls);
    const items = await svc.service.store.getItemsByUrl(requestId, urls);
    return { status, outcome: new Map(items.map((i) => [i.url, i.outcome])) };
  };

  it('imports the same catalogue again with no codec run, the same outputs, and 304s for known URLs', async () => {
    const csv = `product_name,image_url\n${[0, 1, 2].map((i) => `P${i},${images.url(`/plain/${i}.jpg`)}`).join('\n')}\nE,${images.url('/etag.jpg')}\n`;
    const first = await upload(svc.base, csv, { headers: admin });
    const one = await outcomesOf(first.body.request_id);
    expect(one.status.status).toBe('completed');
    expect(codecRuns()).toBe(4);
    expect([...one.outcome.values()].every((o) => o !== 'reused')).toBe(true);
    expect(bodiesSent.get('/etag.jpg')).toBe(1);

    const second = await upload(svc.base, csv, { headers: admin });
    const two = await outcomesOf(second.body.request_id);
    expect(codecRuns()).toBe(4); // counted, not inferred: nothing was decoded again
    expect([...two.outcome.values()]).toEqual(['reused', 'reused', 'reused', 'reused']);
    expect(two.status.products.map((p: { output_urls: string[] }) => p.output_urls)).toEqual(one.status.products.map((p: { output_urls: string[] }) => p.output_urls));
    expect(bodiesSent.get('/etag.jpg')).toBe(1); // answered 304, body not downloaded
    const asked = images.requests.filter((r) => r.path === '/etag.jpg');
    expect(asked.at(-1)!.headers['if-none-match']).toBe('"v1"');

    // Other settings: an unconditional download, and a new output.
    const webp = await upload(svc.base, csv, { headers: admin, fields: { format: 'webp' } });
    const three = await outcomesOf(webp.body.request_id);
    expect([...three.outcome.values()].every((o) => o === 'compressed')).toBe(true);
    expect(bodiesSent.get('/etag.jpg')).toBe(2);
    expect(codecRuns()).toBe(8);
  });

  it('keeps what the first import said about an image (its note) when it is reused', async () => {
    const csv = `product_name,image_url\nH,${images.url('/noted.heic')}\nG,${images.url('/noted.gif')}\n`;
    const notesOf = (s: { products: { notes: (string | null)[] }[] }) => s.products.map((p) => p.notes[0]);
    const first = await outcomesOf((await upload(svc.base, csv, { headers: admin })).body.request_id);
    expect(notesOf(first.status)).toEqual(['converted from HEIC', 'converted from GIF']);
    const runs = codecRuns();
    const again = await outcomesOf((await upload(svc.base, csv, { headers: admin })).body.request_id);
    expect(codecRuns()).toBe(runs);
    expect([...again.outcome.values()]).toEqual(['reused', 'reused']);
    expect(bodiesSent.get('/noted.gif')).toBe(1); // the GIF came back as a 304, the HEIC from the content cache
    expect(notesOf(again.status)).toEqual(['converted from HEIC', 'converted from GIF']);
  });

  it('processes a changed image again', async () => {
    const csv = `product_name,image_url\nE,${images.url('/etag.jpg')}\n`;
    const before = (await outcomesOf((await upload(svc.base, csv, { headers: admin })).body.request_id)).status.products[0].output_urls[0];
    const runs = codecRuns();
    versions.set('/etag.jpg', { etag: '"v2"', body: fixture('coffee-orient6.jpg') });
    const after = await outcomesOf((await upload(svc.base, csv, { headers: admin })).body.request_id);
    expect(codecRuns()).toBe(runs + 1);
    expect(after.outcome.get(images.url('/etag.jpg'))).not.toBe('reused');
    expect(after.status.products[0].output_urls[0]).not.toBe(before);
  });

  it('keeps the cache per tenant: another tenant’s import of the same images is not a reuse', async () => {
    const made = await fetch(`${svc.base}/api/v1/keys`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: '{"name":"other"}' });
    const key = ((await made.json()) as { key: string }).key;
    const csv = `product_name,image_url\n${[0, 1, 2].map((i) => `P${i},${images.url(`/plain/${i}.jpg`)}`).join('\n')}\n`;
    const runs = codecRuns();
    const res = await upload(svc.base, csv, { headers: { 'x-api-key': key } });
    await waitForStatus(svc.base, res.body.request_id, { headers: { 'x-api-key': key } });
    const items = await svc.service.store.getItemsByUrl(res.body.request_id, [0, 1, 2].map((i) => images.url(`/plain/${i}.jpg`)));
    expect(items.map((i) => i.outcome)).not.toContain('reused');
    expect(codecRuns()).toBe(runs + 3);
  });
});
