// node dist/bench/diag/shrink-rule.js: how much a decode shrunk on load costs the resized output,
// to choose the DCT scale rule (src/codecs/plan.ts's shrinkOnLoadScale). Each 8000x6000 JPEG goes
// to 1600x1200 (and 6000x4000 to 1600x1067, 1000x667) through our libjpeg decode at 1/1, 1/2,
// 1/4 (and 1/8 where the reduction allows it) and our resizer; each result is scored with
// SSIMULACRA2 and the mean absolute difference against the full-size decode resized by the same
// resizer without its box pre-shrink (Lanczos3 over every source pixel: the best this pipeline
// can do), and against sharp's Lanczos3 from full size (fastShrinkOnLoad: false).
import { resize } from '../../workers/codecs.js';
import { lanczos3Resize } from '../../workers/codecs/resize.js';
import { decodeJpeg, type JpegScale } from '../../workers/codecs/libjpeg.js';
import { ssimulacra2 } from '../../workers/metrics/ssimulacra2.js';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { generatedPhoto } from '../generated-photo.js';
import type { Raster } from '../../src/codecs/types.js';

/** A mosaic of the test fixtures' photos at their own resolution: real fine detail at every size. */
async function mosaic(width: number, height: number): Promise<Buffer> {
  const tiles = await Promise.all(['rocket-small.jpg', 'chelsea.png', 'Kite.webp', 'coffee-orient6.jpg'].map(async (f) => {
    const { data, info } = await sharp(readFileSync(new URL(`../../../test/fixtures/${f}`, import.meta.url))).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return { data, w: info.width, h: info.height };
  }));
  const out = Buffer.alloc(width * height * 3);
  let t = 0;
  for (let y0 = 0; y0 < height; y0 += 400) {
    for (let x0 = 0; x0 < width; ) {
      const tile = tiles[t++ % tiles.length]!;
      const w = Math.min(tile.w, width - x0);
      for (let y = 0; y < 400 && y0 + y < height; y++) {
        const sy = (y + ((x0 * 7) % 23)) % tile.h;
        tile.data.copy(out, ((y0 + y) * width + x0) * 3, sy * tile.w * 3, (sy * tile.w + w) * 3);
      }
      x0 += w;
    }
  }
  return sharp(out, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

const madOf = (a: Raster, b: Raster) => {
  let d = 0;
  for (let i = 0; i < a.data.length; i++) if (i % 4 !== 3) d += Math.abs(a.data[i]! - b.data[i]!);
  return d / (a.data.length * 0.75);
};

const sources = [
  { name: 'mosaic 8000x6000', bytes: await mosaic(8000, 6000), outs: [[1600, 1200], [2000, 1500], [1000, 750]] },
  { name: 'generated 8000x6000', bytes: await generatedPhoto(8000, 6000, 3, { quality: 90, shapes: true }), outs: [[1600, 1200]] },
  { name: 'mosaic 6000x4000', bytes: await mosaic(6000, 4000), outs: [[1600, 1067], [1500, 1000]] },
] as const;

console.log('source                 output      scale  SSIMULACRA2 (vs ours full, vs sharp full)  mean abs diff (vs ours full, vs sharp full)');
for (const { name, bytes, outs } of sources) {
  const full = await decodeJpeg(new Uint8Array(bytes), { scale: 1 });
  for (const [ow, oh] of outs) {
    const ideal = await lanczos3Resize(full, ow, oh);
    const s = await sharp(bytes, { failOn: 'none' }).resize(ow, oh, { fit: 'fill', kernel: 'lanczos3', fastShrinkOnLoad: false }).ensureAlpha().raw().toBuffer();
    const sharpFull: Raster = { data: new Uint8ClampedArray(s.buffer, s.byteOffset, s.length), width: ow, height: oh };
    const reduction = Math.min(full.width / ow, full.height / oh);
    for (const scale of [1, 2, 4, 8] as JpegScale[]) {
      if (scale > reduction) continue;
      const decoded = scale === 1 ? full : await decodeJpeg(new Uint8Array(bytes), { scale });
      const out = await resize(decoded, ow, oh);
      const r = (x: number) => x.toFixed(2).padStart(7);
      console.log(`${name.padEnd(22)} ${`${ow}x${oh}`.padEnd(11)} 1/${scale}   ${r(ssimulacra2(ideal, out))} ${r(ssimulacra2(sharpFull, out))}                        ${r(madOf(ideal, out))} ${r(madOf(sharpFull, out))}`);
    }
    console.log(`${name.padEnd(22)} ${`${ow}x${oh}`.padEnd(11)} ours full-Lanczos3 vs sharp full: ${ssimulacra2(sharpFull, ideal).toFixed(2)}, mean abs diff ${madOf(sharpFull, ideal).toFixed(2)}`);
  }
}
