// AVIF decoder and encoder (@jsquash/avif: libavif + libaom, single-threaded build).
import { avifFrames } from '../../src/codecs/avif.js';
import type { Codec, Raster } from '../../src/codecs/types.js';
import { call, checkRaster, CodecError, codecOutput, emscripten, Lazy, ownBytes } from './wasm.js';

/**
 * libaom through libavif. `speed` (0 slowest/best .. 10 fastest) is the knob that matters: see the
 * trade-off table in docs/performance.md (bench/avif.ts). The rest are @jsquash/avif's defaults:
 * 4:2:0, 8 bits, no denoising, tuning automatic.
 */
export const AVIF_OPTIONS = {
  quality: 50,
  qualityAlpha: -1,
  denoiseLevel: 0,
  tileColsLog2: 0,
  tileRowsLog2: 0,
  speed: 8,
  subsample: 1,
  chromaDeltaQ: false,
  sharpness: 0,
  tune: 0,
  enableSharpYUV: false,
  bitDepth: 8,
  lossless: false,
};

interface AvifDec {
  decode(data: Uint8Array, bitDepth: 8): Raster | null;
}
interface AvifEnc {
  encode(data: Uint8Array, width: number, height: number, opts: typeof AVIF_OPTIONS): Uint8Array | null;
}

const dec = new Lazy('avif-dec', () => emscripten<AvifDec>('@jsquash/avif/codec/dec/avif_dec.js', '@jsquash/avif/codec/dec/avif_dec.wasm'));
const enc = new Lazy('avif-enc', () => emscripten<AvifEnc>('@jsquash/avif/codec/enc/avif_enc.js', '@jsquash/avif/codec/enc/avif_enc.wasm'));

export const avif: Codec = {
  async decode(bytes) {
    // an animation (image sequence): libavif decodes its first frame only
    const img = checkRaster(await call(dec, 'AVIF decode', (m) => m.decode(bytes, 8)), 'AVIF decode');
    const frames = avifFrames(bytes);
    return frames > 1 ? { ...img, notes: [`first frame of ${frames}`] } : img;
  },
  async encode(img, { quality }) {
    const opts = { ...AVIF_OPTIONS, quality };
    const rgba = new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength);
    const out = await call(enc, 'AVIF encode', (m) => m.encode(rgba, img.width, img.height, opts));
    if (!out) throw new CodecError(`AVIF encode failed: ${codecOutput.at(-1) ?? 'no output'}`);
    return ownBytes(out);
  },
  defaults: AVIF_OPTIONS,
};

export const instances = [dec, enc];
