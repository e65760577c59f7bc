// node dist/bench/diag/input-decoder-memory.js: the memory each input-only decoder (and the CMYK
// JPEG path) really takes, per pixel. Each decode runs in a fresh child process, after the decoder
// has been loaded and used once on a small file of the same kind (so code and a first instance are
// not counted) and a collection: the cost is the peak resident set during the decode (VmHWM, reset
// through /proc/self/clear_refs) minus the resident set before, which counts JS heap, ArrayBuffers
// and WASM memory alike. Two image sizes; the slope between them is the per-pixel cost (the RGBA
// handed out included) and the rest the fixed part. The table's memory columns come from here.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { peakOf } from './peak-rss.js';

const MiB = 1024 * 1024;

if (process.argv[2] === 'child') {
  // child: node --expose-gc input-decoder-memory.js child WARM_FILE FILE
  const { SOURCES } = await import('../../workers/codecs.js');
  const { rowFor } = await import('../../src/codecs/table.js');
  const decode = async (file: string) => {
    const bytes = new Uint8Array(readFileSync(file));
    const img = await SOURCES[rowFor(bytes)!.format].decode(bytes, {});
    return img.width * img.height;
  };
  await decode(process.argv[3]!);
  const bytes = readFileSync(process.argv[4]!); // read before the baseline: the source is not the decoder's cost
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  gc();
  let pixels = 0;
  const peak = await peakOf(async () => {
    const img = await SOURCES[rowFor(new Uint8Array(bytes))!.format].decode(new Uint8Array(bytes), {});
    pixels = img.width * img.height;
  });
  console.log(JSON.stringify({ pixels, bytes: peak }));
  process.exit(0);
}

const sharp = (await import('sharp')).default;
const dir = mkdtempSync(join(tmpdir(), 'input-decoder-memory-'));
const self = fileURLToPath(import.meta.url);

/** A photo-like image (gradients and noise), as raw RGB. */
function photo(width: number, height: number): Buffer {
  const raw = Buffer.alloc(width * height * 3);
  let s = 7;
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const n = ((s >>> 24) - 128) / 8;
      raw[i++] = (x * 255) / width + n;
      raw[i++] = (y * 255) / height + n;
      raw[i++] = 128 + 100 * Math.sin((x + y) / 50) + n;
    }
  }
  return raw;
}

type Maker = (png: Buffer, file: string) => Promise<boolean>;
const viaSharp = (f: (s: ReturnType<typeof sharp>) => ReturnType<typeof sharp>): Maker => async (png, file) => {
  writeFileSync(file, await f(sharp(png)).toBuffer());
  return true;
};
const tool = (run: (png: string, file: string) => void): Maker => async (png, file) => {
  try {
    writeFileSync(`${file}.png`, png);
    run(`${file}.png`, file);
    return true;
  } catch {
    return false;
  }
};
const kinds: [string, Maker][] = [
  ['GIF (omggif)', viaSharp((s) => s.gif())],
  ['TIFF LZW 8-bit RGB (utif2)', viaSharp((s) => s.tiff({ compression: 'lzw' }))],
  ['TIFF Deflate 16-bit RGB (utif2)', viaSharp((s) => s.toColourspace('rgb16').tiff({ compression: 'deflate' }))],
  ['TIFF CMYK + profile (utif2 + LittleCMS)', viaSharp((s) => s.toColourspace('cmyk').withIccProfile('cmyk').tiff({ compression: 'lzw' }))],
  ['BMP 24-bit (ours)', tool((png, file) => execFileSync('convert', [png, `bmp3:${file}`], { stdio: 'ignore' }))],
  ['HEIC (libheif-js)', tool((png, file) => execFileSync('heif-enc', ['-q', '50', png, '-o', file], { stdio: 'ignore' }))],
  ['CMYK JPEG, no profile (libjpeg)', viaSharp((s) => s.toColourspace('cmyk').jpeg({ quality: 90 }))],
  ['CMYK JPEG + profile (libjpeg + LittleCMS)', viaSharp((s) => s.toColourspace('cmyk').withIccProfile('cmyk').jpeg({ quality: 90 }))],
];
const sizes = [[256, 192], [1000, 750], [3000, 2250]] as const;

console.log('| decoder | B/px (RGBA out included) | fixed MiB | peak MiB at 0.75 / 6.75 MP |');
console.log('|---|---|---|---|');
try {
  const pngs = await Promise.all(sizes.map(([w, h]) => sharp(photo(w, h), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer()));
  for (const [name, make] of kinds) {
    const files = sizes.map((_, k) => join(dir, `${name.replace(/\W+/g, '-')}-${k}`));
    let made = true;
    for (let k = 0; k < sizes.length; k++) made &&= await make(pngs[k]!, files[k]!);
    if (!made) {
      console.log(`| ${name} | (not made: tool missing) | | |`);
      continue;
    }
    const points = files.slice(1).map((file) => {
      const r = spawnSync(process.execPath, ['--expose-gc', self, 'child', files[0]!, file], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { pixels: number; bytes: number };
    });
    const [a, b] = points as [(typeof points)[0], (typeof points)[0]];
    const perPixel = (b.bytes - a.bytes) / (b.pixels - a.pixels);
    const fixed = a.bytes - perPixel * a.pixels;
    console.log(`| ${name} | ${perPixel.toFixed(1)} | ${(fixed / MiB).toFixed(1)} | ${(a.bytes / MiB).toFixed(1)} / ${(b.bytes / MiB).toFixed(1)} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
