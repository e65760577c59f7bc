// node dist/bench/diag/libjpeg.js [rounds]: the libjpeg-turbo wasm decoder (workers/codecs/libjpeg.ts)
// against today's @jsquash/jpeg (MozJPEG) decode, in this thread, on a generated 24 MP photo
// (6000x4000 q90 4:2:0, sequential and progressive): full size, then 1/2, 1/4 and 1/8 shrink on
// load, and today's way to 1/2 (full decode + box shrink) for comparison. Times include copying
// the pixels out of WASM memory. Interleaved per round, median after a warm-up round. Then each
// decoder's WASM memory after one decode in a fresh instance (what a kept instance holds).
import { decodeJpeg, instances as libjpegInstances, type JpegScale } from '../../workers/codecs/libjpeg.js';
import { boxShrink } from '../../workers/codecs/resize.js';
import type { Raster } from '../../src/codecs/types.js';
import { call, checkRaster, collectGarbage, emscripten, Lazy } from '../../workers/codecs/wasm.js';
import { generatedPhoto } from '../generated-photo.js';
import sharp from 'sharp';
import { median, now } from '../stats.js';

const rounds = Number(process.argv[2] ?? 5);
const sequential = new Uint8Array(await generatedPhoto(6000, 4000, 1, { quality: 90, shapes: true }));
const progressive = new Uint8Array(await sharp(sequential).jpeg({ quality: 90, progressive: true }).toBuffer());
// the decoder the service used before libjpeg-turbo (workers/codecs/jpeg.ts now decodes with libjpeg)
const mozjpegDec = new Lazy('jpeg-dec', () => emscripten<{ decode(data: Uint8Array, preserveOrientation: boolean): Raster | null }>('@jsquash/jpeg/codec/dec/mozjpeg_dec.js', '@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'));
const mozjpeg = { decode: async (b: Uint8Array) => checkRaster(await call(mozjpegDec, 'JPEG decode', (m) => m.decode(b, false)), 'JPEG decode') };
const [libjpeg] = libjpegInstances;

for (const [label, bytes] of [['sequential', sequential], ['progressive', progressive]] as const) {
  const runs: [string, () => Promise<unknown>][] = [
    ['@jsquash/jpeg (MozJPEG) full size', () => mozjpeg.decode(bytes)],
    ['libjpeg-turbo wasm full size', () => decodeJpeg(bytes)],
    ['@jsquash full + box shrink 1/2', async () => boxShrink(await mozjpeg.decode(bytes), 2)],
    ...([2, 4, 8] as JpegScale[]).map((scale): [string, () => Promise<unknown>] => [`libjpeg-turbo wasm 1/${scale}`, () => decodeJpeg(bytes, { scale })]),
  ];
  const times = new Map<string, number[]>(runs.map(([name]) => [name, []]));
  for (let round = 0; round <= rounds; round++) {
    for (const [name, run] of runs) {
      collectGarbage();
      const t = now();
      await run();
      if (round > 0) times.get(name)!.push(now() - t); // round 0 warms up
    }
  }
  const base = median(times.get(runs[0]![0])!);
  console.log(`24 MP ${label} (${(bytes.length / 1e6).toFixed(1)} MB), median of ${rounds}:`);
  for (const [name, xs] of times) console.log(`  ${name.padEnd(36)} ${median(xs).toFixed(0).padStart(6)} ms  ${(median(xs) / base).toFixed(2)}x`);

  console.log('  WASM memory after one decode in a fresh instance:');
  mozjpegDec.reset();
  await mozjpeg.decode(bytes);
  console.log(`    ${'@jsquash/jpeg full size'.padEnd(34)} ${(mozjpegDec.memoryBytes / 2 ** 20).toFixed(0).padStart(6)} MiB`);
  for (const scale of [1, 2, 4, 8] as JpegScale[]) {
    libjpeg!.reset();
    await decodeJpeg(bytes, { scale });
    console.log(`    ${`libjpeg-turbo wasm 1/${scale}`.padEnd(34)} ${(libjpeg!.memoryBytes / 2 ** 20).toFixed(0).padStart(6)} MiB`);
  }
}
