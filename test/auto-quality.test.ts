// workers/auto-quality.ts with the real MozJPEG and libwebp codecs: a smooth and a detailed image
// need different qualities, every answer reaches its target as judged at full size by the
// independent calc-s2-rust, the answer is the lowest quality that does (by the search's own
// metric), and no search spends more than 6 encodes, whatever the prediction.
import { describe, expect, it } from 'vitest';
import type { Codec, Raster } from '../src/codecs/types.js';
import { jpeg } from '../workers/codecs/jpeg.js';
import { webp } from '../workers/codecs/webp.js';
import { autoQualityMemoryBytes, MARGIN, MAX_ENCODES, predictQuality, searchQuality } from '../workers/auto-quality.js';
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

  it.each([50, 70, 90])('respects target %i, with the lowest passing quality', async (target) => {
    const r = await run(detailed, jpeg, target, predictQuality(target));
    expect(r.reached).toBe(true);
    expect(r.score).toBeGreaterThanOrEqual(target + MARGIN);
    await expectReached(detailed, r.bytes, target);
    if (r.quality > 1 && r.encodes < MAX_ENCODES) {
      // the search stopped on a one-step bracket: one quality lower must miss
      const lower = await jpeg.decode(await jpeg.encode(detailed, { quality: r.quality - 1 }));
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
    // past the limit the scorer streams: 10 B/px and its rows
    expect(autoQualityMemoryBytes(8000, 6000)).toBeLessThan(11 * 8000 * 6000);
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
