// Downscaling with Squoosh's resizer (@jsquash/resize: the Rust `resize` crate in WASM).
import type { Raster } from '../../src/codecs/types.js';
import { call, checkRaster, Lazy, wasmBindgen } from './wasm.js';

interface SquooshResize {
  initSync(m: unknown): unknown;
  resize(input: Uint8Array, iw: number, ih: number, ow: number, oh: number, method: number, premultiply: boolean, linearRgb: boolean): Uint8ClampedArray;
}

/**
 * Lanczos3 (method 3 of triangle, catrom, mitchell, lanczos3). The crate widens the kernel by the
 * scale factor when shrinking, which is what antialiases a downscale; filtering happens in linear
 * light with premultiplied alpha (Squoosh's defaults), so edges against transparency keep no halo.
 */
export const RESIZE_OPTIONS = { method: 3, premultiply: true, linearRgb: true } as const;

const resizer = new Lazy('resize', () => wasmBindgen<SquooshResize>('@jsquash/resize/lib/resize/pkg/squoosh_resize.js', '@jsquash/resize/lib/resize/pkg/squoosh_resize_bg.wasm', false));

export async function resize(image: Raster, width: number, height: number): Promise<Raster> {
  if (width === image.width && height === image.height) return image;
  const { method, premultiply, linearRgb } = RESIZE_OPTIONS;
  const input = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const data = await call(resizer, 'Resize', (m) => m.resize(input, image.width, image.height, width, height, method, premultiply, linearRgb));
  return checkRaster({ data, width, height }, 'Resize');
}

export const instances = [resizer];
