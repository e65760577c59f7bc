// CMYK samples to sRGB. With the file's own CMYK profile: LittleCMS 2.19 built to WebAssembly by
// wasm/lcms2/build.sh (the version sharp ships), with sharp's (libvips') settings: perceptual
// intent, the usual one for photographs, and no black-point compensation flag (LittleCMS adds it
// itself, its sRGB profile being ICC v4). Every pixel within 1 level of sharp's conversion of the
// same file (test/cmyk.test.ts). Relative colorimetric without compensation keeps the print's
// paper-grey black (means ~20 levels too light on a dark photo). Without a usable CMYK profile:
// the plain formula R = 255(1-C)(1-K) and its siblings that most viewers fall back to, noted as
// approximate (no redistributable CMYK profile is reachable here: Debian main ships none,
// Ghostscript's are AGPL).
//
// The pixels go through the module a chunk at a time, so its memory stays small whatever the
// image's size.
import type { Raster } from '../../src/codecs/types.js';
import { CodecError, instantiateReactor, Lazy, type ReactorExports } from './wasm.js';

export const NO_PROFILE_NOTE = 'no CMYK profile: approximate colours';

/** 4 samples per pixel, ink amounts: 0 = no ink, 255 = full ink (Adobe's inversion already undone). */
export interface CmykImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** build.mjs copies wasm/ to dist/wasm/, so the path is the same from source and from dist. */
const WASM_FILE = new URL('../../wasm/lcms2/lcms2.wasm', import.meta.url);

/** wasm/lcms2/cmyk.c */
interface Exports extends ReactorExports {
  lc_malloc(size: number): number;
  lc_status(): number;
  lc_error(): number;
  lc_cmyk_transform(icc: number, length: number): number;
  lc_run(transform: number, input: number, output: number, pixels: number): void;
}

/** lc_status after a failed lc_cmyk_transform */
const LC_BAD_PROFILE = 1;
const LC_NOT_CMYK = 2;
/** Pixels per lc_run call: 256 KiB in and 256 KiB out of the module's memory. */
const CHUNK_PIXELS = 1 << 16;

const lcms = new Lazy('lcms2', async () => instantiateReactor<Exports>(WASM_FILE));

function cString(m: Exports, ptr: number): string {
  const bytes = new Uint8Array(m.memory.buffer, ptr, 255);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end));
}

function alloc(m: Exports, size: number): number {
  const ptr = m.lc_malloc(size);
  if (ptr === 0) throw new CodecError('CMYK conversion failed: out of memory');
  return ptr;
}

/** Converts through the profile into out; false when the profile is unreadable or not for CMYK. */
async function convertWithProfile(img: CmykImage, icc: Uint8Array, out: Uint8ClampedArray): Promise<boolean> {
  const m = await lcms.get();
  const pixels = img.width * img.height;
  try {
    const profile = alloc(m, Math.max(1, icc.length));
    new Uint8Array(m.memory.buffer, profile, icc.length).set(icc);
    const transform = m.lc_cmyk_transform(profile, icc.length);
    if (transform === 0) {
      const status = m.lc_status();
      if (status === LC_BAD_PROFILE || status === LC_NOT_CMYK) return false;
      throw new CodecError(`CMYK conversion failed: the embedded profile cannot be used (${cString(m, m.lc_error()) || 'LittleCMS gave no reason'})`);
    }
    const chunk = Math.max(1, Math.min(CHUNK_PIXELS, pixels));
    const input = alloc(m, chunk * 4);
    const output = alloc(m, chunk * 4);
    for (let p = 0; p < pixels; p += chunk) {
      const n = Math.min(chunk, pixels - p);
      new Uint8Array(m.memory.buffer, input, n * 4).set(img.data.subarray(p * 4, (p + n) * 4));
      m.lc_run(transform, input, output, n);
      out.set(new Uint8Array(m.memory.buffer, output, n * 4), p * 4);
    }
    return true;
  } catch (err) {
    if (err instanceof CodecError) throw err;
    throw new CodecError(`CMYK conversion failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    // A fresh instance for every image (~0.2 ms to make): whatever a damaged profile does inside
    // the module stays with its own image, and nothing needs freeing.
    lcms.reset();
  }
}

/** The CMYK image as opaque sRGB RGBA; `notes` says when the colours are approximate. */
export async function cmykToSrgb(img: CmykImage, icc: Uint8Array | null): Promise<Raster> {
  const { width, height, data } = img;
  const pixels = width * height;
  const out = new Uint8ClampedArray(pixels * 4);
  if (icc && (await convertWithProfile(img, icc, out))) return { data: out, width, height, opaque: true, srgb: true };
  for (let i = 0; i < pixels * 4; i += 4) {
    const k = 255 - data[i + 3]!;
    out[i] = ((255 - data[i]!) * k + 127) / 255;
    out[i + 1] = ((255 - data[i + 1]!) * k + 127) / 255;
    out[i + 2] = ((255 - data[i + 2]!) * k + 127) / 255;
    out[i + 3] = 255;
  }
  return { data: out, width, height, opaque: true, srgb: true, notes: [NO_PROFILE_NOTE] };
}
