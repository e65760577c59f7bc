// quality=auto over HTTP, the whole pipeline: a smooth and a detailed image in one request get
// different qualities and both reach the target, checked at full size by the independent metric
// (calc-s2-rust) on the outputs as downloaded; targets 50, 70 and 90 are respected; invalid values
// answer 400 naming the field; both fields join the Idempotency-Key fingerprint; a re-import
// reuses the results (no codec run, the same qualities and scores). Renditions search on their own
// (their quality=auto and quality_target, or the request-level ones), checked the same way.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Raster } from '../src/codecs/types.js';
import { independentDecode } from './helpers/decode.js';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { startTestService, tempDir, upload, waitForStatus, type TestService } from './helpers/service.js';
import { image, reference } from './helpers/ssimulacra2.js';

const W = 256;
const H = 192;

describe('quality=auto over HTTP', () => {
  let images: ImageServer;
  let svc: TestService;
  let codecLog: string;
  const sources: Record<string, Raster> = { smooth: image(W, H, 'smooth'), detailed: image(W, H, 'detailed') };
  const codecRuns = () => (existsSync(codecLog) ? readFileSync(codecLog, 'utf8').trim().split('\n').filter(Boolean).length : 0);

  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.23' });
    for (const [name, r] of Object.entries(sources)) {
      // PNG sources: decoded losslessly, so the source the service judges against is this raster
      const png = await sharp(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.length), { raw: { width: W, height: H, channels: 4 } }).png().toBuffer();
      images.serve(`/${name}.png`, new Uint8Array(png), 'image/png');
    }
    const dataDir = tempDir();
    codecLog = join(dataDir, 'codec-runs.log');
    svc = await startTestService({ FETCH_ALLOWLIST: images.cidr, CODEC_RUN_LOG: codecLog }, dataDir);
  });
  afterAll(async () => {
    await svc?.stop();
    await images?.close();
  });

  const csvOf = (...names: string[]) => `product_name,image_url\n${names.map((n) => `${n},${images.url(`/${n}.png`)}`).join('\n')}\n`;

  async function run(csv: string, fields: Record<string, string>) {
    const res = await upload(svc.base, csv, { fields });
    expect(res.status).toBe(202);
    const status = await waitForStatus(svc.base, res.body.request_id);
    expect(status.status).toBe('completed');
    return status;
  }

  /** Downloads the output, decodes it independently, checks its size and scores it with calc-s2-rust. */
  async function referenceScore(outputUrl: string, name: string): Promise<number> {
    const res = await fetch(outputUrl);
    expect(res.status).toBe(200);
    const out = await independentDecode(new Uint8Array(await res.arrayBuffer()));
    expect([out.width, out.height]).toEqual([W, H]);
    return reference(sources[name]!, out as Raster);
  }

  it('gives a smooth and a detailed image different qualities, both reaching the default target 70', async () => {
    const status = await run(csvOf('smooth', 'detailed'), { quality: 'auto', format: 'jpeg' });
    expect(status.options).toMatchObject({ quality: 'auto', quality_target: 70 });
    const [smooth, detailed] = status.products;
    const qs = smooth.qualities[0];
    const qd = detailed.qualities[0];
    expect(Number.isInteger(qs) && Number.isInteger(qd)).toBe(true);
    expect(qs).not.toBe(qd);
    for (const p of status.products) {
      expect(p.outcomes).toEqual(['compressed']);
      expect(p.scores[0]).toBeGreaterThanOrEqual(70);
      expect(await referenceScore(p.output_urls[0], p.product_name)).toBeGreaterThanOrEqual(70);
    }

    // a re-import: the same outputs, qualities and scores, and no codec run
    const runs = codecRuns();
    const again = await run(csvOf('smooth', 'detailed'), { quality: 'auto', format: 'jpeg' });
    expect(codecRuns()).toBe(runs);
    for (const [i, p] of again.products.entries()) {
      expect(p.outcomes).toEqual(['reused']);
      expect([p.output_urls, p.qualities, p.scores]).toEqual([status.products[i].output_urls, status.products[i].qualities, status.products[i].scores]);
    }
    // another target is other settings: made again
    await run(csvOf('smooth'), { quality: 'auto', format: 'jpeg', quality_target: '80' });
    expect(codecRuns()).toBe(runs + 1);
  });

  // JPEG: lossy WebP (4:2:0 chroma, as libwebp always does) tops out near 83 on the detailed image
  // even at quality 100, so a target of 90 is out of its reach there (the status then shows the
  // score reached, below the target)
  it.each([50, 70, 90])('respects quality_target=%i', async (target) => {
    const status = await run(csvOf('detailed'), { quality: 'auto', quality_target: String(target), format: 'jpeg' });
    const p = status.products[0];
    expect(p.scores[0]).toBeGreaterThanOrEqual(target);
    expect(await referenceScore(p.output_urls[0], 'detailed')).toBeGreaterThanOrEqual(target);
  });

  it('reports what was reached when WebP cannot reach the target', async () => {
    const status = await run(csvOf('detailed'), { quality: 'auto', quality_target: '90', format: 'webp' });
    const p = status.products[0];
    expect(p.qualities[0]).toBe(100);
    expect(p.scores[0]).toBeLessThan(90);
    expect(Math.abs((await referenceScore(p.output_urls[0], 'detailed')) - p.scores[0])).toBeLessThan(2);
  });

  it('searches per rendition: its own quality=auto and target, or the request-level ones inherited', async () => {
    // request level at a fixed quality; one full-size WebP rendition searched to 75 (scored against
    // the source by the independent metric), one half-size JPEG one searched to the default 70
    const renditions = [{ name: 'web', format: 'webp', quality: 'auto', quality_target: 75 }, { name: 'small', max_width: W / 2, quality: 'auto' }];
    const status = await run(csvOf('detailed'), { quality: '40', format: 'jpeg', renditions: JSON.stringify(renditions) });
    expect(status.options.renditions).toMatchObject([{ name: 'web', quality: 'auto', quality_target: 75 }, { name: 'small', quality: 'auto', quality_target: 70, format: 'jpeg' }]);
    const p = status.products[0];
    // qualities and scores describe the request-level output only
    expect([p.qualities, p.scores]).toEqual([[40], [null]]);
    const web = await fetch(p.renditions.web[0]);
    expect(web.headers.get('content-type')).toBe('image/webp');
    const webBytes = new Uint8Array(await web.arrayBuffer());
    const webScore = await reference(sources.detailed!, (await independentDecode(webBytes)) as Raster);
    expect(webScore).toBeGreaterThanOrEqual(75);
    // the search stopped at the lowest quality reaching it: not the maximum, and smaller than a lossless-ish encode would be
    expect(webScore).toBeLessThan(90);
    const small = await independentDecode(new Uint8Array(await (await fetch(p.renditions.small[0])).arrayBuffer()));
    expect([small.width, small.height]).toEqual([W / 2, H / 2]);

    // quality=auto at request level is inherited by a rendition, which may set its own target
    const inherited = await run(csvOf('detailed'), { quality: 'auto', quality_target: '60', format: 'jpeg', renditions: JSON.stringify([{ name: 'hq', quality_target: 85 }]) });
    const q = inherited.products[0];
    expect(q.scores[0]).toBeGreaterThanOrEqual(60);
    expect(await referenceScore(q.output_urls[0], 'detailed')).toBeGreaterThanOrEqual(60);
    expect(await referenceScore(q.renditions.hq[0], 'detailed')).toBeGreaterThanOrEqual(85);
  });

  it('answers 400 for a bad quality or quality_target in a rendition, naming both', async () => {
    for (const spec of [{ name: 'r', quality: 'automatic' }, { name: 'r', quality: 'auto', quality_target: 96 }]) {
      const res = await upload(svc.base, csvOf('smooth'), { fields: { renditions: JSON.stringify([spec]) } });
      expect(res.status).toBe(400);
      expect(res.body.detail).toContain(`rendition "r": ${Object.keys(spec).at(-1)}:`);
    }
  });

  it('reports the fixed quality and no score without auto', async () => {
    const status = await run(csvOf('smooth'), { quality: '63', format: 'jpeg' });
    expect([status.products[0].qualities, status.products[0].scores]).toEqual([[63], [null]]);
  });

  it.each([
    ['quality', 'automatic'],
    ['quality', '0'],
    ['quality', '101'],
    ['quality_target', '29'],
    ['quality_target', '96'],
    ['quality_target', '70.5'],
    ['quality_target', 'auto'],
  ])('answers 400 for %s=%s, naming the field', async (field, value) => {
    const res = await upload(svc.base, csvOf('smooth'), { fields: { quality: 'auto', [field]: value } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain(field);
  });

  it('takes quality and quality_target into the Idempotency-Key fingerprint', async () => {
    const headers = { 'idempotency-key': 'auto-quality-fp' };
    const first = await upload(svc.base, csvOf('smooth'), { headers, fields: { quality: 'auto', quality_target: '60' } });
    expect(first.status).toBe(202);
    const same = await upload(svc.base, csvOf('smooth'), { headers, fields: { quality: 'auto', quality_target: '60' } });
    expect(same.headers.get('idempotent-replayed')).toBe('true');
    for (const fields of [{ quality: 'auto', quality_target: '61' }, { quality: '60' }] as Record<string, string>[]) {
      const other = await upload(svc.base, csvOf('smooth'), { headers, fields });
      expect(other.status).toBeGreaterThanOrEqual(400);
      expect(other.headers.get('idempotent-replayed')).not.toBe('true');
    }
  });
});
