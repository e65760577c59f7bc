// Renditions end to end over HTTP: extra outputs of every image, each checked by an independent
// decoder (format, size, never enlarged), made from one download and one codec run per image,
// shown in the status, output.csv and the event payload, reused with no codec run on a
// re-import, and refused with a 400 naming the rendition and the field when the spec is bad.
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { valueSymbol } from 'piscina';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS } from '../src/codecs/output-options.js';
import { jpegFrame } from '../src/codecs/jpeg-scale.js';
import { planImage } from '../src/codecs/plan.js';
import { parseRenditions } from '../src/codecs/renditions.js';
import { fixture, independentDecode } from './helpers/decode.js';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { startTestService, tempDir, upload, waitForStatus, type TestService } from './helpers/service.js';

const MAGIC: Array<[string, (b: Uint8Array) => boolean]> = [
  ['jpeg', (b) => b[0] === 0xff && b[1] === 0xd8],
  ['png', (b) => b[0] === 0x89 && b[1] === 0x50],
  ['webp', (b) => String.fromCharCode(...b.subarray(8, 12)) === 'WEBP'],
  ['avif', (b) => String.fromCharCode(...b.subarray(4, 12)).startsWith('ftypavi')],
];
const formatOf = (b: Uint8Array) => MAGIC.find(([, is]) => is(b))?.[0] ?? 'unknown';

/** The size an image of `w`x`h` fits into inside the box, never enlarged (written out here, not imported). */
function expectedSize(w: number, h: number, maxW: number | null, maxH: number | null) {
  const scale = Math.min(1, maxW ? maxW / w : 1, maxH ? maxH / h : 1);
  return scale >= 1 ? { width: w, height: h } : { width: Math.round(w * scale), height: Math.round(h * scale) };
}

describe('renditions', () => {
  let images: ImageServer;
  let svc: TestService;
  let codecLog: string;
  const codecRunLines = () => (existsSync(codecLog) ? readFileSync(codecLog, 'utf8').trim().split('\n').filter(Boolean) : []);

  // upright sizes: coffee-orient6.jpg is stored 600x400 with EXIF orientation 6
  const SOURCES = [
    { path: '/rocket.jpg', file: 'rocket-small.jpg', type: 'image/jpeg', width: 640, height: 427 },
    { path: '/astronaut.png', file: 'astronaut-alpha.png', type: 'image/png', width: 512, height: 512 },
    { path: '/coffee.jpg', file: 'coffee-orient6.jpg', type: 'image/jpeg', width: 400, height: 600 },
  ];
  const RENDITIONS = [
    { name: 'thumb', max_width: 120, format: 'webp' },
    { name: 'mid', max_width: 300, max_height: 250, format: 'jpeg', quality: 70 },
    { name: 'full', max_width: 4000 }, // larger than every source: never enlarged; format and quality inherited
  ];
  const FIELDS = { format: 'png', max_width: '200', renditions: JSON.stringify(RENDITIONS) };

  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.21' });
    for (const s of SOURCES) images.serve(s.path, fixture(s.file), s.type);
    const dataDir = tempDir();
    codecLog = join(dataDir, 'codec-runs.log');
    svc = await startTestService({ FETCH_ALLOWLIST: images.cidr, CODEC_RUN_LOG: codecLog }, dataDir);
  });
  afterAll(async () => {
    await svc?.stop();
    await images?.close();
  });

  const csv = () => `product_name,image_url\n${SOURCES.map((s, i) => `P${i},${images.url(s.path)}`).join('\n')}\n`;
  const fetchBytes = async (url: string) => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    return new Uint8Array(await res.arrayBuffer());
  };

  it('makes every rendition from one download and one codec run per image, each the format and size asked', async () => {
    const res = await upload(svc.base, csv(), { fields: FIELDS });
    expect(res.status).toBe(202);
    const status = await waitForStatus(svc.base, res.body.request_id);
    expect(status.status).toBe('completed');
    expect(status.progress).toEqual({ total: 3, done: 3, failed: 0 });

    // one download and one codec run (one decode) per image, whatever the number of outputs
    for (const s of SOURCES) expect(images.requests.filter((r) => r.path === s.path)).toHaveLength(1);
    expect(codecRunLines()).toHaveLength(SOURCES.length);

    // the request's options show the renditions, omitted fields filled in from the request level
    expect(status.options.renditions).toEqual([
      { name: 'thumb', format: 'webp', quality: 50, max_width: 120, max_height: null },
      { name: 'mid', format: 'jpeg', quality: 70, max_width: 300, max_height: 250 },
      { name: 'full', format: 'png', quality: 50, max_width: 4000, max_height: null },
    ].map((r) => expect.objectContaining(r)));
    expect(status.options).toMatchObject({ format: 'png', max_width: 200 });

    // every output, each rendition too, is named by the HMAC of its bytes under the deployment's secret
    const secret = Buffer.from(await svc.service.store.outputNameSecret(), 'hex');
    const nameOf = (url: string) => url.slice(url.lastIndexOf('/') + 1, url.lastIndexOf('.'));
    const expectNamed = (url: string, bytes: Uint8Array) => expect(nameOf(url), url).toBe(createHmac('sha256', secret).update(bytes).digest('hex'));

    let outputBytes = 0;
    for (const [i, s] of SOURCES.entries()) {
      const product = status.products[i];
      expect(Object.keys(product.renditions)).toEqual(['thumb', 'mid', 'full']);
      // the request-level output is unchanged by renditions: PNG at max_width 200
      const main = await fetchBytes(product.output_urls[0]);
      expect(formatOf(main)).toBe('png');
      expectNamed(product.output_urls[0], main);
      expect(await independentDecode(main)).toMatchObject(expectedSize(s.width, s.height, 200, null));
      outputBytes += product.output_bytes[0];
      const expected = { thumb: ['webp', 120, null], mid: ['jpeg', 300, 250], full: ['png', 4000, null] } as const;
      for (const [name, [format, maxW, maxH]] of Object.entries(expected)) {
        const urls = product.renditions[name];
        expect(urls).toHaveLength(1); // aligned with input_urls
        const bytes = await fetchBytes(urls[0]);
        expect(formatOf(bytes), `${s.file} ${name}`).toBe(format);
        expectNamed(urls[0], bytes);
        const decoded = await independentDecode(bytes);
        expect({ width: decoded.width, height: decoded.height }, `${s.file} ${name}`).toEqual(expectedSize(s.width, s.height, maxW, maxH));
        expect(decoded.width).toBeLessThanOrEqual(s.width); // never enlarged
        expect(decoded.height).toBeLessThanOrEqual(s.height);
      }
    }
    // bytes count the request-level output only
    expect(status.bytes.out).toBe(outputBytes);

    // output.csv: the four columns first, then one per rendition, aligned with the inputs
    const text = await (await fetch(`${svc.base}/api/v1/status/${res.body.request_id}/output.csv`)).text();
    const [header, ...rows] = text.trim().split('\r\n');
    expect(header).toBe('"S. No.","Product Name","Input Image Urls","Output Image Urls","Output Image Urls (thumb)","Output Image Urls (mid)","Output Image Urls (full)"');
    expect(rows).toHaveLength(3);
    const cells = rows[0]!.slice(1, -1).split('","');
    expect(cells.slice(3)).toEqual([status.products[0].output_urls[0], ...['thumb', 'mid', 'full'].map((n) => status.products[0].renditions[n][0])]);

    // the events list the renditions' names
    const events = await svc.service.store.listEvents(res.body.request_id);
    expect(events.map((e) => JSON.parse(e.payload).data.renditions)).toEqual(events.map(() => ['thumb', 'mid', 'full']));
  });

  it('imports again with no codec run for any rendition, and the same URLs', async () => {
    const first = await waitForStatus(svc.base, (await upload(svc.base, csv(), { fields: FIELDS })).body.request_id);
    const runs = codecRunLines().length;
    const again = await waitForStatus(svc.base, (await upload(svc.base, csv(), { fields: FIELDS })).body.request_id);
    expect(again.status).toBe('completed');
    expect(codecRunLines()).toHaveLength(runs);
    const urlsOf = (s: any) => s.products.map((p: any) => [p.output_urls, p.renditions]);
    expect(urlsOf(again)).toEqual(urlsOf(first));

    // other renditions are other outputs: the codecs run again
    const other = JSON.stringify([...RENDITIONS.slice(0, 2), { name: 'full', max_width: 4000, format: 'webp' }]);
    const changed = await waitForStatus(svc.base, (await upload(svc.base, csv(), { fields: { ...FIELDS, renditions: other } })).body.request_id);
    expect(changed.status).toBe('completed');
    expect(codecRunLines()).toHaveLength(runs + SOURCES.length);
  });

  it('takes renditions into the Idempotency-Key fingerprint', async () => {
    const headers = { 'idempotency-key': 'renditions-key' };
    expect((await upload(svc.base, csv(), { headers, fields: FIELDS })).status).toBe(202);
    expect((await upload(svc.base, csv(), { headers, fields: FIELDS })).headers.get('idempotent-replayed')).toBe('true');
    const other = await upload(svc.base, csv(), { headers, fields: { ...FIELDS, renditions: JSON.stringify(RENDITIONS.slice(1)) } });
    expect(other.status).toBe(422);
  });

  it('answers 400 naming the rendition and the field for a bad spec, and stores nothing', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['not json', /^renditions: must be a JSON array/],
      [{ name: 'a' }, /^renditions: must be a JSON array/],
      [Array.from({ length: 9 }, (_, i) => ({ name: `r${i}` })), /^renditions: at most 8/],
      [['thumb'], /^renditions\[0\]: must be an object/],
      [[{ max_width: 10 }], /^renditions\[0\]\.name:/],
      [[{ name: 'Thumb' }], /^renditions\[0\]\.name:/],
      [[{ name: 'x'.repeat(33) }], /^renditions\[0\]\.name:/],
      [[{ name: 'a' }, { name: 'a' }], /^rendition "a": name: used twice/],
      [[{ name: 'thumb', max_width: 0 }], /^rendition "thumb": max_width: must be an integer from 1 to 16384/],
      [[{ name: 'thumb', max_height: 16385 }], /^rendition "thumb": max_height:/],
      [[{ name: 'thumb', quality: 101 }], /^rendition "thumb": quality: must be an integer from 1 to 100/],
      [[{ name: 'thumb', quality: 1.5 }], /^rendition "thumb": quality:/],
      [[{ name: 'thumb', format: 'gif' }], /^rendition "thumb": format: must be one of original, jpeg/],
      [[{ name: 'thumb', width: 10 }], /^rendition "thumb": width: unknown field/],
    ];
    const runs = codecRunLines().length;
    for (const [spec, detail] of cases) {
      const res = await upload(svc.base, csv(), { fields: { renditions: typeof spec === 'string' ? spec : JSON.stringify(spec) } });
      expect(res.status, JSON.stringify(spec)).toBe(400);
      expect(res.body.detail, JSON.stringify(spec)).toMatch(detail);
    }
    // given after the file, checked before anything is committed
    const form = new FormData();
    form.append('file', new Blob([csv()], { type: 'text/csv' }), 'p.csv');
    form.append('renditions', '[{"name":"late","format":"bmp"}]');
    const late = await fetch(`${svc.base}/api/v1/upload`, { method: 'POST', body: form });
    expect(late.status).toBe(400);
    expect(((await late.json()) as { detail: string }).detail).toMatch(/^rendition "late": format:/);
    expect(codecRunLines()).toHaveLength(runs);
  });
});

describe('a rendition that fails', () => {
  it('fails its image, and the error names the rendition', async () => {
    // The pool thread's entry, run here on a plan whose rendition cannot be made (a 0x0 output:
    // no real plan has one, so the failure is forced where a codec failure would happen).
    const { default: compress } = (await import('../workers/compress.js')) as { default: (t: unknown) => Promise<unknown> };
    const bytes = fixture('rocket-small.jpg');
    const plan = planImage(bytes, { ...DEFAULT_OUTPUT_OPTIONS, format: 'webp' }, 50_000_000,
      parseRenditions('[{"name":"fine","max_width":64},{"name":"broken","max_width":32}]', { ...DEFAULT_OUTPUT_OPTIONS, format: 'webp' }));
    plan.renditions[1]!.output = { width: 0, height: 0 };
    await expect(compress({ bytes, plan })).rejects.toThrow(/^rendition "broken": /);
    plan.renditions.pop();
    const moved = (await compress({ bytes, plan })) as Record<symbol, { renditions: Record<string, { width: number }> }>;
    expect(Object.keys(moved[valueSymbol]!.renditions)).toEqual(['fine']);
  });
});

describe('planning an image with renditions', () => {
  it('plans the memory of the whole set from the header, the decode held while each output is made', () => {
    const bytes = fixture('rocket-small.jpg'); // 640x427
    const base = { ...DEFAULT_OUTPUT_OPTIONS, format: 'jpeg' as const, max_width: 320 };
    const renditions = parseRenditions('[{"name":"big"},{"name":"small","max_width":64,"format":"webp"}]', { ...base, max_width: null });
    const alone = planImage(bytes, base, 50_000_000);
    const set = planImage(bytes, base, 50_000_000, renditions);
    expect(set.output).toEqual(alone.output);
    expect(set.renditions.map((r) => [r.name, r.target, r.output.width, r.output.height])).toEqual([['big', 'jpeg', 640, 427], ['small', 'webp', 64, 43]]);
    // the decode serves the largest output: here a rendition, not the request-level output
    expect(set.largestOutput).toEqual({ width: 640, height: 427 });
    expect(alone.largestOutput).toEqual(alone.output);
    const bigAlone = planImage(bytes, { ...base, max_width: null }, 50_000_000);
    // the peak is at least either output's alone (the decode may be the largest step of all)
    expect(set.memoryBytes).toBeGreaterThanOrEqual(Math.max(alone.memoryBytes, bigAlone.memoryBytes));
    // every step of every output counts when all instances are kept, the decode once
    expect(set.memoryKeepingBytes).toBeGreaterThan(Math.max(alone.memoryKeepingBytes, bigAlone.memoryKeepingBytes));
    const small = planImage(bytes, { ...base, max_width: 64, format: 'webp' }, 50_000_000);
    expect(set.memoryKeepingBytes).toBeLessThan(alone.memoryKeepingBytes + bigAlone.memoryKeepingBytes + small.memoryKeepingBytes);
  });

  it('inherits every omitted field from the request level, and keeps the order asked', () => {
    const base = { ...DEFAULT_OUTPUT_OPTIONS, format: 'avif' as const, quality: 33, max_height: 500 };
    expect(parseRenditions([{ name: 'b', quality: 90 }, { name: 'a', max_width: 10, max_height: 20, format: 'png' }], base)).toEqual([
      { ...base, name: 'b', quality: 90 },
      { ...base, name: 'a', max_width: 10, max_height: 20, format: 'png' },
    ]);
    expect(parseRenditions('', base)).toEqual([]);
    expect(parseRenditions('[]', base)).toEqual([]);
  });
});

describe('renditions with shrink-on-load and progressive', () => {
  it('decodes a JPEG once at the DCT scale the largest output allows, and gives each output its own progressive', async () => {
    const { default: compress } = (await import('../workers/compress.js')) as { default: (t: unknown) => Promise<unknown> };
    const raw = Buffer.alloc(1600 * 1200 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 7) % 251;
    const bytes = new Uint8Array(await sharp(raw, { raw: { width: 1600, height: 1200, channels: 3 } }).jpeg({ quality: 90 }).toBuffer());
    const base = { ...DEFAULT_OUTPUT_OPTIONS, format: 'jpeg' as const, quality: 70, max_width: 100 };
    // alone, 100 px of 1600 is 16x: 1/8; with a 400 px rendition (4x) the one decode is at 1/4
    expect(planImage(bytes, base, 50_000_000).decodeScale).toBe(8);
    const renditions = parseRenditions('[{"name":"big","max_width":400,"progressive":true},{"name":"tiny","max_width":50}]', base);
    const plan = planImage(bytes, base, 50_000_000, renditions);
    expect(plan.largestOutput).toEqual({ width: 400, height: 300 });
    expect([plan.decodeScale, plan.decoded]).toEqual([4, { width: 400, height: 300 }]);
    // a full-size rendition leaves no room to shrink on load
    expect(planImage(bytes, base, 50_000_000, parseRenditions('[{"name":"all","max_width":4000}]', base)).decodeScale).toBe(1);
    // the memory plan counts the scaled decode: less than the same set decoded at full size
    expect(plan.memoryBytes).toBeLessThan(planImage(bytes, base, 50_000_000, renditions, { shrinkOnLoad: false }).memoryBytes);
    expect(plan.renditions.map((r) => [r.name, r.encode.progressive])).toEqual([['big', true], ['tiny', false]]);

    const moved = (await compress({ bytes, plan })) as Record<symbol, { bytes: Uint8Array; renditions: Record<string, { bytes: Uint8Array }> }>;
    const out = moved[valueSymbol]!;
    const made = [['main', out.bytes, 100, false], ['big', out.renditions.big!.bytes, 400, true], ['tiny', out.renditions.tiny!.bytes, 50, false]] as const;
    for (const [name, b, width, progressive] of made) {
      expect(jpegFrame(b)?.progressive, name).toBe(progressive);
      const decoded = await independentDecode(b);
      expect([decoded.width, decoded.height], name).toEqual([width, Math.round((width * 3) / 4)]);
    }
  });
});
