// node dist/bench/diag/wasm-ceiling.js [corpus dir]: how close any WASM build gets to sharp on the
// two paths whose targets are missed (12 MP JPEG re-encode, 24 MP -> 1600 px JPEG), one thread
// each, median of 5 after a warm-up. Besides ours (the @jsquash codecs, steps as
// workers/compress.ts runs them) it times wasm-vips: libvips 8.18 with MozJPEG, the libraries sharp
// itself uses, compiled to WebAssembly with SIMD. wasm-vips is not a dependency (it does not run on
// Bun, and docs/architecture.md names the @jsquash builds); install it for this run only:
//   npm i --no-save wasm-vips@0.0.19 && node dist/bench/diag/wasm-ceiling.js
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import sharp from 'sharp';
import { CODECS, MOZJPEG_OPTIONS, releaseGrown, resize, type MozJpegOptions, type Raster } from '../../workers/codecs.js';
import { emscripten } from '../../workers/codecs/wasm.js';
import { median, now } from '../stats.js';

interface VipsImage {
  writeToBuffer(suffix: string, options: object): Uint8Array;
  delete(): void;
}
interface Vips {
  concurrency(n: number): void;
  Cache: { max(n: number): void };
  Image: {
    newFromBuffer(b: Uint8Array, options: string, load: object): VipsImage;
    thumbnailBuffer(b: Uint8Array, width: number, options?: object): VipsImage;
  };
}

let vips: Vips | null = null;
try {
  const name = 'wasm-vips';
  const init = ((await import(name)) as { default: (o: object) => Promise<Vips> }).default;
  vips = await init({ dynamicLibraries: [] });
  vips.concurrency(1);
  vips.Cache.max(0);
} catch {
  console.log('wasm-vips is not installed: timing sharp and ours only (npm i --no-save wasm-vips@0.0.19)');
}
sharp.concurrency(1);

const corpus = resolve(process.argv[2] ?? '../shared/corpus');
const photo = readFileSync(resolve(corpus, 'BytheWater.jpg'));
const mp12 = new Uint8Array(await sharp(photo).resize(4000, 3000, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer());
const mp24 = new Uint8Array(await sharp(photo).resize(6000, 4000, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer());
const jpeg = CODECS.jpeg;
/** our encoder with progressive scans, as sharp's mozjpeg preset writes (MozJPEG adds optimize_scans) */
const progressiveEncoder = (await emscripten<{ encode(d: Uint8ClampedArray, w: number, h: number, o: MozJpegOptions): Uint8Array }>(
  '@jsquash/jpeg/codec/enc/mozjpeg_enc.js', '@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm')).module;
const jpegEnc = {
  encode: async (img: Raster, o: { quality: number }) =>
    progressiveEncoder.encode(img.data, img.width, img.height, { ...MOZJPEG_OPTIONS, quality: o.quality, chroma_quality: o.quality, progressive: true, baseline: false }),
};

/** sharp's mozjpeg preset, spelled out for libvips' jpegsave */
const MOZJPEG = { Q: 50, optimize_coding: true, trellis_quant: true, overshoot_deringing: true, quant_table: 3, keep: 'none' };

type Path = [name: string, run: () => Promise<Uint8Array>];
const paths: [string, Path[]][] = [
  ['12 MP (4000x3000 q90) -> JPEG q50', [
    ['sharp mozjpeg (progressive, optimize_scans)', async () => sharp(mp12).jpeg({ quality: 50, mozjpeg: true }).toBuffer()],
    ['ours (@jsquash MozJPEG, sequential), instances kept', async () => jpeg.encode(await jpeg.decode(mp12), { quality: 50 })],
    ['ours, grown instances dropped after each step (pool default)', async () => {
      const img = await jpeg.decode(mp12);
      releaseGrown();
      const out = await jpeg.encode(img, { quality: 50 });
      releaseGrown();
      return out;
    }],
    ['ours, progressive (MozJPEG\'s defaults: optimize_scans)', async () => jpegEnc.encode(await jpeg.decode(mp12), { quality: 50 })],
    ...(vips ? [
      ['wasm-vips, sharp\'s settings (progressive, optimize_scans)', async () => vipsSave(mp12, { ...MOZJPEG, interlace: true, optimize_scans: true })],
      ['wasm-vips, sequential (as ours)', async () => vipsSave(mp12, MOZJPEG)],
    ] satisfies Path[] : []),
  ]],
  ['24 MP (6000x4000 q90) -> 1600 px JPEG q50', [
    ['sharp (shrink-on-load, lanczos3, mozjpeg)', async () => sharp(mp24).resize({ width: 1600, kernel: 'lanczos3' }).jpeg({ quality: 50, mozjpeg: true }).toBuffer()],
    ['ours (decode, box + Lanczos3, encode), instances kept', async () => jpeg.encode(await resize(await jpeg.decode(mp24), 1600, 1067), { quality: 50 })],
    ...(vips ? [
      ['wasm-vips thumbnail (shrink-on-load, lanczos3), sequential', async () => {
        const im = vips!.Image.thumbnailBuffer(mp24, 1600);
        try { return im.writeToBuffer('.jpg', MOZJPEG); } finally { im.delete(); }
      }],
    ] satisfies Path[] : []),
  ]],
];

function vipsSave(bytes: Uint8Array, options: object): Uint8Array {
  const im = vips!.Image.newFromBuffer(bytes, '', { access: 'sequential' });
  try {
    return im.writeToBuffer('.jpg', options);
  } finally {
    im.delete();
  }
}

for (const [title, runs] of paths) {
  console.log(`\n${title}`);
  const rows: { name: string; ms: number; bytes: number }[] = [];
  for (const [name, run] of runs) {
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 6; i++) {
      const t = now();
      bytes = (await run()).length;
      if (i > 0) times.push(now() - t);
    }
    rows.push({ name, ms: median(times), bytes });
  }
  const [ref] = rows;
  for (const r of rows) {
    console.log(`  ${r.name.padEnd(62)} ${r.ms.toFixed(0).padStart(5)} ms  speed ${(ref!.ms / r.ms).toFixed(2)}x  bytes ${(r.bytes / ref!.bytes).toFixed(3)}x`);
  }
}
