// libwebp decoder and encoder (@jsquash/webp).
import { firstWebpFrame, webpFrames } from '../../src/codecs/animation.js';
import type { Codec, Raster } from '../../src/codecs/types.js';
import { call, checkRaster, CodecError, codecOutput, emscripten, Lazy, ownBytes, wasmBytes } from './wasm.js';

/**
 * WebP: lossy, libwebp's defaults except `method` 2 (libwebp's and sharp's default is 4). Measured
 * with `node dist/bench/diag/webp-method.js`, the corpus photos -> WebP q50, one thread, bytes at
 * matched SSIMULACRA2 against sharp's .webp() (method 4), decode included in the time:
 *
 *   | method | 12 photos: speed vs sharp | bytes at sharp's score | 6 photos: speed | bytes at score |
 *   | 1      |                           |                        | 2.30x           | 1.091x         |
 *   | 2      | 1.89x   <- chosen         | 1.031x                 | 1.84x           | 0.997x         |
 *   | 3      |                           |                        | 0.86x           | 1.015x         |
 *   | 4      | 0.82x                     | 1.008x                 | 0.86x           | 1.007x         |
 *
 * Method 2 skips the rate-distortion passes of 3 and up: at the same q its files are ~5% larger
 * and score higher; at equal score ~2% larger than sharp's (0.96-1.08x per photo), for 2.3x the
 * speed.
 */
export const WEBP_OPTIONS = {
  quality: 50,
  target_size: 0,
  target_PSNR: 0,
  method: 2,
  sns_strength: 50,
  filter_strength: 60,
  filter_sharpness: 0,
  filter_type: 1,
  partitions: 0,
  segments: 4,
  pass: 1,
  show_compressed: 0,
  preprocessing: 0,
  autofilter: 0,
  partition_limit: 0,
  alpha_compression: 1,
  alpha_filtering: 1,
  alpha_quality: 100,
  lossless: 0,
  exact: 0,
  image_hint: 0,
  emulate_jpeg_size: 0,
  thread_level: 0,
  low_memory: 0,
  near_lossless: 100,
  use_delta_palette: 0,
  use_sharp_yuv: 0,
};

interface WebpDec {
  decode(data: Uint8Array): Raster | null;
}
interface WebpEnc {
  encode(data: Uint8ClampedArray, width: number, height: number, opts: typeof WEBP_OPTIONS): Uint8Array | null;
}

const dec = new Lazy('webp-dec', () => emscripten<WebpDec>('@jsquash/webp/codec/dec/webp_dec.js', '@jsquash/webp/codec/dec/webp_dec.wasm'));
const enc = new Lazy('webp-enc', () => {
  // Pick the SIMD build when this runtime validates it (Node, Bun and Deno all do today).
  const simd = WebAssembly.validate(wasmBytes('@jsquash/webp/codec/enc/webp_enc_simd.wasm') as Uint8Array<ArrayBuffer>);
  const name = simd ? 'webp_enc_simd' : 'webp_enc';
  return emscripten<WebpEnc>(`@jsquash/webp/codec/enc/${name}.js`, `@jsquash/webp/codec/enc/${name}.wasm`);
});

export const webp: Codec = {
  async decode(bytes) {
    const frame = firstWebpFrame(bytes);
    if (!frame) return checkRaster(await call(dec, 'WebP decode', (m) => m.decode(bytes)), 'WebP decode');
    // an animation: its first frame, placed on a transparent canvas of the declared size
    const img = checkRaster(await call(dec, 'WebP decode', (m) => m.decode(frame.still)), 'WebP decode');
    const { canvasWidth: cw, canvasHeight: ch } = frame;
    if (frame.x + img.width > cw || frame.y + img.height > ch) throw new CodecError('WebP decode failed: first frame outside the canvas');
    const data = new Uint8ClampedArray(cw * ch * 4);
    for (let y = 0; y < img.height; y++) data.set(img.data.subarray(y * img.width * 4, (y + 1) * img.width * 4), ((frame.y + y) * cw + frame.x) * 4);
    return { data, width: cw, height: ch, notes: [`first frame of ${webpFrames(bytes)}`] };
  },
  async encode(img, { quality }) {
    const opts = { ...WEBP_OPTIONS, quality };
    const out = await call(enc, 'WebP encode', (m) => m.encode(img.data, img.width, img.height, opts));
    if (!out) throw new CodecError(`WebP encode failed: ${codecOutput.at(-1) ?? 'no output'}`);
    return ownBytes(out);
  },
  defaults: WEBP_OPTIONS,
};

export const instances = [dec, enc];
