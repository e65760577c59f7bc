// node dist/bench/diag/decoder-choice.js [photo]: why omggif and utif2 decode GIF and TIFF, timed
// against the npm alternatives on the same files. GIF: omggif (ours, first frame only) against
// gifuct-js, both on the first frame (parseGIF + decompressFrame) and on every frame
// (decompressFrames, its documented use), on the photo as one GIF and on a 30-frame GIF of it.
// TIFF: utif2 (ours) against geotiff's readRasters of the first image and image-js's tiff (its
// first page), on LZW 8-bit and Deflate 16-bit. "Ours" is the service's whole decode
// (workers/codecs/gif.ts, tiff.ts) including the RGBA it hands out; gifuct-js hands out a
// frame-sized RGBA patch, geotiff and tiff the samples (16-bit for 16-bit files), so their figures
// include no more work than ours. One thread, interleaved, median of 7 after one warm-up; ms per
// megapixel of the image we use (the first frame). Peak memory: each decode once more in a fresh
// child process, after a warm-up decode and a collection, the peak resident set above the one
// before (bench/diag/peak-rss.ts).
// The alternatives are not dependencies: `npm i --no-save gifuct-js geotiff tiff` for a run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rowFor } from '../../src/codecs/table.js';
import { SOURCES } from '../../workers/codecs.js';
import { median, now } from '../stats.js';
import { peakOf } from './peak-rss.js';

type Decode = (bytes: Uint8Array) => Promise<unknown>;
interface GifuctFrame {
  image?: unknown;
}
interface Gifuct {
  parseGIF(b: ArrayBuffer): { frames: GifuctFrame[]; gct: unknown };
  decompressFrame(frame: GifuctFrame, gct: unknown, patch: boolean): unknown;
  decompressFrames(gif: unknown, patch: boolean): unknown[];
}
interface TiffJs {
  decode(b: Uint8Array, o: { pages: number[] }): unknown[];
}
interface GeoTiff {
  fromArrayBuffer(b: ArrayBuffer): Promise<{ getImage(i: number): Promise<{ readRasters(o: object): Promise<unknown> }> }>;
}

/** The package, or null (and a line saying so) when it is not installed. */
async function optional<T>(name: string): Promise<T | null> {
  try {
    return (await import(name)) as T;
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    console.log(`${name} is not installed (npm i --no-save ${name}): its rows are skipped`);
    return null;
  }
}

const arrayBuffer = (bytes: Uint8Array) => bytes.slice().buffer as ArrayBuffer;
const ours: Decode = (bytes) => SOURCES[rowFor(bytes)!.format].decode(bytes, {});

async function decoders(): Promise<Record<string, Decode | null>> {
  const gifuct = await optional<Gifuct>('gifuct-js');
  const geotiff = await optional<GeoTiff>('geotiff');
  const tiffJs = await optional<TiffJs>('tiff');
  return {
    ours,
    'gifuct-js first frame': gifuct
      ? async (bytes) => {
          const gif = gifuct.parseGIF(arrayBuffer(bytes));
          return gifuct.decompressFrame(gif.frames.find((f) => f.image)!, gif.gct, true);
        }
      : null,
    'gifuct-js all frames': gifuct ? async (bytes) => gifuct.decompressFrames(gifuct.parseGIF(arrayBuffer(bytes)), true) : null,
    geotiff: geotiff
      ? async (bytes) => (await (await geotiff.fromArrayBuffer(arrayBuffer(bytes))).getImage(0)).readRasters({ interleave: true })
      : null,
    tiff: tiffJs ? async (bytes) => tiffJs.decode(bytes, { pages: [0] })[0] : null,
  };
}

if (process.argv[2] === 'child') {
  // child: node --expose-gc decoder-choice.js child DECODER FILE
  const decode = (await decoders())[process.argv[3]!]!;
  const bytes = new Uint8Array(readFileSync(process.argv[4]!));
  await decode(bytes);
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  gc();
  console.log(JSON.stringify({ bytes: await peakOf(() => decode(bytes)) }));
  process.exit(0);
}

const sharp = (await import('sharp')).default;
sharp.concurrency(1);
const photo = readFileSync(resolve(process.argv[2] ?? '../shared/corpus/Path.jpg'));

/** `frames` frames, each the photo at half size shifted a pixel further, so no frame repeats the last. */
async function animation(frames: number): Promise<Buffer> {
  const small = sharp(photo).resize({ width: 780 }); // Path.jpg: 780x487, room for the shifts
  const [width, height] = [750, 480];
  const raw = await Promise.all(
    Array.from({ length: frames }, (_, k) => small.clone().extract({ left: k, top: k % 8, width, height }).removeAlpha().raw().toBuffer()),
  );
  return sharp(Buffer.concat(raw), { raw: { width, height: height * frames, channels: 3, pageHeight: height } }).gif().toBuffer();
}

const all = await decoders();
const cases: [string, Buffer, string[]][] = [
  ['GIF', await sharp(photo).gif().toBuffer(), ['ours', 'gifuct-js first frame', 'gifuct-js all frames']],
  ['GIF, 30 frames', await animation(30), ['ours', 'gifuct-js first frame', 'gifuct-js all frames']],
  ['TIFF LZW 8-bit', await sharp(photo).tiff({ compression: 'lzw' }).toBuffer(), ['ours', 'geotiff', 'tiff']],
  ['TIFF Deflate 16-bit', await sharp(photo).toColourspace('rgb16').tiff({ compression: 'deflate' }).toBuffer(), ['ours', 'geotiff', 'tiff']],
];
const dir = mkdtempSync(join(tmpdir(), 'decoder-choice-'));
const self = fileURLToPath(import.meta.url);
const MiB = 1024 * 1024;

console.log('| input | first frame MP | decoder | ms/MP | vs ours (time) | peak MiB |');
console.log('|---|---|---|---|---|---|');
try {
  for (const [name, file, names] of cases) {
    const bytes = new Uint8Array(file);
    const dims = rowFor(bytes)!.dimensions(bytes)!;
    const mp = (dims.width * dims.height) / 1e6;
    const present = names.filter((n) => all[n]);
    const times = new Map(present.map((n) => [n, [] as number[]]));
    for (let i = 0; i < 8; i++) {
      for (const n of present) {
        const t = now();
        await all[n]!(bytes);
        if (i > 0) times.get(n)!.push(now() - t);
      }
    }
    const path = join(dir, name.replace(/\W+/g, '-'));
    writeFileSync(path, file);
    const oursMs = median(times.get('ours')!);
    for (const n of present) {
      const ms = median(times.get(n)!);
      const r = spawnSync(process.execPath, ['--expose-gc', self, 'child', n, path], { encoding: 'utf8' });
      const peak = r.status === 0 ? (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { bytes: number }).bytes / MiB : NaN;
      console.log(`| ${name} | ${mp.toFixed(2)} | ${n} | ${(ms / mp).toFixed(0)} | ${(ms / oursMs).toFixed(2)}x | ${peak.toFixed(0)} |`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
