// libjpeg-turbo's decoder built to WebAssembly by wasm/libjpeg/build.sh: JPEG decoded at full size
// or shrunk on load (1/2, 1/4, 1/8 in the DCT domain: a fraction of the time and of the memory),
// to RGBA, or to CMYK ink values for a colour-managed conversion. One instance per thread, made on
// first use; its memory grows to fit the largest image (wasm.ts's keep limit drops it after a big
// one). The module's error_exit calls jd_throw, which throws here: the wasm stack unwinds, the
// allocations of that call are stranded, so after any error the instance is dropped.
import { jpegScaledSize, type JpegScale } from '../../src/codecs/jpeg-scale.js';
import { CodecError, type Dimensions, type Raster } from '../../src/codecs/types.js';
import { instantiateReactor, Lazy, messageAt, type ReactorExports } from './wasm.js';

export { jpegScaledSize, type JpegScale };

/** build.mjs copies wasm/ to dist/wasm/, so the path is the same from source and from dist. */
const WASM_FILE = new URL('../../wasm/libjpeg/libjpeg.wasm', import.meta.url);

interface Exports extends ReactorExports {
  jd_malloc(size: number): number;
  jd_free(ptr: number): void;
  jd_header(data: number, length: number, scale: number): number;
  jd_decode(data: number, length: number, scale: number, cmyk: number): number;
}

/** What jd_throw carries out of the module: libjpeg's own message. */
class LibjpegAbort extends Error {}

function instantiate(): { module: Exports; memory: WebAssembly.Memory } {
  return instantiateReactor<Exports>(WASM_FILE, (memory) => ({
    jd_throw(ptr: number, length: number): never {
      throw new LibjpegAbort(messageAt(memory(), ptr, length));
    },
  }), LibjpegAbort);
}

const libjpeg = new Lazy('libjpeg', async () => instantiate());

/** jd_result in decoder.c: twelve little-endian u32 fields. */
interface Result {
  width: number;
  height: number;
  imageWidth: number;
  imageHeight: number;
  jpegColorSpace: number;
  components: number;
  adobe: boolean;
  progressive: boolean;
  precision: number;
  pixels: number;
}

function readResult(memory: WebAssembly.Memory, ptr: number): Result {
  const u = (i: number) => new DataView(memory.buffer).getUint32(ptr + i * 4, true);
  return {
    width: u(0), height: u(1), imageWidth: u(2), imageHeight: u(3),
    jpegColorSpace: u(5), components: u(6), adobe: u(7) !== 0, progressive: u(8) !== 0, precision: u(9), pixels: u(11),
  };
}

/** J_COLOR_SPACE values a JPEG file can declare. */
const COLOR_SPACES: Record<number, JpegColorSpace> = { 1: 'grey', 2: 'rgb', 3: 'ycbcr', 4: 'cmyk', 5: 'ycck' };
export type JpegColorSpace = 'grey' | 'rgb' | 'ycbcr' | 'cmyk' | 'ycck' | 'unknown';

/** One call into the module with the JPEG's bytes in its memory; any failure drops the instance. */
async function withInput<T>(bytes: Uint8Array, what: string, fn: (m: Exports, input: number) => T): Promise<T> {
  const m = await libjpeg.get();
  try {
    const input = m.jd_malloc(Math.max(1, bytes.length));
    if (input === 0) throw new LibjpegAbort('out of memory for the input');
    new Uint8Array(m.memory.buffer, input, bytes.length).set(bytes);
    const out = fn(m, input);
    m.jd_free(input);
    return out;
  } catch (err) {
    libjpeg.reset();
    if (err instanceof CodecError) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    // libjpeg pads a cut-off file with grey and only warns; decoder.c makes that fatal
    const cut = /premature end/i.test(detail) ? 'truncated: ' : '';
    throw new CodecError(`${what} failed: ${cut}${detail.slice(0, 200)}`);
  }
}

function checkScale(scale: number): asserts scale is JpegScale {
  if (scale !== 1 && scale !== 2 && scale !== 4 && scale !== 8) throw new CodecError(`JPEG scale must be 1, 2, 4 or 8, not ${scale}`);
}

export interface JpegHeader extends Dimensions {
  colorSpace: JpegColorSpace;
  components: number;
  progressive: boolean;
  /** bits per sample (only 8 decodes) */
  precision: number;
  /** an Adobe APP14 marker: CMYK samples are stored inverted */
  adobe: boolean;
  /** the size a decode at the asked scale gives, as libjpeg computes it */
  scaled: Dimensions;
}

/** libjpeg's reading of the header (no pixels decoded). */
export function jpegHeader(bytes: Uint8Array, scale: JpegScale = 1): Promise<JpegHeader> {
  checkScale(scale);
  return withInput(bytes, 'JPEG header', (m, input) => {
    const r = readResult(m.memory, m.jd_header(input, bytes.length, scale));
    return {
      width: r.imageWidth, height: r.imageHeight, colorSpace: COLOR_SPACES[r.jpegColorSpace] ?? 'unknown', components: r.components,
      progressive: r.progressive, precision: r.precision, adobe: r.adobe, scaled: { width: r.width, height: r.height },
    };
  });
}

function decodeAt(bytes: Uint8Array, scale: number, cmyk: boolean, what: string) {
  checkScale(scale);
  return withInput(bytes, what, (m, input) => {
    const r = readResult(m.memory, m.jd_decode(input, bytes.length, scale, cmyk ? 1 : 0));
    // the copy owns its buffer (transferable), and the instance's memory is free for the next image
    const data = new Uint8ClampedArray(m.memory.buffer, r.pixels, r.width * r.height * 4).slice();
    m.jd_free(r.pixels);
    return { r, data };
  });
}

export interface DecodeJpegOptions {
  /** decode at 1/scale of each side (DCT scaling); sizes round up, see jpegScaledSize */
  scale?: JpegScale;
}

/**
 * RGBA pixels of a greyscale, YCbCr or RGB JPEG, at full size or shrunk on load. Refuses CMYK and
 * YCCK files (they need a colour-managed conversion: decodeJpegCmyk), cut-off files and 12-bit ones.
 */
export async function decodeJpeg(bytes: Uint8Array, { scale = 1 }: DecodeJpegOptions = {}): Promise<Raster & { opaque: true }> {
  const { r, data } = await decodeAt(bytes, scale, false, 'JPEG decode');
  return { data, width: r.width, height: r.height, opaque: true };
}

export interface CmykRaster {
  /** C, M, Y, K per pixel as ink amounts, 0 = no ink (lcms's TYPE_CMYK_8); YCCK already turned into CMYK */
  data: Uint8ClampedArray;
  width: number;
  height: number;
  /** the file's colour space */
  colorSpace: 'cmyk' | 'ycck';
  /** the file had an Adobe APP14 marker, so its samples were stored inverted and were inverted back */
  adobe: boolean;
}

/** The CMYK samples of a CMYK or YCCK JPEG, for conversion to sRGB through its (or a default) profile. */
export async function decodeJpegCmyk(bytes: Uint8Array, { scale = 1 }: DecodeJpegOptions = {}): Promise<CmykRaster> {
  const { r, data } = await decodeAt(bytes, scale, true, 'JPEG decode');
  return { data, width: r.width, height: r.height, colorSpace: r.jpegColorSpace === 5 ? 'ycck' : 'cmyk', adobe: r.adobe };
}

export const instances = [libjpeg];
