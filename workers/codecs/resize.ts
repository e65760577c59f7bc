// Downscaling: an integer box shrink in JS, then Lanczos3 with Squoosh's resizer (@jsquash/resize:
// the Rust `resize` crate in WASM) for the rest.
import { boxShrunk, preShrinkFactor } from '../../src/codecs/plan.js';
import type { Raster } from '../../src/codecs/types.js';
import { call, checkRaster, Lazy, wasmBindgen } from './wasm.js';

interface SquooshResize {
  initSync(m: unknown): unknown;
  resize(input: Uint8Array, iw: number, ih: number, ow: number, oh: number, method: number, premultiply: boolean, linearRgb: boolean): Uint8ClampedArray;
}

/**
 * Lanczos3 (method 3 of triangle, catrom, mitchell, lanczos3). The crate widens the kernel by the
 * scale factor when shrinking, which is what antialiases a downscale. Filtering is in gamma
 * space, as sharp, libvips and imgproxy do: linear light cost 2.9x the time on a 6 MP input (668
 * against 230 ms, one thread) for a difference seen only on fine high-contrast texture. Alpha is
 * premultiplied (no halo against transparency) unless the decoder said the image is opaque, where
 * it changes nothing and costs 1.6x.
 */
export const RESIZE_OPTIONS = { method: 3, linearRgb: false } as const;

const resizer = new Lazy('resize', () => wasmBindgen<SquooshResize>('@jsquash/resize/lib/resize/pkg/squoosh_resize.js', '@jsquash/resize/lib/resize/pkg/squoosh_resize_bg.wasm', false));

/**
 * Averages k×k blocks (partial blocks at the right and bottom edges over the pixels they have);
 * colour is weighted by alpha unless the image is opaque, so transparent pixels lend no colour.
 */
export function boxShrink(image: Raster, k: number): Raster {
  if (k <= 1) return image;
  const { data: s, width: w, height: h, opaque } = image;
  const { width: ow, height: oh } = boxShrunk(image, k);
  const out = new Uint8ClampedArray(ow * oh * 4);
  const stride = w * 4;
  let o = 0;
  for (let oy = 0; oy < oh; oy++) {
    const y0 = oy * k;
    const rows = Math.min(h, y0 + k) - y0;
    for (let ox = 0; ox < ow; ox++, o += 4) {
      const x0 = ox * k;
      const cols = Math.min(w, x0 + k) - x0;
      let r = 0, g = 0, b = 0, al = 0;
      for (let y = 0, row = y0 * stride + x0 * 4; y < rows; y++, row += stride) {
        if (opaque) {
          for (let x = 0, i = row; x < cols; x++, i += 4) {
            r += s[i]!;
            g += s[i + 1]!;
            b += s[i + 2]!;
          }
        } else {
          for (let x = 0, i = row; x < cols; x++, i += 4) {
            const a = s[i + 3]!;
            r += s[i]! * a;
            g += s[i + 1]! * a;
            b += s[i + 2]! * a;
            al += a;
          }
        }
      }
      // Uint8ClampedArray rounds to nearest on store
      const n = opaque ? rows * cols : al;
      if (n > 0) {
        out[o] = r / n;
        out[o + 1] = g / n;
        out[o + 2] = b / n;
      }
      out[o + 3] = opaque ? 255 : al / (rows * cols);
    }
  }
  return { data: out, width: ow, height: oh, ...(opaque ? { opaque: true } : {}) };
}

export async function resize(image: Raster, width: number, height: number): Promise<Raster> {
  if (width === image.width && height === image.height) return image;
  const shrunk = boxShrink(image, preShrinkFactor(image, { width, height }));
  const { method, linearRgb } = RESIZE_OPTIONS;
  const premultiply = !shrunk.opaque;
  const input = new Uint8Array(shrunk.data.buffer, shrunk.data.byteOffset, shrunk.data.byteLength);
  const data = await call(resizer, 'Resize', (m) => m.resize(input, shrunk.width, shrunk.height, width, height, method, premultiply, linearRgb));
  const out = checkRaster({ data, width, height }, 'Resize');
  if (!image.opaque) return out;
  // the kernel's rounding may leave 254 in a constant alpha channel: keep opaque exactly opaque
  for (let i = 3; i < out.data.length; i += 4) out.data[i] = 255;
  return { ...out, opaque: true };
}

export const instances = [resizer];
