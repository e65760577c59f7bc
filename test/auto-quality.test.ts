// workers/auto-quality.ts with the real MozJPEG and libwebp codecs: a smooth and a detailed image
// need different qualities, every answer reaches its target as judged at full size by the
// independent calc-s2-rust, the answer is the lowest quality that does (by the search's own
// metric), and no search spends more than 6 encodes, whatever the prediction.
import { describe, expect, it } from 'vitest';
import type { Codec, Raster } from '../src/codecs/types.js';
import { jpeg } from '../workers/codecs/jpeg.js';
import { webp } from '../workers/codecs/webp.js';
import { autoQualityMemoryBytes, MARGIN, MAX_ENCODES, predictQuality, searchQuality, TOLERANCE } from '../workers/auto-quality.js';
import { autoQualityMemory, planImage } from '../src/codecs/plan.js';
import { DEFAULT_OUTPUT_OPTIONS, type OutputOptions } from '../src/codecs/output-options.js';
import type { Rendition } from '../src/codecs/renditions.js';
import { CODECS } from '../src/codecs/table.js';
import { instanceStats } from '../workers/codecs/wasm.js';
import { ssimulacra2PreparedBytes } from '../workers/metrics/ssimulacra2-wasm.js';
import { ssimulacra2 } from '../workers/metrics/ssimulacra2.js';
import { fixture, independentDecode } from './helpers/decode.js';
import { image, reference } from './helpers/ssimulacra2.js';

const smooth = image(192, 160, 'smooth');
const detailed = image(192, 160, 'detailed');

async function run(source: Raster, codec: Codec, target: number, start: number) {
  let encodes = 0;
  const result = await searchQuality({
    source,
    target,
    start,
    encode: (quality) => {
      encodes++;
      return codec.encode(source, { quality });
    },
    decode: (bytes) => codec.decode(bytes),
  });
  expect(result.encodes).toBe(encodes);
  expect(encodes).toBeLessThanOrEqual(MAX_ENCODES);
  return result;
}

/** Checks the answer with the independent decoder and calc-s2-rust at full size. */
async function expectReached(source: Raster, bytes: Uint8Array, target: number) {
  const out = await independentDecode(bytes);
  expect([out.width, out.height]).toEqual([source.width, source.height]);
  expect(await reference(source, out)).toBeGreaterThanOrEqual(target);
}

describe('searchQuality', () => {
  it('gives a smooth and a detailed image different qualities, both reaching the target', async () => {
    const a = await run(smooth, jpeg, 70, predictQuality(70));
    const b = await run(detailed, jpeg, 70, predictQuality(70, a.quality)); // the previous answer as prediction
    expect(a.reached && b.reached).toBe(true);
    expect(b.quality).toBeGreaterThan(a.quality);
    await expectReached(smooth, a.bytes, 70);
    await expectReached(detailed, b.bytes, 70);
  });

  it.each([50, 70, 90])('respects target %i, within one quality of the lowest passing one or within the tolerance', async (target) => {
    const r = await run(detailed, jpeg, target, predictQuality(target));
    expect(r.reached).toBe(true);
    expect(r.score).toBeGreaterThanOrEqual(target + MARGIN);
    await expectReached(detailed, r.bytes, target);
    if (r.quality > 2 && r.encodes < MAX_ENCODES && r.score > target + MARGIN + TOLERANCE) {
      // the search stopped on a bracket of at most two qualities: two lower must miss
      const lower = await jpeg.decode(await jpeg.encode(detailed, { quality: r.quality - 2 }));
      expect(ssimulacra2(detailed, lower)).toBeLessThan(target + MARGIN);
    }
  });

  it('works for WebP too', async () => {
    const r = await run(detailed, webp, 70, predictQuality(70));
    expect(r.reached).toBe(true);
    await expectReached(detailed, r.bytes, 70);
  });

  it.each([1, 100, 40])('never spends more than 6 encodes, even from a bad prediction (start %i)', async (start) => {
    const r = await run(smooth, jpeg, 90, start);
    expect(r.reached).toBe(true);
    await expectReached(smooth, r.bytes, 90);
  });

  it('reports an unreachable target with the best attempt', async () => {
    // a constant metric below the target: nothing passes, the search must still stop at 6
    let encodes = 0;
    const r = await searchQuality({
      source: smooth,
      target: 95,
      start: 50,
      encode: (q) => {
        encodes++;
        return jpeg.encode(smooth, { quality: q });
      },
      decode: (b) => jpeg.decode(b),
      score: () => 10,
    });
    expect(r.reached).toBe(false);
    expect(encodes).toBeLessThanOrEqual(MAX_ENCODES);
    expect(r.quality).toBe(100);
  });

  describe('stopping rule (a synthetic metric: score = curve(quality))', () => {
    const tiny: Raster = { data: new Uint8ClampedArray(8 * 8 * 4), width: 8, height: 8 };
    /** runs the search on a made-up curve; returns the result and the qualities tried, in order */
    async function synthetic(curve: (q: number) => number, start: number, opts: { tolerance?: number } = {}) {
      const tried: number[] = [];
      let last = 0;
      const r = await searchQuality({
        source: tiny,
        target: 70,
        start,
        ...opts,
        encode: (q) => {
          tried.push(q);
          last = q;
          return Promise.resolve(new Uint8Array([q]));
        },
        decode: () => Promise.resolve(tiny),
        score: () => curve(last),
      });
      expect(r.encodes).toBe(tried.length);
      expect(r.encodes).toBeLessThanOrEqual(MAX_ENCODES);
      return { r, tried, curve };
    }
    const goal = 70 + MARGIN;

    it('stops at the first attempt that passes within the tolerance', async () => {
      const line = (q: number) => 0.6 * q + 30; // q69 scores 71.4: inside [71, 71 + TOLERANCE]
      expect(TOLERANCE).toBeGreaterThanOrEqual(1); // (the windows below assume it)
      const { r, tried } = await synthetic(line, 69);
      expect(tried).toEqual([69]);
      expect(r).toMatchObject({ quality: 69, reached: true });
      // a later attempt inside the window ends it too, although the bracket is still wide
      const second = await synthetic(line, 50);
      expect(second.tried.length).toBe(2);
      expect(second.r.score).toBeGreaterThanOrEqual(goal);
      expect(second.r.score).toBeLessThanOrEqual(goal + TOLERANCE);
    });

    it('with tolerance 0 goes on to the lowest passing quality', async () => {
      const { r, tried } = await synthetic((q) => 0.6 * q + 30, 69, { tolerance: 0 });
      // q69 scores 71.4, q68 70.8: 69 is the lowest passing, and the search must see 68 fail to know it
      expect(r.quality).toBe(69);
      expect(tried).toContain(68);
    });

    it('stops when one untried quality is left below the lowest passing one', async () => {
      // a jump over the whole window: 60 below q75, 80 from there on (nothing scores inside [71, 73])
      const jump = (q: number) => (q < 75 ? 60 : 80);
      const { r, tried } = await synthetic(jump, 70);
      const bracket = (qs: number[]) => Math.min(...qs.filter((q) => jump(q) >= goal)) - Math.max(...qs.filter((q) => jump(q) < goal));
      expect(r.reached).toBe(true);
      expect(bracket(tried)).toBeLessThanOrEqual(2);
      expect(bracket(tried.slice(0, -1))).toBeGreaterThan(2); // and not one attempt later
      expect(r.quality - 75).toBeLessThanOrEqual(1);
    });

    it('never returns a failing quality once one passed, and stops within 6 encodes, on bumpy curves and bad starts', async () => {
      // deterministic pseudo-random curves: rising on average, with bumps that break monotonicity
      let seed = 7;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      for (let i = 0; i < 300; i++) {
        const slope = 0.2 + 1.5 * random(), offset = 71 - slope * (1 + 99 * random()), bump = 3 * random(), phase = 10 * random();
        const curve = (q: number) => offset + slope * q + bump * Math.sin(q / 3 + phase);
        const start = 1 + Math.floor(100 * random());
        const { r, tried } = await synthetic(curve, start, random() < 0.5 ? {} : { tolerance: 0 });
        const passed = tried.filter((q) => curve(q) >= goal);
        expect(r.reached).toBe(passed.length > 0);
        if (passed.length > 0) {
          expect(r.score).toBeGreaterThanOrEqual(goal);
          expect(r.quality).toBe(Math.min(...passed)); // the lowest passing attempt
        }
        expect(new Set(tried).size).toBe(tried.length); // no quality encoded twice
      }
    });
  });

  it('frees the prepared source after each search, failed or not', async () => {
    // the scorer prepares the source (about 48 B/px) in the module's memory, which never shrinks:
    // a leak would grow it by that much per search
    const failing = () =>
      searchQuality({
        source: detailed,
        target: 70,
        start: 50,
        encode: async (q) => {
          if (q !== 50) throw new Error('encoder failed');
          return jpeg.encode(detailed, { quality: q });
        },
        decode: (b) => jpeg.decode(b),
      });
    await expect(failing()).rejects.toThrow(/encoder failed/);
    await run(detailed, jpeg, 70, 50);
    const before = instanceStats().live.ssimulacra2;
    expect(before).toBeGreaterThan(0);
    for (let i = 0; i < 4; i++) {
      await expect(failing()).rejects.toThrow(/encoder failed/);
      await run(detailed, jpeg, 70, 50);
    }
    expect(4 * ssimulacra2PreparedBytes(detailed.width, detailed.height)).toBeGreaterThan(2 ** 16); // more than a wasm page would grow
    expect(instanceStats().live.ssimulacra2).toBe(before);
  });

  it('counts the prepared source in its memory, and its alpha twice', () => {
    const prepared = ssimulacra2PreparedBytes(1500, 1000);
    expect(prepared).toBeGreaterThan(45 * 1500 * 1000);
    expect(autoQualityMemoryBytes(1500, 1000)).toBeGreaterThan(prepared + 5 * 1500 * 1000);
    expect(autoQualityMemoryBytes(1500, 1000, true) - autoQualityMemoryBytes(1500, 1000)).toBe(prepared);
    // past the limit the scorer streams: 15.5 B/px and its rows
    expect(autoQualityMemoryBytes(8000, 6000)).toBeLessThan(16 * 8000 * 6000);
  });

  it('refuses a target outside 30-95', async () => {
    const input = { source: smooth, start: 50, encode: () => Promise.resolve(new Uint8Array()), decode: () => Promise.resolve(smooth) };
    await expect(searchQuality({ ...input, target: 29 })).rejects.toThrow(/30-95/);
    await expect(searchQuality({ ...input, target: 96 })).rejects.toThrow(/30-95/);
  });

  it('states the memory the plan counts for it (src/codecs/plan.ts)', () => {
    for (const [w, h] of [[192, 160], [4000, 3000], [8000, 6000]] as const) {
      expect(autoQualityMemory({ width: w, height: h })).toBe(autoQualityMemoryBytes(w, h));
      expect(autoQualityMemory({ width: w, height: h }, true)).toBe(autoQualityMemoryBytes(w, h, true));
    }
    // and the plan adds it (with the target decoder's) to the encode step of JPEG and WebP outputs only
    const bytes = fixture('rocket-small.jpg');
    const plan = (options: Partial<OutputOptions>) => planImage(bytes, { ...DEFAULT_OUTPUT_OPTIONS, ...options }, 50_000_000);
    const fixed = plan({ format: 'jpeg' });
    const auto = plan({ format: 'jpeg', quality: 'auto' });
    expect(auto.auto).toEqual({ target: 70 });
    expect(auto.memoryBytes - fixed.memoryBytes).toBeGreaterThanOrEqual(autoQualityMemory(fixed.output));
    expect(plan({ format: 'avif', quality: 'auto' }).memoryBytes).toBe(plan({ format: 'avif' }).memoryBytes);
  });

  it('counts a search for each output it applies to, renditions included, with a JPEG shrunk on load', () => {
    // 600x400 stored, orientation 6: upright 400x600; the largest output (100x150) is a quarter: it decodes at 1/4
    const bytes = fixture('coffee-orient6.jpg');
    const base: OutputOptions = { ...DEFAULT_OUTPUT_OPTIONS, max_height: 150 };
    const thumb = (o: Partial<OutputOptions>): Rendition => ({ ...base, name: 'thumb', format: 'webp', max_height: 75, ...o });
    const plan = (options: Partial<OutputOptions>, rendition: Partial<OutputOptions>) => planImage(bytes, { ...base, ...options }, 50_000_000, [thumb(rendition)]);
    const fixed = plan({}, {});
    expect(fixed.decodeScale).toBe(4);
    expect([fixed.output, fixed.renditions[0]!.output]).toEqual([{ width: 100, height: 150 }, { width: 50, height: 75 }]);
    const searchOf = (format: 'jpeg' | 'webp', out: { width: number; height: number }) => CODECS[format].memory.decode(out.width * out.height) + autoQualityMemory(out, format === 'webp');
    // with every step kept at once, each search adds exactly its own memory, on its own output's size
    const renditionAuto = plan({}, { quality: 'auto', quality_target: 80 });
    expect([renditionAuto.auto, renditionAuto.renditions[0]!.auto]).toEqual([null, { target: 80 }]);
    expect(renditionAuto.memoryKeepingBytes - fixed.memoryKeepingBytes).toBe(searchOf('webp', fixed.renditions[0]!.output));
    expect(renditionAuto.memoryBytes).toBeGreaterThanOrEqual(fixed.memoryBytes);
    // the request-level quality=auto is inherited by a rendition that does not set its own quality
    const both = planImage(bytes, { ...base, quality: 'auto' }, 50_000_000, [thumb({ quality: 'auto' })]);
    expect([both.auto, both.renditions[0]!.auto]).toEqual([{ target: 70 }, { target: 70 }]);
    // (and the JPEG encode is counted at its worst quality, since the search may try any)
    const px = fixed.output.width * fixed.output.height;
    const worstEncode = CODECS.jpeg.memory.encode(px, { ...fixed.encode, quality: 100 }) - CODECS.jpeg.memory.encode(px, fixed.encode);
    expect(worstEncode).toBeGreaterThan(0);
    expect(both.memoryKeepingBytes - fixed.memoryKeepingBytes).toBe(searchOf('jpeg', fixed.output) + worstEncode + searchOf('webp', fixed.renditions[0]!.output));
    expect(both.memoryBytes - fixed.memoryBytes).toBeGreaterThanOrEqual(searchOf('jpeg', fixed.output));
    // an AVIF rendition stays at a fixed quality: no search, nothing added
    expect(plan({}, { quality: 'auto', format: 'avif' }).memoryKeepingBytes).toBe(plan({}, { format: 'avif' }).memoryKeepingBytes);
  });
});
