// node dist/bench/diag/input-decoders.js [photo]: each input-only decoder's speed per megapixel,
// one thread, against sharp (libvips) decoding the same file to raw RGBA where sharp reads the
// format (its prebuilt binary has no HEVC and no BMP: those rows show our time only). Files are
// made from the photo (default: the corpus's Path.jpg, 1500x937) by sharp, or by ImageMagick
// (BMP) and heif-enc (HEIC) when present. Interleaved, median of 7 runs after one warm-up.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { rowFor } from '../../src/codecs/table.js';
import { SOURCES } from '../../workers/codecs.js';
import { median, now } from '../stats.js';

const photo = readFileSync(resolve(process.argv[2] ?? '../shared/corpus/Path.jpg'));
sharp.concurrency(1);
const tool = (cmd: string, args: string[], input: Buffer): Buffer | null => {
  try {
    return execFileSync(cmd, args, { input, maxBuffer: 1 << 30 });
  } catch {
    return null;
  }
};
const heic = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'input-decoders-'));
  try {
    writeFileSync(join(dir, 'in.png'), execFileSync('convert', ['jpg:-', 'png:-'], { input: photo, maxBuffer: 1 << 30 }));
    execFileSync('heif-enc', ['-q', '50', join(dir, 'in.png'), '-o', join(dir, 'out.heic')], { stdio: 'ignore' });
    return readFileSync(join(dir, 'out.heic'));
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

const cases: [string, Buffer | null, boolean][] = [
  ['GIF', await sharp(photo).gif().toBuffer(), true],
  ['TIFF LZW 8-bit', await sharp(photo).tiff({ compression: 'lzw' }).toBuffer(), true],
  ['TIFF Deflate 16-bit', await sharp(photo).toColourspace('rgb16').tiff({ compression: 'deflate' }).toBuffer(), true],
  ['TIFF CMYK + profile', await sharp(photo).toColourspace('cmyk').withIccProfile('cmyk').tiff({ compression: 'lzw' }).toBuffer(), true],
  ['CMYK JPEG + profile', await sharp(photo).toColourspace('cmyk').withIccProfile('cmyk').jpeg({ quality: 90 }).toBuffer(), true],
  ['BMP 24-bit', tool('convert', ['jpg:-', 'bmp3:-'], photo), false],
  ['HEIC', heic, false],
];

console.log('| input | MP | ours ms/MP | sharp ms/MP | ours vs sharp speed |');
console.log('|---|---|---|---|---|');
for (const [name, file, sharpReads] of cases) {
  if (!file) {
    console.log(`| ${name} | (not made: tool missing) | | | |`);
    continue;
  }
  const bytes = new Uint8Array(file);
  const row = rowFor(bytes)!;
  const codec = SOURCES[row.format];
  const dims = row.dimensions(bytes)!;
  const mp = (dims.width * dims.height) / 1e6;
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < 8; i++) {
    let t = now();
    await codec.decode(bytes);
    if (i > 0) ours.push(now() - t);
    if (sharpReads) {
      t = now();
      await sharp(file).ensureAlpha().raw().toBuffer();
      if (i > 0) theirs.push(now() - t);
    }
  }
  const o = median(ours) / mp;
  const s = sharpReads ? median(theirs) / mp : null;
  console.log(`| ${name} | ${mp.toFixed(2)} | ${o.toFixed(1)} | ${s === null ? 'n/a' : s.toFixed(1)} | ${s === null ? 'n/a' : `${(s / o).toFixed(2)}x`} |`);
}
