// Output options through the real pool and codecs: format, quality, fit-inside resizing (aspect
// kept, never enlarged, antialiased, after EXIF orientation), alpha flattened for JPEG, the
// never-larger rule only for unchanged format and size, and the validator. Every output is
// decoded by the independent decoder (test/helpers/decode.ts) and its size checked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { DEFAULT_OUTPUT_OPTIONS, defaultOutputOptions, fitInside, MAX_DIMENSION, OutputOptionError, parseOutputOptions, settingsKey, storedOutputOptions, type OutputOptions } from '../src/codecs/output-options.js';
import { jpegQuantTables } from '../src/codecs/jpeg.js';
import { jpegFrame } from '../src/codecs/jpeg-scale.js';
import { detectFormat, jpegHasExif } from '../src/codecs/sniff.js';
import { CompressPool } from '../src/pipeline/pool.js';
import { fixture, independentDecode as decode, type Pixels } from './helpers/decode.js';

let pool: CompressPool;
beforeAll(async () => {
  pool = new CompressPool({ threads: 2, maxPixels: 50_000_000 });
  await pool.ready();
});
afterAll(async () => {
  await pool?.close();
});

async function run(bytes: Uint8Array, options: Partial<OutputOptions>) {
  const r = await pool.compress(bytes, { options: { ...DEFAULT_OUTPUT_OPTIONS, ...options } });
  const img = await decode(r.bytes);
  expect([img.width, img.height]).toEqual([r.width, r.height]);
  expect(detectFormat(r.bytes)).toBe(r.format);
  expect(r.bytesOut).toBe(r.bytes.length);
  return { r, img };
}

const pixel = (p: Pixels, x: number, y: number) => Array.from(p.data.subarray((y * p.width + x) * 4, (y * p.width + x) * 4 + 4));

/** Mean absolute RGB difference, every pixel. */
function meanDiff(a: Pixels, b: Pixels): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) for (let c = 0; c < 3; c++) sum += Math.abs(a.data[i + c]! - b.data[i + c]!);
  return sum / ((a.data.length / 4) * 3);
}

async function rawOf(bytes: Uint8Array | Buffer): Promise<Pixels> {
  const { data, info } = await sharp(bytes).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

describe('parseOutputOptions', () => {
  it('fills in the defaults and accepts numbers or digit strings', () => {
    expect(parseOutputOptions({}, DEFAULT_OUTPUT_OPTIONS)).toEqual(DEFAULT_OUTPUT_OPTIONS);
    expect(DEFAULT_OUTPUT_OPTIONS).toEqual({ quality: 50, format: 'original', max_width: null, max_height: null, progressive: false });
    expect(parseOutputOptions({ quality: '80', format: 'webp', max_width: ' 640 ', max_height: 480, progressive: 'true' }, defaultOutputOptions(60)))
      .toEqual({ quality: 80, format: 'webp', max_width: 640, max_height: 480, progressive: true });
    expect(parseOutputOptions({ progressive: 'false' }, DEFAULT_OUTPUT_OPTIONS)).toMatchObject({ progressive: false });
    expect(parseOutputOptions({ progressive: true }, DEFAULT_OUTPUT_OPTIONS)).toMatchObject({ progressive: true });
    expect(parseOutputOptions({ quality: '' }, defaultOutputOptions(60))).toMatchObject({ quality: 60 });
    expect(parseOutputOptions({ max_width: MAX_DIMENSION, max_height: 1, quality: 1, format: 'original' }, DEFAULT_OUTPUT_OPTIONS))
      .toEqual({ max_width: MAX_DIMENSION, max_height: 1, quality: 1, format: 'original', progressive: false });
  });

  it.each([
    ['quality', 0], ['quality', 101], ['quality', 50.5], ['quality', 'high'], ['quality', -5], ['quality', true],
    ['max_width', 0], ['max_width', 16385], ['max_width', '12px'], ['max_width', 1.5], ['max_width', -1],
    ['max_height', 0], ['max_height', 20000], ['max_height', 'tall'],
    ['format', 'gif'], ['format', 'JPEG'], ['format', 'jpg'], ['format', 3],
    ['progressive', 'yes'], ['progressive', '1'], ['progressive', 'TRUE'], ['progressive', 1],
  ] as const)('rejects %s = %j, naming the field', (field, value) => {
    let thrown: unknown;
    try {
      parseOutputOptions({ [field]: value }, DEFAULT_OUTPUT_OPTIONS);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(OutputOptionError);
    expect((thrown as OutputOptionError).field).toBe(field);
    expect((thrown as OutputOptionError).message).toBe(`${field}: ${(thrown as OutputOptionError).reason}`);
  });

  it('reads stored options with the defaults under them, and keys the content cache as before', () => {
    expect(storedOutputOptions(null, defaultOutputOptions(70))).toEqual({ quality: 70, format: 'original', max_width: null, max_height: null, progressive: false });
    // rows stored before progressive existed read it as false
    expect(storedOutputOptions({ quality: 80, format: 'webp', max_width: 640, max_height: null }, defaultOutputOptions(70)))
      .toEqual({ quality: 80, format: 'webp', max_width: 640, max_height: null, progressive: false });
    // stored cache entries carry this key: its shape must not change under them, and a new option
    // extends it only away from its default
    expect(settingsKey({ quality: 80, format: 'webp', max_width: 640, max_height: null, progressive: false })).toBe('["webp",80,640,null]');
    expect(settingsKey({ quality: 80, format: 'jpeg', max_width: 640, max_height: null, progressive: true })).toBe('["jpeg",80,640,null,{"progressive":true}]');
  });

  it('fitInside keeps the aspect ratio, honours each bound and never enlarges', () => {
    expect(fitInside({ width: 640, height: 427 }, 320, null)).toEqual({ width: 320, height: 214 });
    expect(fitInside({ width: 640, height: 427 }, null, 100)).toEqual({ width: 150, height: 100 });
    expect(fitInside({ width: 640, height: 427 }, 300, 300)).toEqual({ width: 300, height: 200 });
    expect(fitInside({ width: 640, height: 427 }, 5000, 5000)).toEqual({ width: 640, height: 427 });
    expect(fitInside({ width: 10000, height: 10 }, 100, null)).toEqual({ width: 100, height: 1 });
  });
});

describe('format', () => {
  it.each([
    ['rocket-small.jpg', 'png'], ['rocket-small.jpg', 'webp'], ['rocket-small.jpg', 'avif'],
    ['chelsea.png', 'jpeg'], ['chelsea.png', 'webp'], ['chelsea.png', 'avif'],
    ['Kite.webp', 'jpeg'], ['Kite.webp', 'png'], ['astronaut-alpha.png', 'webp'], ['astronaut-alpha.png', 'avif'],
  ] as const)('%s to %s: that format, same size, decodable, even when bigger', async (name, format) => {
    const src = fixture(name);
    const { r } = await run(src, { format });
    expect(r.format).toBe(format);
    expect(r.outcome).toBe('compressed');
    const source = await decode(src);
    expect([r.width, r.height]).toEqual([source.width, source.height]);
  });

  it('keeps alpha in WebP and AVIF outputs', async () => {
    for (const format of ['webp', 'avif'] as const) {
      const { img } = await run(fixture('astronaut-alpha.png'), { format });
      expect(pixel(img, 0, 0)[3]).toBe(0);
      expect(pixel(img, 256, 256)[3]).toBe(255);
    }
  });

  it('flattens alpha on white for JPEG', async () => {
    // left third fully transparent black, middle third red at 50 % alpha, right third opaque blue
    const w = 96;
    const h = 32;
    const raw = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) {
      const x = i % w;
      raw.set(x < 32 ? [0, 0, 0, 0] : x < 64 ? [255, 0, 0, 128] : [0, 0, 255, 255], i * 4);
    }
    const png = new Uint8Array(await sharp(raw, { raw: { width: w, height: h, channels: 4 } }).png().toBuffer());
    const { r, img } = await run(png, { format: 'jpeg', quality: 95 });
    expect(r.format).toBe('jpeg');
    const near = (got: number[], want: number[]) => got.slice(0, 3).forEach((v, c) => expect(Math.abs(v - want[c]!)).toBeLessThanOrEqual(12));
    near(pixel(img, 10, 16), [255, 255, 255]); // transparent -> white, not black
    near(pixel(img, 48, 16), [255, 127, 127]); // half red over white
    near(pixel(img, 85, 16), [0, 0, 255]);
  });
});

describe('quality', () => {
  it('steers JPEG, WebP and AVIF; PNG keeps its palette rule', async () => {
    const src = fixture('rocket-small.jpg');
    const low = await run(src, { quality: 20 });
    const high = await run(src, { quality: 90 });
    // coarser quantisation at the lower quality
    const sumOf = (b: Uint8Array) => jpegQuantTables(b)!.get(0)!.reduce((a, v) => a + v, 0);
    expect(sumOf(low.r.bytes)).toBeGreaterThan(sumOf(high.r.bytes));
    expect(low.r.bytesOut).toBeLessThan(high.r.bytesOut);
    for (const format of ['webp', 'avif'] as const) {
      const a = await run(src, { format, quality: 20 });
      const b = await run(src, { format, quality: 90 });
      expect(a.r.bytesOut).toBeLessThan(b.r.bytesOut);
    }
    const p1 = await run(src, { format: 'png', quality: 10 });
    const p2 = await run(src, { format: 'png', quality: 95 });
    expect(Buffer.from(p1.r.bytes).equals(Buffer.from(p2.r.bytes))).toBe(true);
  });
});

describe('progressive', () => {
  const isProgressive = (b: Uint8Array) => {
    const frame = jpegFrame(b);
    expect(frame).not.toBeNull();
    return frame!.progressive;
  };

  it('writes progressive JPEG when asked, sequential by default, the same picture either way', async () => {
    const src = fixture('rocket-small.jpg'); // 640x427
    for (const size of [{}, { max_width: 320 }]) {
      const seq = await run(src, { ...size, quality: 40 });
      const prog = await run(src, { ...size, quality: 40, progressive: true });
      expect(seq.r.outcome).toBe('compressed');
      expect(prog.r.outcome).toBe('compressed');
      expect(isProgressive(seq.r.bytes)).toBe(false);
      expect(isProgressive(prog.r.bytes)).toBe(true);
      // the same picture (progressive leaves table 3 unclamped: slightly coarser at this quality)
      expect(meanDiff(seq.img, prog.img)).toBeLessThan(3);
    }
    // for other formats it changes nothing
    const a = await run(src, { format: 'webp', progressive: true });
    const b = await run(src, { format: 'webp' });
    expect(Buffer.from(a.r.bytes).equals(Buffer.from(b.r.bytes))).toBe(true);
  });

  it('may still pass an acceptable source through unchanged', async () => {
    const src = fixture('rocket-small.jpg');
    const low = new Uint8Array(await sharp(src).jpeg({ quality: 30 }).toBuffer()); // sequential, quality 30
    expect(isProgressive(low)).toBe(false);
    const again = await run(low, { quality: 90, progressive: true });
    expect(again.r.outcome).toBe('passed_through');
    expect(isProgressive(again.r.bytes)).toBe(false);
  });
});

describe('maxWidth / maxHeight', () => {
  it('fits inside the box, keeps the aspect ratio, never enlarges', async () => {
    const src = fixture('rocket-small.jpg'); // 640x427
    expect((await run(src, { max_width: 320 })).r).toMatchObject({ width: 320, height: 214, outcome: 'compressed' });
    expect((await run(src, { max_height: 100 })).r).toMatchObject({ width: 150, height: 100 });
    expect((await run(src, { max_width: 300, max_height: 300, format: 'webp' })).r).toMatchObject({ width: 300, height: 200, format: 'webp' });
    const same = (await run(src, { max_width: 5000, max_height: 5000 })).r;
    expect([same.width, same.height]).toEqual([640, 427]);
    for (const { r } of [await run(src, { max_width: 320 }), await run(src, { max_height: 100 })]) {
      expect(Math.abs(r.width / r.height - 640 / 427)).toBeLessThan(0.02);
    }
  });

  it('the downscaled picture is the source, smaller (compared with sharp\'s Lanczos3)', async () => {
    const src = fixture('Kite.webp'); // 1500x937
    const { img } = await run(src, { max_width: 300, format: 'png' });
    const reference = await rawOf(await sharp(src).resize(300, img.height, { fit: 'fill', kernel: 'lanczos3' }).png().toBuffer());
    expect(meanDiff(img, reference)).toBeLessThan(4);
  });

  it('antialiases: one-pixel stripes shrink to even grey, not to stripes', async () => {
    const w = 512;
    const raw = Buffer.alloc(w * 64 * 3);
    for (let i = 0; i < w * 64; i++) raw.fill((i % w) % 2 ? 255 : 0, i * 3, i * 3 + 3);
    const png = new Uint8Array(await sharp(raw, { raw: { width: w, height: 64, channels: 3 } }).png().toBuffer());
    const { r, img } = await run(png, { max_width: 61 }); // not an integer ratio
    expect([r.width, r.height]).toEqual([61, 8]);
    for (let x = 1; x < 60; x++) {
      const [v] = pixel(img, x, 4);
      // filtering in gamma space (as sharp does): 50 % coverage is ~128; aliasing would give ~0 or ~255
      expect(v!).toBeGreaterThan(100);
      expect(v!).toBeLessThan(156);
    }
  });

  it('applies the EXIF orientation before resizing', async () => {
    const src = fixture('coffee-orient6.jpg'); // stored 600x400, displayed 400x600
    const { r, img } = await run(src, { max_width: 200 });
    expect([r.width, r.height]).toEqual([200, 300]); // resizing first would give 133x200
    expect(jpegHasExif(r.bytes)).toBe(false);
    const upright = await rawOf(await sharp(src).rotate().resize(200, 300, { fit: 'fill' }).png().toBuffer());
    const right = meanDiff(img, upright);
    const flipped = await rawOf(await sharp(src).rotate().rotate(180).resize(200, 300, { fit: 'fill' }).png().toBuffer());
    expect(right).toBeLessThan(8);
    expect(meanDiff(img, flipped)).toBeGreaterThan(right * 3);
  });
});

describe('never larger than the input: only when format and size are unchanged', () => {
  it('keeps the (stripped) source when the re-encode is not smaller, reports original_kept', async () => {
    const src = fixture('Kite.webp'); // q90 source
    const { r } = await run(src, { quality: 100 });
    expect(r.outcome).toBe('original_kept');
    expect(r.bytesOut).toBeLessThanOrEqual(src.length);
    expect(r).toMatchObject({ format: 'webp', width: 1500, height: 937, bytesIn: src.length });
  });

  it('honours a format change or a resize even when the result is bigger', async () => {
    const src = fixture('Kite.webp');
    const png = (await run(src, { format: 'png' })).r;
    expect(png.bytesOut).toBeGreaterThan(src.length);
    expect(png).toMatchObject({ format: 'png', outcome: 'compressed' });
    const resized = (await run(src, { quality: 100, max_width: 1499 })).r;
    expect(resized).toMatchObject({ format: 'webp', width: 1499, outcome: 'compressed' });
    expect(resized.bytesOut).toBeGreaterThan(src.length);
  });
});

describe('colour: the ICC profile is kept, EXIF/XMP/GPS/comments are not', () => {
  const SECRET = 'secret-gps-48.85N';
  /** A Display-P3-tagged photo-like image (sharp's built-in P3 profile) carrying EXIF. */
  async function p3(format: 'jpeg' | 'png' | 'webp', quality = 92): Promise<Uint8Array> {
    const w = 160;
    const h = 120;
    const raw = Buffer.alloc(w * h * 3);
    for (let i = 0; i < w * h; i++) raw.set([(i % w) * 1.5, (i / w) * 2, 200 - (i % 37)], i * 3);
    const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } }).withIccProfile('p3').withExif({ IFD0: { ImageDescription: SECRET } });
    const out = format === 'jpeg' ? img.jpeg({ quality }) : format === 'png' ? img.png() : img.webp({ quality });
    return new Uint8Array(await out.toBuffer());
  }

  async function check(out: Uint8Array, icc: Buffer) {
    const m = await sharp(out).metadata();
    expect(m.icc && Buffer.compare(m.icc, icc)).toBe(0); // the very same profile
    expect(m.exif).toBeUndefined();
    expect(Buffer.from(out).includes(SECRET)).toBe(false);
  }

  it.each(['jpeg', 'png', 'webp'] as const)('P3 %s in, same format out: profile kept, no EXIF', async (format) => {
    const src = await p3(format);
    const icc = (await sharp(src).metadata()).icc!;
    expect(icc.subarray(48, 52).toString('latin1')).toBe('saws'); // sharp's P3 profile
    expect(Buffer.from(src).includes(SECRET)).toBe(true);
    const { r } = await run(src, {});
    await check(r.bytes, icc);
  });

  it.each([['png', 'jpeg'], ['jpeg', 'webp'], ['webp', 'png'], ['jpeg', 'png']] as const)('P3 %s in, %s out: profile carried over', async (from, format) => {
    const src = await p3(from);
    const icc = (await sharp(src).metadata()).icc!;
    const { r } = await run(src, { format, max_width: 100 });
    expect(r.format).toBe(format);
    await check(r.bytes, icc);
  });

  it('keeps the profile when the source itself is the output (original_kept)', async () => {
    const src = await p3('webp', 30);
    const icc = (await sharp(src).metadata()).icc!;
    const { r } = await run(src, { quality: 100 });
    expect(r.outcome).toBe('original_kept');
    await check(r.bytes, icc);
  });
});

describe('JPEG pass-through', () => {
  const SECRET = 'gps-51.5N-0.12W';
  async function jpegAt(quality: number, orientation?: number): Promise<Uint8Array> {
    const w = 240;
    const h = 160;
    const raw = Buffer.alloc(w * h * 3);
    for (let i = 0; i < w * h; i++) raw.set([(i % w), (i / w) * 1.5, 90 + ((i * 7) % 50)], i * 3);
    let img = sharp(raw, { raw: { width: w, height: h, channels: 3 } }).withExif({ IFD0: { ImageDescription: SECRET } });
    if (orientation) img = img.withMetadata({ orientation });
    return new Uint8Array(await img.jpeg({ quality }).toBuffer());
  }
  /** The entropy-coded data: everything from the first SOS on. */
  const scan = (b: Uint8Array) => Buffer.from(b.subarray(Buffer.from(b).indexOf(Buffer.from([0xff, 0xda]))));

  it('keeps a JPEG already at or below the quality asked as it is, metadata stripped', async () => {
    const src = await jpegAt(30);
    expect(jpegHasExif(src)).toBe(true);
    const { r, img } = await run(src, {}); // default quality 50
    expect(r).toMatchObject({ outcome: 'passed_through', format: 'jpeg', width: 240, height: 160, bytesIn: src.length });
    expect(jpegHasExif(r.bytes)).toBe(false);
    expect(Buffer.from(r.bytes).includes(SECRET)).toBe(false);
    expect(r.bytesOut).toBeLessThan(src.length);
    expect(scan(r.bytes).equals(scan(src))).toBe(true); // the coded image untouched
    expect(meanDiff(img, await decode(src))).toBe(0);
    // at exactly the quality asked, too
    expect((await run(await jpegAt(50), { quality: 50 })).r.outcome).toBe('passed_through');
  });

  it('still rotates an EXIF-rotated low-quality JPEG', async () => {
    const src = await jpegAt(30, 6);
    const { r } = await run(src, {});
    expect(r.outcome).toBe('compressed');
    expect([r.width, r.height]).toEqual([160, 240]);
    expect(jpegHasExif(r.bytes)).toBe(false);
  });

  it('re-encodes when the quality asked is lower, or the format or size changes', async () => {
    const src = await jpegAt(30);
    expect((await run(src, { quality: 20 })).r.outcome).toBe('compressed');
    expect((await run(src, { max_width: 120 })).r).toMatchObject({ outcome: 'compressed', width: 120, height: 80 });
    expect((await run(src, { format: 'webp' })).r).toMatchObject({ outcome: 'compressed', format: 'webp' });
    expect((await run(await jpegAt(90), {})).r.outcome).toBe('compressed');
  });

  it('never passes through a truncated file', async () => {
    const src = await jpegAt(30);
    await expect(pool.compress(src.subarray(0, src.length - 200))).rejects.toThrow(/JPEG decode failed: truncated/);
  });
});
