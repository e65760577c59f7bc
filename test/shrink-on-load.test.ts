// Shrink-on-load: the plan picks the DCT scale a JPEG decodes at (the largest no larger than the
// whole reduction, sharp's default rule) and counts that decode's memory; the
// pool's threads decode at it. Outputs are checked with the independent decoder (dimensions,
// orientation) and against the full-size path (a pool with shrinkOnLoad off) by mean colour.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { DEFAULT_OUTPUT_OPTIONS, type OutputOptions } from '../src/codecs/output-options.js';
import { planImage, shrinkOnLoadScale } from '../src/codecs/plan.js';
import { CODECS } from '../src/codecs/table.js';
import { CompressPool } from '../src/pipeline/pool.js';
import { fixture, independentDecode as decode, type Pixels } from './helpers/decode.js';

const MAX_PIXELS = 100_000_000;
const opts = (o: Partial<OutputOptions>): OutputOptions => ({ ...DEFAULT_OUTPUT_OPTIONS, ...o });

/**
 * A small JPEG whose frame header declares this size: the plan reads the header alone, and making
 * real 48 MP files here would take seconds each on a loaded machine.
 */
async function flatJpeg(width: number, height: number, progressive = false): Promise<Uint8Array> {
  const b = new Uint8Array(await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 90, g: 140, b: 200 } } }).jpeg({ progressive }).toBuffer());
  for (let i = 2; i < b.length - 9; i++) {
    if (b[i] === 0xff && (b[i + 1] === 0xc0 || b[i + 1] === 0xc2)) {
      b.set([height >> 8, height & 255, width >> 8, width & 255], i + 5);
      return b;
    }
  }
  throw new Error('no frame header');
}

/** Smooth gradients with edges: a picture whose mean colour and layout a wrong decode would change. */
async function photo(width: number, height: number): Promise<Uint8Array> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const disc = Math.hypot(x - width * 0.3, y - height * 0.4) < height * 0.2;
      raw[i++] = disc ? 230 : (255 * x) / width;
      raw[i++] = disc ? 30 : (255 * y) / height;
      raw[i++] = disc ? 40 : 128 + 100 * Math.sin(x / 37);
    }
  }
  return new Uint8Array(await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer());
}

function meanColour(p: Pixels): number[] {
  const sum = [0, 0, 0];
  for (let i = 0; i < p.data.length; i += 4) for (let c = 0; c < 3; c++) sum[c]! += p.data[i + c]!;
  return sum.map((s) => s / (p.data.length / 4));
}

/** Mean absolute RGB difference, every pixel. */
function meanDiff(a: Pixels, b: Pixels): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) for (let c = 0; c < 3; c++) sum += Math.abs(a.data[i + c]! - b.data[i + c]!);
  return sum / ((a.data.length / 4) * 3);
}

describe('the plan', () => {
  it('picks the largest DCT scale no larger than the whole reduction', async () => {
    const cases: [number, number, Partial<OutputOptions>, number][] = [
      [6000, 4000, { max_width: 1600 }, 2], // 3.75x
      [8000, 6000, { max_width: 1600 }, 4], // 5x
      [8000, 6000, { max_width: 2000 }, 4], // 4x exactly: Lanczos3 has nothing left to do
      [8000, 6000, { max_width: 1000 }, 8], // 8x
      [8000, 6000, { max_width: 660 }, 8], // 12.1x
      [8000, 6000, { max_height: 100 }, 8], // 60x: never more than 1/8
      [3000, 2000, { max_width: 1501 }, 1], // 1.999x
      [3000, 2000, { max_width: 1500 }, 2], // 2x
      [3001, 2001, { max_width: 1500 }, 2], // 2.0007x: the scaled decode rounds up to 1501x1001
      [3000, 2000, {}, 1], // not resized
    ];
    for (const [w, h, o, scale] of cases) {
      const plan = planImage(await flatJpeg(w, h), opts(o), MAX_PIXELS);
      expect(plan.decodeScale, `${w}x${h} ${JSON.stringify(o)}`).toBe(scale);
      expect(plan.decoded).toEqual({ width: Math.ceil(w / scale), height: Math.ceil(h / scale) });
      // never enlarged after the scaled decode
      expect(plan.decoded.width).toBeGreaterThanOrEqual(plan.output.width);
      expect(plan.decoded.height).toBeGreaterThanOrEqual(plan.output.height);
      expect(shrinkOnLoadScale({ width: w, height: h }, plan.output)).toBe(scale);
    }
  });

  it('decodes at full size when switched off, and for formats without scaled decoding', async () => {
    const jpeg = await flatJpeg(6000, 4000);
    expect(planImage(jpeg, opts({ max_width: 600 }), MAX_PIXELS, [], { shrinkOnLoad: false })).toMatchObject({ decodeScale: 1, decoded: { width: 6000, height: 4000 } });
    const png = new Uint8Array(await sharp({ create: { width: 6000, height: 4000, channels: 3, background: 'white' } }).png({ compressionLevel: 1 }).toBuffer());
    expect(planImage(png, opts({ max_width: 600 }), MAX_PIXELS)).toMatchObject({ decodeScale: 1, decoded: { width: 6000, height: 4000 } });
  });

  it('scales the stored (unrotated) size under an EXIF rotation', () => {
    // 600x400 stored, orientation 6: upright 400x600
    const plan = planImage(fixture('coffee-orient6.jpg'), opts({ max_height: 75 }), MAX_PIXELS);
    expect(plan.upright).toEqual({ width: 400, height: 600 });
    expect(plan.output).toEqual({ width: 50, height: 75 });
    expect(plan.decodeScale).toBe(8);
    expect(plan.decoded).toEqual({ width: 75, height: 50 });
  });

  it('reserves for the scaled decode; a progressive file still holds every coefficient', async () => {
    const seq = await flatJpeg(8000, 6000);
    const prog = await flatJpeg(8000, 6000, true);
    const o = opts({ max_width: 1600 });
    const scaled = planImage(seq, o, MAX_PIXELS).memoryBytes;
    const full = planImage(seq, o, MAX_PIXELS, [], { shrinkOnLoad: false }).memoryBytes;
    // 5x decodes at 1/4: a sixteenth of the full decode; the resizer holds no copy of its input,
    // so the job's peak is the encode of the 1600x1200 output (bench large section)
    const decodeOnly = (scale: 1 | 4) => CODECS.jpeg.scaledDecode!.memory(seq, scale)!;
    expect(decodeOnly(4)).toBeLessThan(decodeOnly(1) / 12);
    expect(scaled).toBeLessThan(full / 8);
    // 4:2:0: 128 B per 8x8 block, 1.5 blocks per 64 px: 3 B per source pixel at any scale
    const progDecode = CODECS.jpeg.scaledDecode!.memory(prog, 8)!;
    expect(progDecode - CODECS.jpeg.scaledDecode!.memory(seq, 8)! - (prog.length - seq.length)).toBe(3 * 8000 * 6000);
    expect(planImage(prog, o, MAX_PIXELS).memoryBytes).toBeLessThanOrEqual(planImage(prog, o, MAX_PIXELS, [], { shrinkOnLoad: false }).memoryBytes);
  });
});

describe('the pool', () => {
  let shrinking: CompressPool;
  let full: CompressPool;
  beforeAll(async () => {
    shrinking = new CompressPool({ threads: 1, maxPixels: MAX_PIXELS });
    full = new CompressPool({ threads: 1, maxPixels: MAX_PIXELS, shrinkOnLoad: false });
    await Promise.all([shrinking.ready(), full.ready()]);
  });
  afterAll(async () => {
    await Promise.all([shrinking?.close(), full?.close()]);
  });

  it.each([
    [{ max_width: 700 }, 2, [700, 467]],
    [{ max_width: 360 }, 4, [360, 240]],
    [{ max_width: 200, format: 'webp' }, 8, [200, 133]],
  ] as const)('%j decodes at 1/%i and looks like the full-size path', async (o, scale, size) => {
    const source = await photo(2400, 1600);
    expect(planImage(source, opts(o), MAX_PIXELS).decodeScale).toBe(scale);
    const a = await shrinking.compress(source, { options: opts(o) });
    const b = await full.compress(source, { options: opts(o) });
    const [da, db] = [await decode(a.bytes), await decode(b.bytes)];
    expect([da.width, da.height]).toEqual(size);
    expect([a.width, a.height]).toEqual(size);
    const [ma, mb] = [meanColour(da), meanColour(db)];
    for (let c = 0; c < 3; c++) expect(Math.abs(ma[c]! - mb[c]!)).toBeLessThan(1.5);
    expect(meanDiff(da, db)).toBeLessThan(4);
  });

  it('applies the EXIF orientation after a scaled decode', async () => {
    const bytes = fixture('coffee-orient6.jpg');
    const o = opts({ max_height: 75 });
    expect(planImage(bytes, o, MAX_PIXELS).decodeScale).toBe(8);
    const a = await shrinking.compress(bytes, { options: o });
    const b = await full.compress(bytes, { options: o });
    const [da, db] = [await decode(a.bytes), await decode(b.bytes)];
    expect([da.width, da.height]).toEqual([50, 75]);
    expect(meanDiff(da, db)).toBeLessThan(5);
    // upright: much nearer sharp's rotation of the same file than to the opposite rotation
    const turned = async (angle: number) => {
      const ref = await sharp(bytes).rotate().rotate(angle).resize(50, 75, { fit: 'fill' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      return meanDiff(da, { data: new Uint8ClampedArray(ref.data), width: ref.info.width, height: ref.info.height });
    };
    const [right, wrong] = [await turned(0), await turned(180)];
    expect(right).toBeLessThan(12);
    expect(right).toBeLessThan(wrong / 2);
  });

  it('keeps the ICC profile through a scaled decode', async () => {
    const source = new Uint8Array(await sharp(await photo(1600, 1200)).withIccProfile('p3').jpeg({ quality: 90 }).toBuffer());
    const r = await shrinking.compress(source, { options: opts({ max_width: 200 }) });
    expect(planImage(source, opts({ max_width: 200 }), MAX_PIXELS).decodeScale).toBe(8);
    const meta = await sharp(r.bytes).metadata();
    expect(meta.icc?.length).toBeGreaterThan(0);
    expect((await decode(r.bytes)).width).toBe(200);
  });
});
