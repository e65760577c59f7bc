// node dist/bench/diag/ssimulacra2-check.js <corpus dir> [--mp12 N] [--photos N]
//
// Validates the scorer the quality=auto search uses (wasm/ssimulacra2, the WebAssembly port of
// workers/metrics/ssimulacra2.ts rounding where it rounds: scores within 1e-6 of it; its one-call
// path, which scores exactly as the prepared one the search uses) against the
// reference, calc-s2-rust at full size (bench/quality-metric.ts). Sources: every corpus image
// (upright, decoded by sharp) and N (default 2) generated 4000x3000 photos (bench/mp12.ts's). Each
// is encoded by the pipeline's own codecs at JPEG q30/50/70/90 and WebP q75, decoded by them
// again, and scored by calc-s2-rust and by ours (full size: ours never samples or downscales).
// Prints each pair, then the mean and worst |ours - calc-s2-rust| and the time per score of each.
// Sources with alpha are flattened on white for JPEG; WebP keeps alpha (both metrics then blend on
// two greys and keep the worse).
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { Raster } from '../../src/codecs/types.js';
import { jpeg } from '../../workers/codecs/jpeg.js';
import { webp } from '../../workers/codecs/webp.js';
import { ssimulacra2Wasm } from '../../workers/metrics/ssimulacra2-wasm.js';
import { loadCorpus } from '../corpus.js';
import { generatedPhoto } from '../generated-photo.js';
import { measureQuality } from '../quality-metric.js';
import { now } from '../stats.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { mp12: { type: 'string', default: '2' }, photos: { type: 'string' } },
});
const dir = positionals[0];
if (!dir) throw new Error('usage: ssimulacra2-check <corpus dir> [--mp12 N] [--photos N]');
sharp.concurrency(1);

interface Source {
  name: string;
  img: Raster;
  alpha: boolean;
}

async function upright(bytes: Uint8Array, name: string): Promise<Source> {
  const meta = await sharp(bytes).metadata();
  const { data, info } = await sharp(bytes).rotate().ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { name, img: { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height }, alpha: meta.hasAlpha === true };
}

function onWhite(img: Raster): Raster {
  const out = new Uint8ClampedArray(img.data.length);
  for (let i = 0; i < out.length; i += 4) {
    const a = img.data[i + 3]! / 255;
    for (let c = 0; c < 3; c++) out[i + c] = Math.round(img.data[i + c]! * a + 255 * (1 - a));
    out[i + 3] = 255;
  }
  return { data: out, width: img.width, height: img.height };
}

const sources: Source[] = [];
for (const c of loadCorpus(dir).slice(0, values.photos ? Number(values.photos) : undefined)) sources.push(await upright(c.bytes, c.name));
for (let seed = 1; seed <= Number(values.mp12); seed++) {
  sources.push(await upright(new Uint8Array(await generatedPhoto(4000, 3000, seed, { quality: 90, shapes: true })), `generated-12mp-${seed}`));
}

const ENCODES = [
  ...[30, 50, 70, 90].map((q) => ({ codec: jpeg, label: `jpeg q${q}`, q, keepsAlpha: false })),
  { codec: webp, label: 'webp q75', q: 75, keepsAlpha: true },
];

const rows: { src: string; enc: string; mp: number; ref: number; ours: number; tRef: number; tOurs: number }[] = [];
const f2 = (n: number) => n.toFixed(2);
console.log('source                     encode      MP     calc-s2   ours  (diff)   ms: calc-s2 / ours');
for (const s of sources) {
  for (const e of ENCODES) {
    const alpha = s.alpha && e.keepsAlpha;
    const ref = s.alpha && !e.keepsAlpha ? onWhite(s.img) : s.img;
    const dist = await e.codec.decode(await e.codec.encode(ref, { quality: e.q }));
    let t = now();
    const reference = (await measureQuality({ ref: new Uint8Array(ref.data.buffer, ref.data.byteOffset, ref.data.length), dist: new Uint8Array(dist.data.buffer, dist.data.byteOffset, dist.data.length), width: ref.width, height: ref.height, alpha })).ssimulacra2;
    const tRef = now() - t;
    t = now();
    const ours = await ssimulacra2Wasm(ref, dist, { alpha });
    const tOurs = now() - t;
    const mp = (ref.width * ref.height) / 1e6;
    rows.push({ src: s.name, enc: e.label, mp, ref: reference, ours, tRef, tOurs });
    console.log(`${s.name.padEnd(26)} ${e.label.padEnd(10)} ${mp.toFixed(1).padStart(5)}  ${f2(reference).padStart(7)}  ${f2(ours).padStart(6)} (${f2(ours - reference).padStart(5)})   ${Math.round(tRef)} / ${Math.round(tOurs)}`);
  }
}

function summary(label: string, set: typeof rows): void {
  if (set.length === 0) return;
  const mean = (f: (r: (typeof rows)[number]) => number) => set.reduce((a, r) => a + f(r), 0) / set.length;
  const worst = (f: (r: (typeof rows)[number]) => number) => Math.max(...set.map(f));
  console.log(
    `${label}: ${set.length} pairs; |ours - calc-s2| mean ${f2(mean((r) => Math.abs(r.ours - r.ref)))} worst ${f2(worst((r) => Math.abs(r.ours - r.ref)))}; ` +
      `ms per score: calc-s2 ${Math.round(mean((r) => r.tRef))}, ours ${Math.round(mean((r) => r.tOurs))}`,
  );
}
summary('corpus', rows.filter((r) => !r.src.startsWith('generated-')));
summary('12 MP', rows.filter((r) => r.src.startsWith('generated-')));
summary('all', rows);
