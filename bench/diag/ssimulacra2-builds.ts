// node dist/bench/diag/ssimulacra2-builds.js <corpus dir> [--runs N]
//
// The scorer's two builds (wasm/ssimulacra2/build.sh) side by side: ssimulacra2.wasm (the blurs'
// fused steps in double halves) and ssimulacra2-fma.wasm (each one f32x4.relaxed_madd). Every
// corpus image (upright, flattened on white as bench/auto.ts does) against its JPEG q20, 40, 60,
// 70, 80, 90, 95 and WebP q75 decodes, one-call scores with both builds: how many are equal and
// the largest difference. Then CPU per score (process.cpuUsage, median of --runs, 5 by default)
// on the first 1 MP or larger image: the one-call score, the preparation and a prepared candidate,
// for each build. On Node 20 relaxed SIMD is turned on here (Node 22 and newer have it); the
// relaxed-madd build is only meaningful where its probe (s2_fused_madd) reads 1, which is printed.
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { Raster } from '../../src/codecs/types.js';
import { jpeg } from '../../workers/codecs/jpeg.js';
import { webp } from '../../workers/codecs/webp.js';
import { type Ssimulacra2Exports, ssimulacra2Instance } from '../../workers/metrics/ssimulacra2-wasm.js';
import { loadCorpus } from '../corpus.js';
import { enableRelaxedSimd } from '../relaxed-simd.js';
import { cpuMsOf, median } from '../stats.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { runs: { type: 'string', default: '5' } } });
if (!positionals[0]) throw new Error('usage: ssimulacra2-builds <corpus dir> [--runs N]');
enableRelaxedSimd();

const builds: [string, Ssimulacra2Exports][] = [['exact', ssimulacra2Instance('exact')], ['fma', ssimulacra2Instance('fma')]];
console.log(`relaxed_madd fused on this engine: ${builds[1]![1].s2_fused_madd!() === 1}`);

const put = (m: Ssimulacra2Exports, img: Raster) => {
  const p = m.s2_malloc(img.data.length);
  if (p === 0) throw new Error('out of memory');
  new Uint8Array(m.memory.buffer, p, img.data.length).set(img.data);
  return p;
};

async function upright(bytes: Uint8Array): Promise<Raster> {
  const { data, info } = await sharp(bytes).rotate().flatten({ background: '#ffffff' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

let pairs = 0;
let equal = 0;
let worst = 0;
let timed: Raster | undefined;
let timedName = '';
for (const c of loadCorpus(positionals[0])) {
  const img = await upright(c.bytes);
  const outputs: Raster[] = [];
  for (const q of [20, 40, 60, 70, 80, 90, 95]) outputs.push(await jpeg.decode(await jpeg.encode(img, { quality: q })));
  outputs.push(await webp.decode(await webp.encode(img, { quality: 75 })));
  for (const out of outputs) {
    const scores = builds.map(([, m]) => {
      const a = put(m, img);
      const b = put(m, out);
      const s = m.s2_score(a, b, img.width, img.height, -1);
      m.s2_free(a);
      m.s2_free(b);
      return s;
    });
    pairs++;
    if (scores[0] === scores[1]) equal++;
    worst = Math.max(worst, Math.abs(scores[0]! - scores[1]!));
  }
  if (!timed && img.width * img.height >= 1e6) {
    timed = img;
    timedName = c.name;
  }
}
console.log(`${pairs} pairs: ${equal} scores equal, largest |exact - fma| ${worst}`);

if (timed) {
  const img = timed;
  const out = await jpeg.decode(await jpeg.encode(img, { quality: 50 }));
  console.log(`${timedName} (${(img.width * img.height / 1e6).toFixed(1)} MP), CPU ms per score, median of ${values.runs}, the builds taking turns:`);
  const times = builds.map(() => ({ one: [] as number[], prepare: [] as number[], prepared: [] as number[] }));
  for (let run = 0; run < Number(values.runs); run++) {
    for (const [i, [, m]] of builds.entries()) {
      const a = put(m, img);
      const b = put(m, out);
      times[i]!.one.push(cpuMsOf(() => m.s2_score(a, b, img.width, img.height, -1)));
      let p = 0;
      times[i]!.prepare.push(cpuMsOf(() => (p = m.s2_prepare(a, img.width, img.height, -1))));
      times[i]!.prepared.push(cpuMsOf(() => m.s2_score_prepared(p, b)));
      m.s2_prepared_free(p);
      m.s2_free(a);
      m.s2_free(b);
    }
  }
  for (const [i, [name]] of builds.entries()) {
    const t = times[i]!;
    console.log(`  ${name.padEnd(6)} one call ${median(t.one).toFixed(0)}, preparation ${median(t.prepare).toFixed(0)}, prepared candidate ${median(t.prepared).toFixed(0)}`);
  }
}
