// Output options through the HTTP API: given as form fields, validated before the 202 (a 400
// naming the field), shown in the status with defaults filled in, and applied to every image
// (checked on the real outputs with the independent decoder).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jpegFrame } from '../src/codecs/jpeg-scale.js';
import { fixture, independentDecode } from './helpers/decode.js';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { startTestService, tempDir, upload, waitForStatus, type TestService } from './helpers/service.js';

describe('output options over HTTP', () => {
  let images: ImageServer;
  let svc: TestService;
  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.15' });
    images.serve('/rocket.jpg', fixture('rocket-small.jpg'), 'image/jpeg');
    images.serve('/alpha.png', fixture('astronaut-alpha.png'), 'image/png');
    svc = await startTestService({ FETCH_ALLOWLIST: images.cidr }, tempDir());
  });
  afterAll(async () => {
    await svc?.stop();
    await images?.close();
  });

  const csv = () => `product_name,image_url\nRocket,${images.url('/rocket.jpg')}\nAlpha,${images.url('/alpha.png')}\n`;

  it('converts and resizes every image as asked, never enlarging, and reports the options used', async () => {
    const res = await upload(svc.base, csv(), { fields: { format: 'webp', quality: '70', max_width: '120' } });
    expect(res.status).toBe(202);
    const status = await waitForStatus(svc.base, res.body.request_id);
    expect(status.options).toEqual({ quality: 70, format: 'webp', max_width: 120, max_height: null, progressive: false });
    for (const [i, name] of ['rocket-small.jpg', 'astronaut-alpha.png'].entries()) {
      const url = status.products[i].output_urls[0];
      expect(url).toMatch(/\.webp$/);
      const out = new Uint8Array(await (await fetch(url)).arrayBuffer());
      expect(new TextDecoder().decode(out.subarray(8, 12))).toBe('WEBP');
      const src = await independentDecode(fixture(name));
      const got = await independentDecode(out);
      expect(got.width).toBe(Math.min(120, src.width));
      expect(Math.abs(got.height - Math.round(src.height * got.width / src.width))).toBeLessThanOrEqual(1);
    }
    // A box bigger than the image never enlarges it.
    const big = await upload(svc.base, csv(), { fields: { max_width: '10000', max_height: '10000', format: 'jpeg' } });
    const done = await waitForStatus(svc.base, big.body.request_id);
    const out = new Uint8Array(await (await fetch(done.products[1].output_urls[0])).arrayBuffer());
    const src = await independentDecode(fixture('astronaut-alpha.png'));
    const got = await independentDecode(out);
    expect([out[0], out[1]]).toEqual([0xff, 0xd8]);
    expect([got.width, got.height]).toEqual([src.width, src.height]);
  });

  it('shows the defaults when no option is given', async () => {
    const res = await upload(svc.base, csv());
    const status = await waitForStatus(svc.base, res.body.request_id);
    expect(status.options).toEqual({ quality: 50, format: 'original', max_width: null, max_height: null, progressive: false });
    expect(status.products[0].output_urls[0]).toMatch(/\.jpg$/);
  });

  it('refuses each bad value with a 400 naming the field, before anything is stored', async () => {
    for (const [field, value] of [['quality', '0'], ['quality', '101'], ['quality', 'high'], ['format', 'gif'], ['max_width', '0'], ['max_width', '16385'], ['max_height', '-3'], ['max_height', '1.5'], ['progressive', 'yes'], ['progressive', '1']]) {
      const res = await upload(svc.base, csv(), { fields: { [field!]: value! } });
      expect(res.status, `${field}=${value}`).toBe(400);
      expect(res.body.detail, `${field}=${value}`).toMatch(new RegExp(`^${field}:`));
    }
    // A bad option after the file is refused too.
    const form = new FormData();
    form.append('file', new Blob([csv()], { type: 'text/csv' }), 'p.csv');
    form.append('format', 'bmp');
    const late = await fetch(`${svc.base}/api/v1/upload`, { method: 'POST', body: form });
    expect(late.status).toBe(400);
    expect(((await late.json()) as { detail: string }).detail).toMatch(/^format:/);
    const list = await (await fetch(`${svc.base}/api/v1/requests`)).json() as { requests: unknown[] };
    expect(list.requests).toHaveLength(3); // only the three accepted uploads above
  });

  it('writes progressive JPEG when asked, shows it, and keys the Idempotency-Key fingerprint on it', async () => {
    const headers = { 'idempotency-key': 'progressive-1' };
    const res = await upload(svc.base, csv(), { fields: { format: 'jpeg', quality: '40', max_width: '200', progressive: 'true' }, headers });
    expect(res.status).toBe(202);
    const status = await waitForStatus(svc.base, res.body.request_id);
    expect(status.options).toEqual({ quality: 40, format: 'jpeg', max_width: 200, max_height: null, progressive: true });
    for (const product of status.products) {
      const out = new Uint8Array(await (await fetch(product.output_urls[0])).arrayBuffer());
      expect(jpegFrame(out)?.progressive).toBe(true);
      expect((await independentDecode(out)).width).toBe(200);
    }
    // the same key with progressive changed is another body: refused, not replayed
    const other = await upload(svc.base, csv(), { fields: { format: 'jpeg', quality: '40', max_width: '200', progressive: 'false' }, headers });
    expect(other.status).toBe(422);
    const same = await upload(svc.base, csv(), { fields: { format: 'jpeg', quality: '40', max_width: '200', progressive: 'true' }, headers });
    expect(same.status).toBe(202);
    expect(same.body.request_id).toBe(res.body.request_id);
  });
});
