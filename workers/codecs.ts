// The codec registry: one row per format with its magic-byte detector, decoder, encoder and
// default options. Adding a format is adding a row to CODECS.
//
// Runs inside pool threads only. Every WASM module is compiled once per thread, lazily, from the
// .wasm bytes read out of node_modules (createRequire(import.meta.url).resolve works on Node, Bun
// and Deno alike; no fetch, no file URLs handed to the codecs). Console output from the codecs
// (libjpeg warnings such as "quantization tables are too coarse for baseline JPEG", Rust panic
// messages) is captured per call and never printed: it becomes part of an error message or is
// dropped.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { detectFormat, jpegHasEnd, readExifOrientation, type ImageFormat } from '../src/codecs/sniff.js';

export type { ImageFormat };

/** 8-bit RGBA pixels, row-major, no padding. */
export interface Raster {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

/** A clean, short error for one image; the message is safe to show to API users. */
export class CodecError extends Error {
  override name = 'CodecError';
}

export interface MozJpegOptions {
  quality: number;
  baseline: boolean;
  arithmetic: boolean;
  progressive: boolean;
  optimize_coding: boolean;
  smoothing: number;
  color_space: number;
  quant_table: number;
  trellis_multipass: boolean;
  trellis_opt_zero: boolean;
  trellis_opt_table: boolean;
  trellis_loops: number;
  auto_subsample: boolean;
  chroma_subsample: number;
  separate_chroma_quality: boolean;
  chroma_quality: number;
}

/**
 * MozJPEG settings. Measured on the nine 1500x937 corpus photos, one thread, decode+encode,
 * against sharp({mozjpeg:true}) at quality 50 (sharp: progressive, trellis, quant table 3),
 * interleaved per image, 4 rounds, every output decoded and its size checked:
 *
 *   | settings                          | speed vs sharp-mozjpeg | bytes vs sharp-mozjpeg |
 *   | library defaults (progressive)    | 0.55x                  | 1.0016x                |
 *   | progressive:false (16-bit DQT)    | 1.07x                  | 1.0230x                |
 *   | progressive:false, baseline:true  | 1.06x   <- chosen      | 1.0215x                |
 *
 * Earlier non-interleaved runs (noisier): trellis_opt_zero/opt_table ~1.0x / 1.019-1.021x;
 * optimize_coding:false 0.75x / 1.06x; trellis_multipass 0.98x / 1.028x. Our bytes are ~0.76x
 * of sharp's default libjpeg-turbo at the same quality.
 *
 * Chosen: sequential (non-progressive) Huffman-optimised with trellis quantisation (one loop),
 * MozJPEG's default quant table 3 (the same one sharp's mozjpeg preset uses), and baseline:true so
 * the quant tables are clamped to 8 bits: at q50 table 3 has entries > 255, which without the
 * clamp produce an "extended sequential" (SOF1, 16-bit DQT) file that some decoders reject; the
 * clamp is what sharp/libjpeg do too. Never set trellis_loops to 0: MozJPEG then emits garbage
 * without an error.
 */
export const MOZJPEG_OPTIONS: MozJpegOptions = {
  quality: 50,
  baseline: true,
  arithmetic: false,
  progressive: false,
  optimize_coding: true,
  smoothing: 0,
  color_space: 3, // YCbCr
  quant_table: 3,
  trellis_multipass: false,
  trellis_opt_zero: false,
  trellis_opt_table: false,
  trellis_loops: 1,
  auto_subsample: true,
  chroma_subsample: 2,
  separate_chroma_quality: false,
  chroma_quality: 50,
};

/** WebP: lossy at quality 50, libwebp's defaults otherwise (method 4). */
export const WEBP_OPTIONS = {
  quality: 50,
  target_size: 0,
  target_PSNR: 0,
  method: 4,
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

/**
 * PNG rule. libimagequant is asked for quality min 65 / target 80 (its 0-100 scale, derived from
 * the mean square error of the remapped image, the same scale as pngquant's --quality 65-80), at
 * speed 4 with full Floyd-Steinberg dithering (what sharp's palette:true uses: effort 7 = speed 4,
 * dither 1.0). It picks the fewest colours (<= 256, alpha kept in the palette) that reach the
 * target. When even 256 colours cannot reach the minimum, libimagequant reports QualityTooLow and
 * the palette would visibly hurt (typically photos with smooth gradients or a soft alpha ramp):
 * then the image is written losslessly with OxiPNG instead. Both paths end in OxiPNG level 2.
 */
export const PNG_OPTIONS = {
  minQuality: 65,
  targetQuality: 80,
  speed: 4,
  dithering: 1.0,
  oxipngLevel: 2,
  /** lets OxiPNG change the colour of fully transparent pixels (invisible) */
  optimiseAlpha: true,
};

export interface PngEncodeReport {
  bytes: Uint8Array;
  mode: 'palette' | 'lossless';
  /** libimagequant's achieved quality (0-100) for the palette, null when not reached */
  quality: number | null;
  colours: number | null;
}

export interface EncodeOverrides {
  /** quality for lossy formats (JPEG only: JPEG_QUALITY) */
  quality?: number;
}

export interface CodecRow {
  format: ImageFormat;
  mime: string;
  extension: string;
  detect(bytes: Uint8Array): boolean;
  /** EXIF orientation (1..8) the decoder leaves unapplied; 1 for formats without it */
  orientation(bytes: Uint8Array): number;
  decode(bytes: Uint8Array): Promise<Raster>;
  encode(image: Raster, overrides?: EncodeOverrides): Promise<Uint8Array>;
  defaults: object;
}

// ---------------------------------------------------------------------------------------------
// Loading: compile each .wasm once per thread; instantiate lazily; re-instantiate after a trap.

const require = createRequire(import.meta.url);
const compiled = new Map<string, WebAssembly.Module>();

function wasmModule(spec: string): WebAssembly.Module {
  let m = compiled.get(spec);
  if (!m) {
    m = new WebAssembly.Module(readFileSync(require.resolve(spec)));
    compiled.set(spec, m);
  }
  return m;
}

// Some codec glue builds `new ImageData(...)`, which Node lacks.
if (typeof (globalThis as { ImageData?: unknown }).ImageData === 'undefined') {
  (globalThis as Record<string, unknown>).ImageData = class ImageData {
    constructor(
      readonly data: Uint8ClampedArray,
      readonly width: number,
      readonly height: number,
    ) {}
  };
}

/** Lines the codecs printed during the current call (kept out of the service's logs). */
const codecOutput: string[] = [];
const capture = (line: unknown) => {
  if (codecOutput.length < 20) codecOutput.push(String(line));
};

/** Runs fn with console.* silenced (wasm-bindgen glue prints Rust panics with console.error). */
function quietly<T>(fn: () => T): T {
  const c = console as unknown as Record<string, unknown>;
  const saved = { log: c.log, warn: c.warn, error: c.error, info: c.info, debug: c.debug };
  c.log = c.warn = c.error = c.info = c.debug = capture;
  try {
    return fn();
  } finally {
    Object.assign(c, saved);
  }
}

class Lazy<T> {
  private value: Promise<T> | undefined;
  private generation = 0;
  constructor(private readonly make: (generation: number) => Promise<T>) {}
  get(): Promise<T> {
    this.value ??= this.make(this.generation).catch((err: unknown) => {
      this.value = undefined;
      throw err;
    });
    return this.value;
  }
  /** Drops the instance (after an abort or trap its memory may be inconsistent). */
  reset(): void {
    this.value = undefined;
    this.generation++;
  }
}

type EmscriptenFactory<M> = (opts: Record<string, unknown>) => Promise<M>;

/**
 * The embind glue shipped with the @jsquash codecs copies every input buffer into WASM memory
 * one byte at a time (std::string marshalling); for a 1.4-megapixel RGBA image that loop is
 * about a sixth of a MozJPEG encode. The same glue with the loop replaced by one
 * `HEAPU8.set` produces byte-identical output (bench/diag/embind-copy.ts). The copy is loaded
 * from a data: URL; if the pattern is gone (a new codec release) or the runtime cannot import
 * it, the shipped glue is used as it is.
 */
const EMBIND_BYTE_LOOP = 'for(var i=0;i<length;++i){HEAPU8[ptr+i]=value[i]}';
/** Glue files that were loaded with the faster copy (tests check the patch still applies). */
export const patchedGlue = new Set<string>();

async function importGlue<M>(glue: string): Promise<EmscriptenFactory<M>> {
  const path = require.resolve(glue);
  const source = readFileSync(path, 'utf8');
  if (source.includes(EMBIND_BYTE_LOOP)) {
    const patched = source.replace(EMBIND_BYTE_LOOP, 'HEAPU8.set(value,ptr)');
    try {
      const url = `data:text/javascript;base64,${Buffer.from(patched).toString('base64')}`;
      const factory = (await import(url)).default as EmscriptenFactory<M>;
      patchedGlue.add(glue);
      return factory;
    } catch {
      // fall through to the shipped glue
    }
  }
  return (await import(pathToFileURL(path).href)).default as EmscriptenFactory<M>;
}

async function emscripten<M>(glue: string, wasm: string): Promise<M> {
  const factory = await importGlue<M>(glue);
  const module = wasmModule(wasm);
  return factory({
    noInitialRun: true,
    // The wasm comes from instantiateWasm; this only keeps the glue from resolving a file URL
    // against import.meta.url (a data: URL when patched).
    locateFile: (file: string) => file,
    print: capture,
    printErr: capture,
    instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) {
      const instance = new WebAssembly.Instance(module, imports);
      done(instance);
      return instance.exports;
    },
  });
}

/** A fresh copy of a wasm-bindgen module (its glue keeps one instance in module state, so a
 * new generation is imported under a distinct URL). */
async function wasmBindgen<M extends { initSync(m: unknown): unknown }>(glue: string, wasm: string, generation: number, objectInit: boolean): Promise<M> {
  const url = pathToFileURL(require.resolve(glue)).href + (generation ? `?generation=${generation}` : '');
  const mod = (await import(url)) as M;
  const module = wasmModule(wasm);
  quietly(() => mod.initSync(objectInit ? { module } : module));
  return mod;
}

interface MozJpegDec {
  decode(data: Uint8Array, preserveOrientation: boolean): Raster | null;
}
interface MozJpegEnc {
  encode(data: Uint8ClampedArray, width: number, height: number, opts: MozJpegOptions): Uint8Array;
}
interface WebpDec {
  decode(data: Uint8Array): Raster | null;
}
interface WebpEnc {
  encode(data: Uint8ClampedArray, width: number, height: number, opts: typeof WEBP_OPTIONS): Uint8Array | null;
}
interface SquooshPng {
  initSync(m: unknown): unknown;
  decode(data: Uint8Array): Raster;
}
interface SquooshOxipng {
  initSync(m: unknown): unknown;
  optimise(data: Uint8Array, level: number, interlace: boolean, optimiseAlpha: boolean): Uint8Array;
  optimise_raw(data: Uint8ClampedArray, width: number, height: number, level: number, interlace: boolean, optimiseAlpha: boolean): Uint8Array;
}
interface LiqResult {
  free(): void;
  getPalette(): unknown[];
  getPaletteIndices(data: Uint8ClampedArray, width: number, height: number): Uint8Array;
  getQuantizationQuality(): number;
  setDithering(level: number): void;
}
interface LiqQuantizer {
  free(): void;
  setQuality(min: number, target: number): void;
  setSpeed(speed: number): void;
  quantizeImage(data: Uint8ClampedArray, width: number, height: number): LiqResult;
}
interface LibImageQuant {
  initSync(m: unknown): unknown;
  ImageQuantizer: new () => LiqQuantizer;
  encode_palette_to_png(indices: Uint8Array, palette: unknown[], width: number, height: number): Uint8Array;
}

const jpegDec = new Lazy(() => emscripten<MozJpegDec>('@jsquash/jpeg/codec/dec/mozjpeg_dec.js', '@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'));
const jpegEnc = new Lazy(() => emscripten<MozJpegEnc>('@jsquash/jpeg/codec/enc/mozjpeg_enc.js', '@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm'));
const webpDec = new Lazy(() => emscripten<WebpDec>('@jsquash/webp/codec/dec/webp_dec.js', '@jsquash/webp/codec/dec/webp_dec.wasm'));
const webpEnc = new Lazy(() => {
  // Pick the SIMD build when this runtime validates it (Node, Bun and Deno all do today).
  const simd = WebAssembly.validate(readFileSync(require.resolve('@jsquash/webp/codec/enc/webp_enc_simd.wasm')));
  const name = simd ? 'webp_enc_simd' : 'webp_enc';
  return emscripten<WebpEnc>(`@jsquash/webp/codec/enc/${name}.js`, `@jsquash/webp/codec/enc/${name}.wasm`);
});
const pngCodec = new Lazy((g) => wasmBindgen<SquooshPng>('@jsquash/png/codec/pkg/squoosh_png.js', '@jsquash/png/codec/pkg/squoosh_png_bg.wasm', g, false));
const oxipng = new Lazy((g) => wasmBindgen<SquooshOxipng>('@jsquash/oxipng/codec/pkg/squoosh_oxipng.js', '@jsquash/oxipng/codec/pkg/squoosh_oxipng_bg.wasm', g, false));
const imagequant = new Lazy((g) => wasmBindgen<LibImageQuant>('libimagequant-wasm/wasm/libimagequant_wasm.js', 'libimagequant-wasm/wasm/libimagequant_wasm_bg.wasm', g, true));

/** Runs one synchronous codec call: output captured, failures turned into CodecError, and the
 * instance dropped after anything thrown from inside WASM (abort, trap, exit). */
async function call<M, T>(lazy: Lazy<M>, what: string, fn: (m: M) => T): Promise<T> {
  const m = await lazy.get();
  codecOutput.length = 0;
  try {
    return quietly(() => fn(m));
  } catch (err) {
    if (err instanceof CodecError) throw err;
    lazy.reset();
    const detail = codecOutput.at(-1) ?? (err instanceof Error ? err.message : typeof err === 'string' ? err : '');
    throw new CodecError(`${what} failed${detail ? `: ${detail.slice(0, 200)}` : ''}`);
  }
}

function checkRaster(img: Raster | null | undefined, what: string): Raster {
  if (!img || !(img.width > 0) || !(img.height > 0) || img.data.length !== img.width * img.height * 4) {
    throw new CodecError(`${what} failed: ${codecOutput.at(-1) ?? 'no image'}`);
  }
  return { data: img.data, width: img.width, height: img.height };
}

function ownBytes(b: Uint8Array): Uint8Array {
  // outputs must own their whole buffer so they can be transferred, never a view into wasm memory
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer ? b : b.slice();
}

// ---------------------------------------------------------------------------------------------
// PNG: palette (libimagequant) then OxiPNG, or lossless OxiPNG when the palette would hurt.

export async function encodePng(image: Raster): Promise<PngEncodeReport> {
  const o = PNG_OPTIONS;
  const { width, height, data } = image;
  const palette = await call(imagequant, 'PNG palette reduction', (liq) => {
    const q = new liq.ImageQuantizer();
    let r: LiqResult | undefined;
    try {
      q.setQuality(o.minQuality, o.targetQuality);
      q.setSpeed(o.speed);
      try {
        r = q.quantizeImage(data, width, height);
      } catch (err) {
        if (/QualityTooLow/i.test(String(err))) return null; // the rule: fall back to lossless
        throw err;
      }
      r.setDithering(o.dithering);
      const colours = r.getPalette();
      const indices = r.getPaletteIndices(data, width, height);
      const quality = Math.round(r.getQuantizationQuality() * 100);
      return { png: liq.encode_palette_to_png(indices, colours, width, height), quality, colours: colours.length };
    } finally {
      r?.free();
      q.free();
    }
  });
  if (palette) {
    const bytes = await call(oxipng, 'PNG encode', (m) => m.optimise(palette.png, o.oxipngLevel, false, o.optimiseAlpha));
    return { bytes: ownBytes(bytes), mode: 'palette', quality: palette.quality, colours: palette.colours };
  }
  const bytes = await call(oxipng, 'PNG encode', (m) => m.optimise_raw(data, width, height, o.oxipngLevel, false, o.optimiseAlpha));
  return { bytes: ownBytes(bytes), mode: 'lossless', quality: null, colours: null };
}

// ---------------------------------------------------------------------------------------------
// The table.

export const CODECS: Record<ImageFormat, CodecRow> = {
  jpeg: {
    format: 'jpeg',
    mime: 'image/jpeg',
    extension: 'jpg',
    detect: (b) => detectFormat(b) === 'jpeg',
    orientation: readExifOrientation,
    async decode(bytes) {
      // libjpeg decodes a cut-off file into a grey-padded image with only a warning: refuse it.
      if (!jpegHasEnd(bytes)) throw new CodecError('JPEG decode failed: truncated (no end-of-image marker)');
      const img = checkRaster(await call(jpegDec, 'JPEG decode', (m) => m.decode(bytes, false)), 'JPEG decode');
      // Other libjpeg warnings (e.g. extraneous bytes before a marker) are harmless; running out of
      // scan data is not: the rest of the picture would be grey.
      const cut = codecOutput.find((l) => /premature end/i.test(l));
      if (cut) throw new CodecError(`JPEG decode failed: truncated (${cut})`);
      return img;
    },
    async encode(img, overrides) {
      const opts = { ...MOZJPEG_OPTIONS, ...(overrides?.quality ? { quality: overrides.quality, chroma_quality: overrides.quality } : {}) };
      return ownBytes(await call(jpegEnc, 'JPEG encode', (m) => m.encode(img.data, img.width, img.height, opts)));
    },
    defaults: MOZJPEG_OPTIONS,
  },
  png: {
    format: 'png',
    mime: 'image/png',
    extension: 'png',
    detect: (b) => detectFormat(b) === 'png',
    orientation: () => 1,
    async decode(bytes) {
      return checkRaster(await call(pngCodec, 'PNG decode', (m) => m.decode(bytes)), 'PNG decode');
    },
    async encode(img) {
      return (await encodePng(img)).bytes;
    },
    defaults: PNG_OPTIONS,
  },
  webp: {
    format: 'webp',
    mime: 'image/webp',
    extension: 'webp',
    detect: (b) => detectFormat(b) === 'webp',
    orientation: () => 1,
    async decode(bytes) {
      return checkRaster(await call(webpDec, 'WebP decode', (m) => m.decode(bytes)), 'WebP decode');
    },
    async encode(img) {
      const out = await call(webpEnc, 'WebP encode', (m) => m.encode(img.data, img.width, img.height, WEBP_OPTIONS));
      if (!out) throw new CodecError(`WebP encode failed: ${codecOutput.at(-1) ?? 'no output'}`);
      return ownBytes(out);
    },
    defaults: WEBP_OPTIONS,
  },
};

/** The row whose detector accepts these bytes, or null. */
export function codecFor(bytes: Uint8Array): CodecRow | null {
  for (const row of Object.values(CODECS)) if (row.detect(bytes)) return row;
  return null;
}

/** Instantiates every codec in this thread (used to warm a pool up and to prove it works). */
export async function warmUp(): Promise<void> {
  await Promise.all([jpegDec, jpegEnc, webpDec, webpEnc, pngCodec, oxipng, imagequant].map((l: Lazy<unknown>) => l.get()));
}

// ---------------------------------------------------------------------------------------------
// EXIF orientation applied to the pixels.

/**
 * Returns the image as it should be displayed for an EXIF orientation (1..8): 2 mirror, 3 rotate
 * 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 anticlockwise.
 */
export function applyOrientation(image: Raster, orientation: number): Raster {
  if (orientation < 2 || orientation > 8) return image;
  const { width: w, height: h } = image;
  const src = new Uint32Array(image.data.buffer.slice(image.data.byteOffset, image.data.byteOffset + w * h * 4));
  const swap = orientation >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const dst = new Uint32Array(w * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let dx: number, dy: number;
      switch (orientation) {
        case 2: dx = w - 1 - x; dy = y; break;
        case 3: dx = w - 1 - x; dy = h - 1 - y; break;
        case 4: dx = x; dy = h - 1 - y; break;
        case 5: dx = y; dy = x; break;
        case 6: dx = h - 1 - y; dy = x; break;
        case 7: dx = h - 1 - y; dy = w - 1 - x; break;
        default: dx = y; dy = w - 1 - x; break; // 8
      }
      dst[dy * ow + dx] = src[row + x]!;
    }
  }
  return { data: new Uint8ClampedArray(dst.buffer), width: ow, height: oh };
}
