// node dist/bench/diag/codec-memory.js: how much WASM memory each codec step holds, per pixel.
// Each step runs on a fresh instance for two image sizes; the slope between them is the per-pixel
// cost and the rest the fixed part. The table's `memory` columns come from here; the resizer, whose
// memory follows its output and the kernel's taps rather than its input, is compared with its
// model (plan.ts's resizeMemory) size by size.
import sharp from 'sharp';
import { CODECS, encodePng, instanceStats, releaseGrown, resize } from '../../workers/codecs.js';
import { boxShrunk, preShrinkFactor, resizeMemory } from '../../src/codecs/plan.js';
import type { Raster } from '../../src/codecs/types.js';

/** A photo-like test image: gradients plus noise (compresses like a photo, not like a flat fill). */
function photo(width: number, height: number): Raster {
  const data = new Uint8ClampedArray(width * height * 4);
  let seed = 7;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const n = (seed >>> 24) - 128;
      const i = (y * width + x) * 4;
      data[i] = (x * 255) / width + n / 4;
      data[i + 1] = (y * 255) / height + n / 4;
      data[i + 2] = 128 + 100 * Math.sin((x + y) / 50) + n / 4;
      data[i + 3] = 255;
    }
  }
  return { data, width, height };
}

const MiB = 1024 * 1024;
const sizes = [[1000, 750], [3000, 2250]] as const;

async function measure(name: string, run: (img: Raster, encoded: Record<string, Uint8Array>) => Promise<unknown>) {
  const points: { pixels: number; live: Record<string, number> }[] = [];
  for (const [w, h] of sizes) {
    const img = photo(w, h);
    const raw = { raw: { width: w, height: h, channels: 4 as const } };
    const encoded = {
      jpeg: new Uint8Array(await sharp(Buffer.from(img.data.buffer), raw).jpeg({ quality: 90 }).toBuffer()),
      png: new Uint8Array(await sharp(Buffer.from(img.data.buffer), raw).png().toBuffer()),
      webp: new Uint8Array(await sharp(Buffer.from(img.data.buffer), raw).webp({ quality: 90 }).toBuffer()),
      avif: new Uint8Array(await sharp(Buffer.from(img.data.buffer), raw).avif({ quality: 60, effort: 0 }).toBuffer()),
    };
    releaseGrown(0);
    await run(img, encoded);
    points.push({ pixels: w * h, live: instanceStats().live });
    releaseGrown(0);
  }
  const [a, b] = points as [typeof points[0], typeof points[0]];
  for (const inst of Object.keys(b.live)) {
    const perPixel = ((b.live[inst] ?? 0) - (a.live[inst] ?? 0)) / (b.pixels - a.pixels);
    const fixed = (a.live[inst] ?? 0) - perPixel * a.pixels;
    console.log(`${name.padEnd(22)} ${inst.padEnd(12)} ${perPixel.toFixed(2).padStart(6)} B/px  fixed ${(fixed / MiB).toFixed(1).padStart(6)} MiB   (${(a.live[inst]! / MiB).toFixed(1)} / ${(b.live[inst]! / MiB).toFixed(1)} MiB)`);
  }
}

await measure('jpeg decode', (_, e) => CODECS.jpeg.decode(e.jpeg!));
await measure('jpeg encode', (img) => CODECS.jpeg.encode(img, { quality: 50 }));
await measure('png decode', (_, e) => CODECS.png.decode(e.png!));
await measure('png encode (photo)', (img) => encodePng(img));
await measure('webp decode', (_, e) => CODECS.webp.decode(e.webp!));
await measure('webp encode', (img) => CODECS.webp.encode(img, { quality: 50 }));
await measure('avif decode', (_, e) => CODECS.avif.decode(e.avif!));
await measure('avif encode', (img) => CODECS.avif.encode(img, { quality: 50 }));

// The resizer on a fresh instance each time, inputs opaque (the photo) and not (same bytes).
const resizes = [[1000, 750, 500, 375], [3000, 2250, 1500, 1125], [3000, 2250, 375, 281], [3000, 2000, 1600, 1067], [4000, 3000, 1600, 1200], [8000, 6000, 1600, 1200], [6000, 4000, 320, 213]] as const;
for (const [iw, ih, ow, oh] of resizes) {
  const img = photo(iw, ih);
  for (const opaque of [true, false]) {
    releaseGrown(0);
    await resize({ ...img, ...(opaque ? { opaque } : {}) }, ow, oh);
    const measured = instanceStats().live.resize ?? 0;
    const to = { width: ow, height: oh };
    // the resizer's input is what the box pre-shrink leaves
    const model = resizeMemory(boxShrunk(img, preShrinkFactor(img, to)), to);
    console.log(`resize ${`${iw}x${ih} -> ${ow}x${oh}`.padEnd(24)} ${opaque ? 'opaque' : 'alpha '} measured ${(measured / MiB).toFixed(2).padStart(6)} MiB  model ${(model / MiB).toFixed(2).padStart(6)} MiB  (${((model - measured) / MiB).toFixed(2)})`);
  }
}
releaseGrown(0);
