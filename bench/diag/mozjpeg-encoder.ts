// node dist/bench/diag/mozjpeg-encoder.js [corpus-dir] [rounds]: our MozJPEG encoder build
// (wasm/mozjpeg, workers/codecs/mozjpeg.ts, fed by rows) against the @jsquash/jpeg encoder the
// service used before, with the same settings (workers/codecs/jpeg.ts's MOZJPEG_OPTIONS).
//  1. Equivalence: every corpus photo (decoded as the pipeline does) at qualities 30, 50, 75, 85
//     and 90, sequential and progressive: output bytes ours/theirs, and both outputs decoded by
//     sharp (libjpeg-turbo) and compared pixel by pixel (mean and max absolute difference).
//  2. Speed, in this thread: CPU time per encode (process.cpuUsage, robust to a shared machine),
//     interleaved per round, median after a warm-up round; corpus photos and a 12 MP photo.
//  3. Memory: each encoder's WASM memory after one encode in a fresh instance, at 0.5, 2 and
//     12 MP; the slope is the per-pixel cost and the rest the fixed part (src/codecs/table.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Raster } from '../../src/codecs/types.js';
import { CODECS, MOZJPEG_OPTIONS } from '../../workers/codecs.js';
import { encodeMozjpeg, mozjpeg } from '../../workers/codecs/mozjpeg.js';
import { call, collectGarbage, emscripten, Lazy, releaseGrown } from '../../workers/codecs/wasm.js';
import { generatedPhoto } from '../generated-photo.js';
import { median } from '../stats.js';

const corpus = process.argv[2] ?? '/work/shared/corpus';
const rounds = Number(process.argv[3] ?? 5);
/** a third argument names the one section to run: equivalence, speed or memory */
const only = process.argv[4];
const runs = (section: string) => !only || only === section;
const MiB = 2 ** 20;

type Options = typeof MOZJPEG_OPTIONS;
const jsquashEnc = new Lazy('jsquash-jpeg-enc', () =>
  emscripten<{ encode(d: Uint8ClampedArray, w: number, h: number, o: Options): Uint8Array }>('@jsquash/jpeg/codec/enc/mozjpeg_enc.js', '@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm'),
);
/** The call workers/codecs/jpeg.ts made before (same options object). */
function jsquash(img: Raster, quality: number, progressive: boolean): Promise<Uint8Array> {
  const opts = { ...MOZJPEG_OPTIONS, quality, chroma_quality: quality, ...(progressive ? { progressive: true, baseline: false } : {}) };
  return call(jsquashEnc, 'JPEG encode', (m) => m.encode(img.data, img.width, img.height, opts).slice());
}
const ours = (img: Raster, quality: number, progressive: boolean) => encodeMozjpeg(img, { quality, progressive });

async function rgb(bytes: Uint8Array): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

// ---- 1. equivalence ----------------------------------------------------------------------------
const files = readdirSync(corpus).filter((f) => /\.jpe?g$/i.test(f)).sort();
const photos: { name: string; img: Raster }[] = [];
for (const f of files) photos.push({ name: f, img: await CODECS.jpeg.decode(new Uint8Array(readFileSync(join(corpus, f)))) });
if (runs('equivalence')) {
console.log(`equivalence: ${photos.length} corpus photos (${photos[0]!.img.width}x${photos[0]!.img.height} ...), outputs decoded by sharp`);
console.log('  quality progressive  bytes ours/@jsquash (min..max, total)  identical  pixel mean|diff| (max of means)  max|diff|');
for (const progressive of [false, true]) {
  for (const quality of [30, 50, 75, 85, 90]) {
    const ratios: number[] = [];
    const means: number[] = [];
    let identical = 0;
    let maxDiff = 0;
    let totalOurs = 0;
    let totalTheirs = 0;
    for (const { img } of photos) {
      const a = await ours(img, quality, progressive);
      const b = await jsquash(img, quality, progressive);
      totalOurs += a.length;
      totalTheirs += b.length;
      ratios.push(a.length / b.length);
      if (a.length === b.length && a.every((v, i) => v === b[i])) identical++;
      const [pa, pb] = [await rgb(a), await rgb(b)];
      if (pa.width !== img.width || pa.height !== img.height || pb.width !== img.width || pb.height !== img.height) throw new Error('size mismatch');
      let sum = 0;
      for (let i = 0; i < pa.data.length; i++) {
        const d = Math.abs(pa.data[i]! - pb.data[i]!);
        sum += d;
        if (d > maxDiff) maxDiff = d;
      }
      means.push(sum / pa.data.length);
    }
    console.log(
      `  ${String(quality).padStart(7)} ${String(progressive).padEnd(11)}  ${Math.min(...ratios).toFixed(4)}..${Math.max(...ratios).toFixed(4)}, ${(totalOurs / totalTheirs).toFixed(4)}` +
        `            ${identical}/${photos.length}        ${median(means).toFixed(3)} (${Math.max(...means).toFixed(3)})                     ${maxDiff}`,
    );
  }
}

}

// ---- 2. speed --------------------------------------------------------------------------------
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const photo12 = await CODECS.jpeg.decode(new Uint8Array(await generatedPhoto(4000, 3000, 1, { quality: 90, shapes: true })));
const sets: [string, Raster[]][] = [
  [`corpus (${photos.length} photos, ${((photos[0]!.img.width * photos[0]!.img.height) / 1e6).toFixed(1)} MP)`, photos.map((p) => p.img)],
  ['12 MP generated photo', [photo12]],
];
if (runs('speed')) console.log(`\nspeed: CPU ms per encode at quality 50, one thread, interleaved, median of ${rounds} rounds after a warm-up`);
for (const [label, imgs] of runs('speed') ? sets : []) {
  for (const progressive of [false, true]) {
    const runs: [string, (img: Raster) => Promise<Uint8Array>][] = [
      ['@jsquash/jpeg', (img) => jsquash(img, 50, progressive)],
      ['ours (wasm/mozjpeg)', (img) => ours(img, 50, progressive)],
    ];
    const times = new Map<string, number[]>(runs.map(([n]) => [n, []]));
    for (let round = 0; round <= rounds; round++) {
      for (const [name, run] of round % 2 ? runs : [...runs].reverse()) {
        collectGarbage();
        const t = cpuMs();
        for (const img of imgs) await run(img);
        if (round > 0) times.get(name)!.push((cpuMs() - t) / imgs.length);
      }
    }
    const base = median(times.get('@jsquash/jpeg')!);
    console.log(`  ${label}, ${progressive ? 'progressive' : 'sequential'}:`);
    for (const [name, xs] of times) console.log(`    ${name.padEnd(22)} ${median(xs).toFixed(1).padStart(7)} ms  ${(median(xs) / base).toFixed(3)}x  (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`);
  }
}

// ---- 3. memory -------------------------------------------------------------------------------
// MozJPEG keeps two whole-image coefficient buffers (quantised, and unquantised for trellis DC
// optimisation), so its cost follows the subsampling the quality picks: 4:2:0 below 80, 4:2:2
// to 89, 4:4:4 from 90.
if (runs('memory')) console.log('\nmemory: WASM memory after one encode in a fresh instance (slope from 0.5 to 12 MP = B/px, the rest fixed)');
const sizes = [[816, 612], [1632, 1224], [4000, 3000]] as const;
const scaled: Raster[] = [];
for (const [w, h] of runs('memory') ? sizes : []) {
  scaled.push(await CODECS.jpeg.decode(new Uint8Array(await sharp(photo12.data, { raw: { width: 4000, height: 3000, channels: 4 } }).resize(w, h).jpeg({ quality: 95 }).toBuffer())));
}
for (const [name, lazy, run] of [
  ['@jsquash q50', jsquashEnc, (img: Raster) => jsquash(img, 50, false)],
  ['@jsquash q90', jsquashEnc, (img: Raster) => jsquash(img, 90, false)],
  ['ours q50', mozjpeg, (img: Raster) => ours(img, 50, false)],
  ['ours q50 progressive', mozjpeg, (img: Raster) => ours(img, 50, true)],
  ['ours q85 (4:2:2)', mozjpeg, (img: Raster) => ours(img, 85, false)],
  ['ours q90 (4:4:4)', mozjpeg, (img: Raster) => ours(img, 90, false)],
  ['ours q79 progressive', mozjpeg, (img: Raster) => ours(img, 79, true)],
  ['ours q89 progressive', mozjpeg, (img: Raster) => ours(img, 89, true)],
  ['ours q90 progressive', mozjpeg, (img: Raster) => ours(img, 90, true)],
  ['ours q100', mozjpeg, (img: Raster) => ours(img, 100, false)],
  ['ours q100 progressive', mozjpeg, (img: Raster) => ours(img, 100, true)],
] as const) {
  if (!runs('memory')) break;
  const points: [number, number][] = [];
  for (const img of scaled) {
    (lazy as Lazy<unknown>).reset();
    releaseGrown(0);
    await run(img);
    points.push([img.width * img.height, (lazy as Lazy<unknown>).memoryBytes]);
  }
  const [a, , c] = points as [[number, number], [number, number], [number, number]];
  const perPixel = (c[1] - a[1]) / (c[0] - a[0]);
  const fixed = a[1] - perPixel * a[0];
  console.log(`  ${name.padEnd(22)} ${points.map(([px, b]) => `${(px / 1e6).toFixed(1)} MP: ${(b / MiB).toFixed(1)} MiB`).join(', ')}  -> ${perPixel.toFixed(2)} B/px + ${(fixed / MiB).toFixed(1)} MiB`);
}
