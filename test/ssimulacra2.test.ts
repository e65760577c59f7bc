// workers/metrics/ssimulacra2.ts, the scorer quality=auto searches with, against calc-s2-rust (the
// project's reference SSIMULACRA2, bench/quality-metric.ts) on pairs made here and encoded by the
// pipeline's own codecs. Full-corpus and 12 MP figures: bench/diag/ssimulacra2-check.ts.
import { describe, expect, it } from 'vitest';
import { jpeg } from '../workers/codecs/jpeg.js';
import { webp } from '../workers/codecs/webp.js';
import { ssimulacra2 } from '../workers/metrics/ssimulacra2.js';
import { ssimulacra2Scorer, ssimulacra2Wasm } from '../workers/metrics/ssimulacra2-wasm.js';
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

  it('the WebAssembly port (wasm/ssimulacra2) gives the TypeScript scorer\'s scores exactly', async () => {
    const withAlpha = { ...img, data: img.data.map((v, i) => (i % 4 === 3 ? (i >> 2) % 200 : v)) };
    const scorer = await ssimulacra2Scorer(img);
    for (const [codec, quality] of [[jpeg, 20], [jpeg, 85], [webp, 50]] as const) {
      const out = await independentDecode(await codec.encode(img, { quality }));
      expect(scorer.score(out)).toBe(ssimulacra2(img, out));
      const outAlpha = await independentDecode(await webp.encode(withAlpha, { quality }));
      expect(await ssimulacra2Wasm(withAlpha, outAlpha, { alpha: true })).toBe(ssimulacra2(withAlpha, outAlpha, { alpha: true }));
    }
    scorer.close();
    // an odd size exercises the edge rows and columns of every scale
    const odd = photoLike(77, 53, 3);
    const oddOut = await independentDecode(await jpeg.encode(odd, { quality: 40 }));
    expect(await ssimulacra2Wasm(odd, oddOut)).toBe(ssimulacra2(odd, oddOut));
  });

  it('refuses images of different sizes or under 8x8 with a clear error', async () => {
    expect(() => ssimulacra2(img, photoLike(100, 150, 7))).toThrow(/sizes differ/);
    expect(() => ssimulacra2(photoLike(7, 20, 1), photoLike(7, 20, 1))).toThrow(/at least 8x8/);
    await expect(ssimulacra2Wasm(img, photoLike(100, 150, 7))).rejects.toThrow(/sizes differ/);
    await expect(ssimulacra2Wasm(photoLike(7, 20, 1), photoLike(7, 20, 1))).rejects.toThrow(/at least 8x8/);
  });
});
