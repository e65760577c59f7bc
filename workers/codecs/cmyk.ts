// CMYK samples to sRGB. With the file's own CMYK profile: LittleCMS (lcms-wasm), perceptual
// intent, sharp's (libvips') choice and the usual one for photographs; LittleCMS adds black-point
// compensation itself (its sRGB profile is ICC v4). Within 1 level of ImageMagick's perceptual
// conversion (test/input-formats.test.ts). Relative colorimetric without compensation keeps the
// print's paper-grey black (means ~20 levels too light on a dark photo); with it, the means are
// up to 2 levels from ImageMagick's perceptual ones. Without a profile: the plain formula R = 255(1-C)(1-K) and its siblings that
// most viewers fall back to, noted as approximate (no redistributable CMYK profile is reachable
// here: Debian main ships none, Ghostscript's are AGPL).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { Raster } from '../../src/codecs/types.js';
import { CodecError } from './wasm.js';

export const NO_PROFILE_NOTE = 'no CMYK profile: approximate colours';

/** 4 samples per pixel, ink amounts: 0 = no ink, 255 = full ink (Adobe's inversion already undone). */
export interface CmykImage {
  data: Uint8Array;
  width: number;
  height: number;
}

interface Lcms {
  cmsOpenProfileFromMem(data: Uint8Array, size: number): number;
  cmsCloseProfile(p: number): void;
  cmsCreate_sRGBProfile(): number;
  cmsGetColorSpace(p: number): number;
  cmsCreateTransform(inP: number, inFmt: number, outP: number, outFmt: number, intent: number, flags: number): number;
  cmsDeleteTransform(t: number): void;
  cmsDoTransform(t: number, input: Uint8Array, pixels: number): Uint8Array;
}

const require = createRequire(import.meta.url);
let lcms: Promise<Lcms> | undefined;
function loadLcms(): Promise<Lcms> {
  lcms ??= (async () => {
    const glue = require.resolve('lcms-wasm/dist/lcms.js');
    const { instantiate } = (await import(pathToFileURL(glue).href)) as { instantiate(o: object): Promise<Lcms> };
    return instantiate({ wasmBinary: readFileSync(require.resolve('lcms-wasm/dist/lcms.wasm')), print: () => {}, printErr: () => {} });
  })();
  return lcms;
}

const SIG_CMYK = 0x434d594b;
// lcms pixel formats: COLORSPACE_SH(PT_CMYK=6)|CHANNELS_SH(4)|BYTES_SH(1); PT_RGB=4, 3 channels
const TYPE_CMYK_8 = (6 << 16) | (4 << 3) | 1;
const TYPE_RGB_8 = (4 << 16) | (3 << 3) | 1;
const INTENT_PERCEPTUAL = 0;
/** Rows per cmsDoTransform call: lcms-wasm copies input and output through its heap each call. */
const CHUNK_PIXELS = 1 << 20;

/** The CMYK image as opaque sRGB RGBA; `notes` says when the colours are approximate. */
export async function cmykToSrgb(img: CmykImage, icc: Uint8Array | null): Promise<Raster> {
  const { width, height, data } = img;
  const pixels = width * height;
  const out = new Uint8ClampedArray(pixels * 4);
  const m = icc ? await loadLcms() : null;
  const profile = m && icc ? m.cmsOpenProfileFromMem(icc, icc.length) : 0;
  if (m && profile && m.cmsGetColorSpace(profile) === SIG_CMYK) {
    const srgb = m.cmsCreate_sRGBProfile();
    const t = m.cmsCreateTransform(profile, TYPE_CMYK_8, srgb, TYPE_RGB_8, INTENT_PERCEPTUAL, 0);
    m.cmsCloseProfile(profile);
    m.cmsCloseProfile(srgb);
    if (!t) throw new CodecError('CMYK conversion failed: the embedded profile cannot be used');
    try {
      for (let p = 0; p < pixels; p += CHUNK_PIXELS) {
        const n = Math.min(CHUNK_PIXELS, pixels - p);
        const rgb = m.cmsDoTransform(t, data.subarray(p * 4, (p + n) * 4), n);
        for (let i = 0, o = p * 4; i < n * 3; i += 3, o += 4) {
          out[o] = rgb[i]!;
          out[o + 1] = rgb[i + 1]!;
          out[o + 2] = rgb[i + 2]!;
          out[o + 3] = 255;
        }
      }
    } finally {
      m.cmsDeleteTransform(t);
    }
    return { data: out, width, height, opaque: true, srgb: true };
  }
  if (m && profile) m.cmsCloseProfile(profile);
  for (let i = 0; i < pixels * 4; i += 4) {
    const k = 255 - data[i + 3]!;
    out[i] = ((255 - data[i]!) * k + 127) / 255;
    out[i + 1] = ((255 - data[i + 1]!) * k + 127) / 255;
    out[i + 2] = ((255 - data[i + 2]!) * k + 127) / 255;
    out[i + 3] = 255;
  }
  return { data: out, width, height, opaque: true, srgb: true, notes: [NO_PROFILE_NOTE] };
}
