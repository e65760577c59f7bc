// Test images and the reference SSIMULACRA2 (calc-s2-rust, via bench/quality-metric.ts) shared by
// the metric and quality=auto tests.
import type { Raster } from '../../src/codecs/types.js';
import { referenceSsimulacra2 } from '../../bench/quality-metric.js';

/** A photo-like test image: gradients, seeded noise and a few hard-edged shapes. */
export function photoLike(width: number, height: number, seed: number): Raster {
  const data = new Uint8ClampedArray(width * height * 4);
  let s = seed >>> 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const n = ((s >>> 24) - 128) / 8;
      const disc = Math.hypot(x - width * 0.3, y - height * 0.4) < width * 0.15;
      const bar = Math.abs(y - height * 0.7) < 4;
      const i = (y * width + x) * 4;
      data[i] = (disc ? 220 : 120 + 80 * Math.sin(x / 23)) + n;
      data[i + 1] = (bar ? 30 : (200 * y) / height) + n;
      data[i + 2] = 90 + 60 * Math.cos((x + y) / 40) + n;
      data[i + 3] = 255;
    }
  }
  return { data, width, height };
}

const bytesOf = (r: Raster) => new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.length);
export const reference = async (a: Raster, b: Raster, alpha = false) =>
  referenceSsimulacra2({ ref: bytesOf(a), dist: bytesOf(b), width: a.width, height: a.height, alpha });


/** A studio-like smooth image or a foliage-like detailed one: they need very different qualities. */
export function image(width: number, height: number, kind: 'smooth' | 'detailed'): Raster {
  const data = new Uint8ClampedArray(width * height * 4);
  let s = 12345;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const i = (y * width + x) * 4;
      if (kind === 'smooth') {
        // a studio backdrop: soft gradients, faint grain
        const n = ((s >>> 24) - 128) / 64;
        data[i] = 180 + 40 * Math.sin(x / 90) + n;
        data[i + 1] = 170 + (50 * y) / height + n;
        data[i + 2] = 160 + 30 * Math.cos((x + y) / 120) + n;
      } else {
        // foliage-like texture: strong grain, fine stripes and hard edges
        const n = ((s >>> 24) - 128) / 2.5;
        const stripe = (x >> 1) % 2 === 0 ? 40 : -40;
        const edge = (x + 2 * y) % 37 < 18 ? 50 : -50;
        data[i] = 120 + stripe + n;
        data[i + 1] = 110 + edge + n;
        data[i + 2] = 100 + (stripe + edge) / 2 + n;
      }
      data[i + 3] = 255;
    }
  }
  return { data, width, height };
}
