// The scorer's two builds (wasm/ssimulacra2/build.sh): ssimulacra2-fma.wasm, whose blurs use relaxed
// SIMD's relaxed_madd, must score exactly as ssimulacra2.wasm wherever the loader picks it, and the
// loader (ssimulacra2Build) must pick it only where the engine compiles it and fuses the madd.
// Node 20 compiles relaxed SIMD only with --experimental-wasm-relaxed-simd (Node 22 and newer do by
// default), so this file turns that on for its own process, as the bench does.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import type { Raster } from '../src/codecs/types.js';
import { jpeg } from '../workers/codecs/jpeg.js';
import { webp } from '../workers/codecs/webp.js';
import { type Ssimulacra2Exports, ssimulacra2Instance } from '../workers/metrics/ssimulacra2-wasm.js';
import { independentDecode } from './helpers/decode.js';
import { photoLike } from './helpers/ssimulacra2.js';

const wasmFile = (name: string) => new URL(`../wasm/ssimulacra2/${name}`, import.meta.url);
const fmaBytes = readFileSync(wasmFile('ssimulacra2-fma.wasm'));
const refusedByDefault = !WebAssembly.validate(fmaBytes);
if (refusedByDefault) setFlagsFromString('--experimental-wasm-relaxed-simd');

/** [one-call score, prepared score] of `dist` against `ref` on `background` (-1: alpha ignored). */
function scores(m: Ssimulacra2Exports, ref: Raster, dist: Raster, background: number): [number, number] {
  const n = ref.data.length;
  const a = m.s2_malloc(n);
  const b = m.s2_malloc(n);
  new Uint8Array(m.memory.buffer, a, n).set(ref.data);
  new Uint8Array(m.memory.buffer, b, n).set(dist.data);
  const one = m.s2_score(a, b, ref.width, ref.height, background);
  const prepared = m.s2_prepare(a, ref.width, ref.height, background);
  const again = m.s2_score_prepared(prepared, b);
  m.s2_prepared_free(prepared);
  m.s2_free(a);
  m.s2_free(b);
  return [one, again];
}

describe('the scorer\'s relaxed-madd build', () => {
  const exact = ssimulacra2Instance('exact');
  const fma = ssimulacra2Instance('fma');
  const fused = fma.s2_fused_madd!() === 1;

  it('gives ssimulacra2.wasm\'s scores bit for bit where the engine fuses relaxed_madd', async (ctx) => {
    if (!fused) {
      console.log('skipped: this engine computes relaxed_madd unfused (no FMA), so the loader never uses the relaxed-madd build here');
      ctx.skip();
    }
    const img = photoLike(203, 151, 11); // odd sizes: the edge lanes of every scale
    const withAlpha = { ...img, data: img.data.map((v, i) => (i % 4 === 3 ? (i >> 2) % 200 : v)) };
    let compared = 0;
    for (const [codec, quality] of [[jpeg, 15], [jpeg, 50], [jpeg, 92], [webp, 40]] as const) {
      for (const [source, background] of [[img, -1], [withAlpha, 0.1 * 255], [withAlpha, 0.9 * 255]] as const) {
        const out = await independentDecode(await codec.encode(source, { quality }));
        expect([out.width, out.height]).toEqual([source.width, source.height]);
        const want = scores(exact, source, out, background);
        expect(want[0]).toBeLessThan(100);
        expect(scores(fma, source, out, background)).toEqual(want);
        compared++;
      }
    }
    expect(compared).toBe(12);
  });

  it('is picked by the loader exactly where it compiles and fuses', () => {
    // a fresh process of the built scorer, with the engine's defaults and with relaxed SIMD turned on
    const loader = fileURLToPath(new URL('../dist/workers/metrics/ssimulacra2-wasm.js', import.meta.url));
    const probe = `const m = await import(${JSON.stringify(loader)}); const bytes = (await import('node:fs')).readFileSync(${JSON.stringify(fileURLToPath(wasmFile('ssimulacra2-fma.wasm')))}); console.log(JSON.stringify([WebAssembly.validate(bytes), m.ssimulacra2Build()]));`;
    const run = (flags: string[]) => JSON.parse(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', probe], { encoding: 'utf8' })) as [boolean, string];
    const [compiles, chosen] = run([]);
    expect(compiles).toBe(!refusedByDefault);
    expect(chosen).toBe(compiles && fused ? 'fma' : 'exact');
    if (refusedByDefault) expect(run(['--experimental-wasm-relaxed-simd'])).toEqual([true, fused ? 'fma' : 'exact']);
  });

});
