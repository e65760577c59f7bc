// Downscaling: an integer box shrink in JS, then Lanczos3 with our resizer (wasm/resize/resize.c
// built to WebAssembly) for the rest. One instance per thread, made on first use (wasm.ts's Lazy:
// dropped after the step once it grew past the keep limit).
import { boxShrunk, preShrinkFactor } from '../../src/codecs/plan.js';
import type { Raster } from '../../src/codecs/types.js';
import { call, CodecError, instantiateReactor, Lazy, type ReactorExports } from './wasm.js';

/** build.mjs copies wasm/ to dist/wasm/, so the path is the same from source and from dist. */
const WASM_FILE = new URL('../../wasm/resize/resize.wasm', import.meta.url);

interface Exports extends ReactorExports {
  rz_begin(iw: number, ih: number, ow: number, oh: number, premultiply: number): number;
  rz_input(): number;
  rz_output(): number;
  rz_chunk_rows(): number;
  rz_push(rows: number): void;
  rz_rows_out(): number;
  rz_end(): void;
}


// The module imports nothing (no WASI call is linked), so it loads the same on Node, Bun and Deno.
const resizer = new Lazy('resize', async () => instantiateReactor<Exports>(WASM_FILE));

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

/**
 * Lanczos3 in the module, its support widened by the reduction factor on each axis (what
 * antialiases a downscale). Filtering is in gamma space, as sharp, libvips and imgproxy do: linear
 * light cost 2.9x the time on a 6 MP input (Squoosh's resizer, 668 against 230 ms) for a
 * difference seen only on fine high-contrast texture. Alpha is premultiplied (no halo against
 * transparency) unless the decoder said the image is opaque, where it changes nothing. The rows
 * stream in a chunk at a time, so the module never holds the whole input.
 */
function lanczos3(m: Exports, image: Raster, width: number, height: number): Uint8ClampedArray {
  const { data, width: iw, height: ih } = image;
  if (!m.rz_begin(iw, ih, width, height, image.opaque ? 0 : 1)) throw new CodecError(`Resize failed: out of memory for ${iw}x${ih} to ${width}x${height}`);
  // rz_begin made every allocation: the memory does not grow (and its views stay valid) below
  const chunk = m.rz_chunk_rows();
  const input = new Uint8Array(m.memory.buffer, m.rz_input(), chunk * iw * 4);
  for (let y = 0; y < ih; y += chunk) {
    const rows = Math.min(chunk, ih - y);
    input.set(data.subarray(y * iw * 4, (y + rows) * iw * 4));
    m.rz_push(rows);
  }
  if (m.rz_rows_out() !== height) throw new CodecError(`Resize failed: ${m.rz_rows_out()} of ${height} rows made`);
  const out = new Uint8ClampedArray(m.memory.buffer, m.rz_output(), width * height * 4).slice();
  m.rz_end();
  return out;
}

/** Lanczos3 over every pixel of `image` (no box pre-shrink). */
export async function lanczos3Resize(image: Raster, width: number, height: number): Promise<Raster> {
  const data = await call(resizer, 'Resize', (m) => lanczos3(m, image, width, height));
  // opaque in, opaque out: the kernel's taps sum to 1, so alpha stays 255 exactly
  return image.opaque ? { data, width, height, opaque: true } : { data, width, height };
}

export async function resize(image: Raster, width: number, height: number): Promise<Raster> {
  if (width === image.width && height === image.height) return image;
  return lanczos3Resize(boxShrink(image, preShrinkFactor(image, { width, height })), width, height);
}

export const instances = [resizer];
