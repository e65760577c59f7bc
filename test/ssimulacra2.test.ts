// workers/metrics/ssimulacra2.ts, the scorer quality=auto searches with, against calc-s2-rust (the
// project's reference SSIMULACRA2, bench/quality-metric.ts) on pairs made here and encoded by the
// pipeline's own codecs. Full-corpus and 12 MP figures: bench/diag/ssimulacra2-check.ts.
import { describe, expect, it } from 'vitest';
import { jpeg } from '../workers/codecs/jpeg.js';
import { webp } from '../workers/codecs/webp.js';
import { ssimulacra2 } from '../workers/metrics/ssimulacra2.js';
import { ssimulacra2Instance, ssimulacra2Scorer, ssimulacra2ScorerMemoryBytes, ssimulacra2Wasm } from '../workers/metrics/ssimulacra2-wasm.js';
import { independentDecode } from './helpers/decode.js';
import { photoLike, reference } from './helpers/ssimulacra2.js';

describe('ssimulacra2', () => {
  const img = photoLike(200, 150, 7);

  it('scores an image against itself 100, and a flat change of colour lower', () => {
    expect(ssimulacra2(img, { ...img, data: img.data.slice() })).toBe(100);
    const shifted = { ...img, data: img.data.map((v, i) => (i % 4 === 3 ? v : v + 12)) };
    expect(ssimulacra2(img, shifted)).toBeLessThan(90);
  });

  it.each([
    ['JPEG q25', jpeg, 25],
    ['JPEG q60', jpeg, 60],
    ['JPEG q90', jpeg, 90],
    ['WebP q70', webp, 70],
  ] as const)('agrees with calc-s2-rust within 1 point on %s', async (_label, codec, quality) => {
    const encoded = await codec.encode(img, { quality });
    const out = await independentDecode(encoded);
    expect([out.width, out.height]).toEqual([img.width, img.height]);
    const ours = ssimulacra2(img, out);
    const theirs = await reference(img, out);
    expect(Math.abs(ours - theirs)).toBeLessThan(1);
    expect(ours).toBeLessThan(100);
  });

  it('judges alpha on two backgrounds like the reference', async () => {
    const withAlpha = { ...img, data: img.data.map((v, i) => (i % 4 === 3 ? (i >> 2) % 200 : v)) };
    const out = await independentDecode(await webp.encode(withAlpha, { quality: 60 }));
    expect(Math.abs(ssimulacra2(withAlpha, out, { alpha: true }) - (await reference(withAlpha, out, true)))).toBeLessThan(1);
  });

  it('the WebAssembly port (wasm/ssimulacra2) gives the TypeScript scorer\'s scores (to 0.0005: the error maps run in float SIMD), prepared or not', async () => {
    const withAlpha = { ...img, data: img.data.map((v, i) => (i % 4 === 3 ? (i >> 2) % 200 : v)) };
    // a prepared source (the search's way) and the one-call streaming path, each with and without alpha
    const scorer = await ssimulacra2Scorer(img);
    const alphaScorer = await ssimulacra2Scorer(withAlpha, { alpha: true });
    const streaming = await ssimulacra2Scorer(img, { reuse: false });
    for (const [codec, quality] of [[jpeg, 20], [jpeg, 85], [webp, 50]] as const) {
      const out = await independentDecode(await codec.encode(img, { quality }));
      expect([out.width, out.height]).toEqual([img.width, img.height]);
      const ts = ssimulacra2(img, out);
      const prepared = scorer.score(out);
      expect(prepared).toBeCloseTo(ts, 3);
      expect(streaming.score(out)).toBe(prepared);
      const outAlpha = await independentDecode(await webp.encode(withAlpha, { quality }));
      const tsAlpha = ssimulacra2(withAlpha, outAlpha, { alpha: true });
      expect(alphaScorer.score(outAlpha)).toBeCloseTo(tsAlpha, 3);
      expect(await ssimulacra2Wasm(withAlpha, outAlpha, { alpha: true })).toBe(alphaScorer.score(outAlpha));
    }
    scorer.close();
    alphaScorer.close();
    streaming.close();
    expect(() => scorer.score(img)).toThrow(/closed/);
    // odd sizes (not a multiple of the 4 SIMD lanes) exercise the edge rows and columns of every scale
    for (const [w, h] of [[77, 53], [130, 9], [9, 41]] as const) {
      const odd = photoLike(w, h, 3);
      const oddOut = await independentDecode(await jpeg.encode(odd, { quality: 40 }));
      expect([oddOut.width, oddOut.height]).toEqual([w, h]);
      const ts = ssimulacra2(odd, oddOut);
      const one = await ssimulacra2Wasm(odd, oddOut);
      expect(one).toBeCloseTo(ts, 3);
      const prepared = await ssimulacra2Scorer(odd);
      expect(prepared.score(oddOut)).toBe(one); // the first score prepares the source in the same pass
      expect(prepared.score(oddOut)).toBe(one); // later ones score against what it kept
      prepared.close();
    }
  });

  it('grows its module memory no further than the plan counts (ssimulacra2ScorerMemoryBytes), streaming or preparing', () => {
    const [w, h] = [1003, 701]; // odd sizes: every scale's edge rows and columns
    const src = photoLike(w, h, 5);
    const dist = { ...src, data: src.data.map((v, i) => (i % 4 === 3 ? v : v ^ (i % 7))) };
    for (const reuse of [false, true]) {
      const m = ssimulacra2Instance('exact'); // (both builds allocate alike)
      const start = m.memory.buffer.byteLength;
      const n = w * h * 4;
      const a = m.s2_malloc(n);
      const b = m.s2_malloc(n + 8);
      new Uint8Array(m.memory.buffer, a, n).set(src.data);
      new Uint8Array(m.memory.buffer, b, n).set(dist.data);
      let score: number;
      if (reuse) {
        const prepared = m.s2_prepare_scoring(a, b, w, h, -1, b + n);
        expect(prepared).not.toBe(0);
        score = new DataView(m.memory.buffer).getFloat64(b + n, true);
        expect(m.s2_score_prepared(prepared, b)).toBe(score);
      } else {
        score = m.s2_score(a, b, w, h, -1);
      }
      expect(score).toBeGreaterThan(0);
      expect(score).toBeLessThan(100);
      const grown = m.memory.buffer.byteLength - start;
      const planned = ssimulacra2ScorerMemoryBytes(w, h, { reuse });
      expect(grown).toBeLessThanOrEqual(planned);
      expect(grown).toBeGreaterThan(0.8 * planned); // the plan is not a loose bound either
    }
  });

  it('refuses images of different sizes or under 8x8 with a clear error', async () => {
    expect(() => ssimulacra2(img, photoLike(100, 150, 7))).toThrow(/sizes differ/);
    expect(() => ssimulacra2(photoLike(7, 20, 1), photoLike(7, 20, 1))).toThrow(/at least 8x8/);
    await expect(ssimulacra2Wasm(img, photoLike(100, 150, 7))).rejects.toThrow(/sizes differ/);
    await expect(ssimulacra2Wasm(photoLike(7, 20, 1), photoLike(7, 20, 1))).rejects.toThrow(/at least 8x8/);
  });
});
