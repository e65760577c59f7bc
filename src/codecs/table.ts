// The codec table: one row per format, and every part of the service that needs to know about a
// format asks it: detection by magic bytes, the size the header declares (pixel limit and memory
// budget), EXIF orientation, metadata stripping, the ICC profile, MIME type and file extension,
// what decoding and encoding cost in memory. Adding a format is adding a row (and its codec in
// workers/codecs.ts).
//
// This module is safe on the main thread: every column is a plain function or number. The WASM
// decoder and encoder of each format join its row inside pool threads only (workers/codecs.ts),
// so nothing here imports the worker half.
import { avifDimensions, detectAvif, readAvifIcc } from './avif.js';
import { detectJpeg, embedJpegIcc, estimateJpegQuality, jpegComponents, jpegDimensions, jpegHasEnd, readExifOrientation, readJpegIcc, stripJpeg } from './jpeg.js';
import { detectPng, embedPngIcc, pngDimensions, readPngIcc, stripPng } from './png.js';
import type { ImageFormat, InputFormat, InputOnlyFormat } from './formats.js';
import { jpegFrame, libjpegDecodeBytes } from './jpeg-scale.js';
import type { DecodeScale, Dimensions, MemoryCost } from './types.js';
import { detectWebp, embedWebpIcc, readWebpIcc, stripWebp, webpDimensions } from './webp.js';
import { bmpDimensions, bmpRefusal, detectBmp } from './bmp.js';
import { detectGif, gifDimensions, gifRefusal } from './gif.js';
import { detectHeif, heifDimensions, heifRefusal, readHeifIcc } from './heif.js';
import { detectTiff, readTiffIcc, tiffDimensions, tiffOrientation, tiffRefusal } from './tiff.js';

export type { ImageFormat, InputFormat, InputOnlyFormat };

/** PNGs up to this size are palette-reduced (libimagequant); larger ones are written losslessly. */
export const PNG_PALETTE_MAX_PIXELS = 8_000_000;

export interface CodecRow {
  format: InputFormat;
  /** the format's name in messages and notes ("converted from HEIC") */
  label: string;
  mime: string;
  extension: string;
  /** whether a quality (1-100) steers its encoder; PNG keeps its own palette rule */
  lossy: boolean;
  detect(bytes: Uint8Array): boolean;
  /** the size the header declares, read without decoding; null when unreadable */
  dimensions(bytes: Uint8Array): Dimensions | null;
  /** a reason (safe to show) to refuse the file from its header alone, before any decoding; null when it may be decoded */
  refusal: ((bytes: Uint8Array) => string | null) | null;
  /**
   * input-only formats: what `format=original` becomes once the decoded pixels show whether
   * there is alpha (JPEG when opaque, PNG with alpha; GIF always PNG). null: the format itself.
   */
  originalAs: ((opaque: boolean) => ImageFormat) | null;
  /** EXIF orientation (1..8) the decoder leaves unapplied; 1 for formats without it */
  orientation(bytes: Uint8Array): number;
  /** the same coded image without EXIF/GPS, XMP, text and comments (ICC kept); null if it cannot be walked safely */
  stripMetadata(bytes: Uint8Array): Uint8Array | null;
  readIcc(bytes: Uint8Array): Promise<Uint8Array | null>;
  /** the encoded image carrying this ICC profile; null when the format's writer cannot carry one */
  embedIcc: ((encoded: Uint8Array, icc: Uint8Array) => Promise<Uint8Array>) | null;
  /** the quality the file's own quantisation shows (JPEG pass-through); null when not estimable */
  sourceQuality: ((bytes: Uint8Array) => number | null) | null;
  /**
   * peak bytes held while decoding (WASM memory + the pixels copied out) and encoding (WASM memory);
   * `decodeOf`, when present, picks the decoder's cost for these bytes (a CMYK JPEG takes another decoder)
   */
  memory: { decode: MemoryCost; encode: MemoryCost; decodeOf?: (bytes: Uint8Array) => MemoryCost; encodeLean?: MemoryCost };
  /**
   * the decoder shrinks on load (1/2, 1/4, 1/8 of each side) the files it `accepts`: peak bytes
   * decoding these bytes at 1/scale, used instead of memory.decode; null: always full size
   */
  scaledDecode: { accepts(bytes: Uint8Array): boolean; memory(bytes: Uint8Array, scale: DecodeScale): number | null } | null;
}

/** A row the service also writes. */
export type OutputRow = CodecRow & { format: ImageFormat };

const MiB = 1024 * 1024;
const noOrientation = () => 1;
/** WASM memory bytes: a fixed part plus bytes per pixel (bench/diag/codec-memory.ts, 0.75 and 6.75 MP). */
const linear = (fixed: number, perPixel: number): MemoryCost => (pixels) => fixed + perPixel * pixels;
/** A decoder's WASM memory plus the 4 bytes per pixel of RGBA it copies out. */
const decoding = (fixed: number, perPixel: number): MemoryCost => linear(fixed, perPixel + 4);

/**
 * MozJPEG's encode (wasm/mozjpeg), measured by bench/diag/mozjpeg-encoder.ts as WASM memory after
 * one encode in a fresh instance at 0.5, 2 and 12 MP (a noisy photo, so large outputs): 0.7 MiB
 * fixed plus two coefficient buffers, 6.0 B/px at 4:2:0 (quality < 80), 8.0 at 4:2:2 (80-89),
 * 12.0 at 4:4:4 (90+); progressive adds the candidate scans MozJPEG's scan search keeps, up to
 * 0.5, 1.2 and 7.3 B/px more (at quality 79, 89, 100). @jsquash's build held 15.9 B/px at
 * quality 50 and 23.5 at 90 (the whole RGBA input copied in, and its output grown in place).
 */
export const jpegEncodeMemory: MemoryCost = (pixels, encode) => {
  const quality = encode?.quality ?? 100;
  const coefficients = quality >= 90 ? 12.1 : quality >= 80 ? 8.1 : 6.1;
  const scans = encode && !encode.progressive ? 0 : quality >= 90 ? 7.5 : quality >= 80 ? 1.5 : 0.5;
  return 1 * MiB + pixels * (coefficients + scans);
};

export const CODECS: Readonly<{ [F in ImageFormat]: OutputRow & { format: F } }> = {
  jpeg: {
    format: 'jpeg',
    label: 'JPEG',
    refusal: null,
    originalAs: null,
    mime: 'image/jpeg',
    extension: 'jpg',
    lossy: true,
    detect: detectJpeg,
    dimensions: jpegDimensions,
    orientation: readExifOrientation,
    stripMetadata: stripJpeg,
    readIcc: async (b) => readJpegIcc(b),
    embedIcc: async (b, icc) => embedJpegIcc(b, icc),
    // only a file that is whole may be passed through undecoded
    sourceQuality: (b) => (jpegHasEnd(b) ? estimateJpegQuality(b) : null),
    // MozJPEG's encoder (wasm/mozjpeg, fed by rows: the RGBA stays outside it) holds the whole
    // image's coefficients twice (Huffman optimisation and trellis need them all before writing):
    // jpegEncodeMemory. The decoder is libjpeg-turbo
    // (workers/codecs/libjpeg.ts), whose cost the frame header gives at every scale; memory.decode
    // is its worst full-size cost (progressive 4:4:4 buffers 6 B/px of coefficients), for a frame
    // header jpegFrame cannot read. CMYK/YCCK files are decoded by libjpeg at full size to CMYK
    // samples, then converted to RGBA through LittleCMS 2.19 (wasm/lcms2) or the formula: measured
    // 14.5 B/px with the RGBA out, 6.2 MiB fixed with a profile (bench/diag/input-decoder-memory.ts);
    // a progressive file keeps up to 8 B/px more of coefficients, hence 22.
    memory: { decode: decoding(2 * MiB, 10), encode: jpegEncodeMemory, decodeOf: (b) => (jpegComponents(b) === 4 ? decoding(7 * MiB, 22) : decoding(2 * MiB, 10)) },
    scaledDecode: {
      accepts: (b) => jpegComponents(b) !== 4,
      memory: (b, scale) => {
        const frame = jpegFrame(b);
        return frame ? libjpegDecodeBytes(frame, scale, b.length) : null;
      },
    },
  },
  png: {
    format: 'png',
    label: 'PNG',
    refusal: null,
    originalAs: null,
    mime: 'image/png',
    extension: 'png',
    lossy: false,
    detect: detectPng,
    dimensions: pngDimensions,
    orientation: noOrientation,
    stripMetadata: stripPng,
    readIcc: readPngIcc,
    embedIcc: embedPngIcc,
    sourceQuality: null,
    scaledDecode: null,
    // libimagequant's histogram and remapping take up to ~72 B/px on photos (48 B/px is
    // quantisation alone); OxiPNG ~26 B/px. Hence the palette is only tried up to
    // PNG_PALETTE_MAX_PIXELS (workers/codecs/png.ts); larger images go straight to OxiPNG.
    // The lean path (workers/codecs/png-lean.ts) holds the compressed output twice, at most ~8 B/px.
    memory: {
      decode: decoding(2 * MiB, 7.3),
      encode: (px) => (px <= PNG_PALETTE_MAX_PIXELS ? linear(15 * MiB, 72)(px) : linear(11 * MiB, 26)(px)),
      encodeLean: linear(2 * MiB, 8.2),
    },
  },
  webp: {
    format: 'webp',
    label: 'WebP',
    refusal: null,
    originalAs: null,
    mime: 'image/webp',
    extension: 'webp',
    lossy: true,
    detect: detectWebp,
    dimensions: webpDimensions,
    orientation: noOrientation,
    stripMetadata: stripWebp,
    readIcc: async (b) => readWebpIcc(b),
    embedIcc: async (b, icc) => embedWebpIcc(b, icc),
    sourceQuality: null,
    scaledDecode: null,
    memory: { decode: decoding(16 * MiB, 4), encode: linear(5 * MiB, 16) },
  },
  avif: {
    format: 'avif',
    label: 'AVIF',
    refusal: null,
    originalAs: null,
    mime: 'image/avif',
    extension: 'avif',
    lossy: true,
    detect: detectAvif,
    dimensions: avifDimensions,
    // irot/imir transforms are not applied (rare in the wild; libavif leaves them to the caller)
    orientation: noOrientation,
    stripMetadata: () => null,
    readIcc: async (b) => readAvifIcc(b),
    embedIcc: null,
    sourceQuality: null,
    scaledDecode: null,
    // libavif decodes to YUV planes, then converts (39 B/px); libaom keeps reference frames (29 B/px)
    memory: { decode: decoding(6 * MiB, 39), encode: linear(13 * MiB, 29.5) },
  },
};

/** input-only rows are never an encoder's target */
const neverEncoded: MemoryCost = () => 0;
const opaqueAsJpeg = (opaque: boolean): ImageFormat => (opaque ? 'jpeg' : 'png');
/** What every input-only row shares: always converted, so no metadata to strip, no profile to embed, no quality to read, no scaled decode. */
const INPUT_ONLY = { lossy: false, stripMetadata: () => null, embedIcc: null, sourceQuality: null, scaledDecode: null } as const;

/**
 * Input-only rows: decoded, never written. Their decoders are plain JS or WASM from kept npm
 * packages (GIF omggif, TIFF utif2, HEIC libheif-js) or written here (BMP); why each, measured:
 * docs/api.md "Input formats" and docs/performance.md. Decode costs: bench/diag/input-decoder-memory.ts.
 */
export const INPUT_ONLY_CODECS: Readonly<Record<InputOnlyFormat, CodecRow>> = {
  gif: {
    format: 'gif',
    label: 'GIF',
    mime: 'image/gif',
    ...INPUT_ONLY,
    extension: 'gif',
    detect: detectGif,
    dimensions: gifDimensions,
    refusal: gifRefusal,
    // the palette is kept: a GIF of at most 256 colours comes out as a palette PNG
    originalAs: () => 'png',
    orientation: noOrientation,
    readIcc: async () => null,
    // omggif: the first frame's LZW indices painted into the screen's RGBA; other frames never
    // decoded. Measured 5.4 B/px with the RGBA out (bench/diag/input-decoder-memory.ts)
    memory: { decode: decoding(1 * MiB, 1.4), encode: neverEncoded },
  },
  tiff: {
    format: 'tiff',
    label: 'TIFF',
    mime: 'image/tiff',
    ...INPUT_ONLY,
    extension: 'tif',
    detect: detectTiff,
    dimensions: tiffDimensions,
    refusal: tiffRefusal,
    originalAs: opaqueAsJpeg,
    orientation: tiffOrientation,
    readIcc: async (b) => readTiffIcc(b),
    // utif2: a copy of the file, the decompressed samples, then RGBA (and LittleCMS for CMYK).
    // Measured with the RGBA out (bench/diag/input-decoder-memory.ts): 8-bit RGB LZW 10.8 B/px,
    // 16-bit RGB Deflate 20.5, CMYK LZW with a profile 22.1 (8 MiB fixed); 16-bit with a fourth
    // channel and alpha holds 2 B/px more of samples: 24 B/px covers every layout admitted
    memory: { decode: decoding(8 * MiB, 20), encode: neverEncoded },
  },
  bmp: {
    format: 'bmp',
    label: 'BMP',
    mime: 'image/bmp',
    ...INPUT_ONLY,
    extension: 'bmp',
    detect: detectBmp,
    dimensions: bmpDimensions,
    refusal: bmpRefusal,
    originalAs: opaqueAsJpeg,
    orientation: noOrientation,
    readIcc: async () => null,
    // read here, straight from the file into RGBA: measured 6.6 B/px with it, 3 MiB fixed (bench/diag/input-decoder-memory.ts)
    memory: { decode: decoding(3 * MiB, 2.6), encode: neverEncoded },
  },
  heif: {
    format: 'heif',
    label: 'HEIC',
    mime: 'image/heif',
    ...INPUT_ONLY,
    extension: 'heic',
    detect: detectHeif,
    dimensions: heifDimensions,
    refusal: heifRefusal,
    originalAs: opaqueAsJpeg,
    // libheif applies irot/imir itself (heifDimensions reports the turned size)
    orientation: noOrientation,
    readIcc: async (b) => readHeifIcc(b),
    // libheif (libde265): YUV planes, the RGBA it converts to inside WASM, and the copy out:
    // measured 11.7 B/px with the copy (bench/diag/input-decoder-memory.ts); fixed: a fresh
    // instance's initial memory, as the grown one is dropped after a large image
    memory: { decode: decoding(24 * MiB, 7.7), encode: neverEncoded },
  },
};

export const FORMATS = Object.keys(CODECS) as ImageFormat[];
/** The rows of the output formats. */
export const ROWS: readonly OutputRow[] = Object.values(CODECS);
/** Every row a source may match: the output formats, then the input-only ones. */
export const INPUT_ROWS: readonly CodecRow[] = [...ROWS, ...Object.values(INPUT_ONLY_CODECS)];

/** The row whose detector accepts these bytes (magic bytes only, never extension or Content-Type), or null. */
export function rowFor(bytes: Uint8Array): CodecRow | null {
  return INPUT_ROWS.find((r) => r.detect(bytes)) ?? null;
}

export const detectFormat = (bytes: Uint8Array): InputFormat | null => rowFor(bytes)?.format ?? null;

export const isImageFormat = (s: string): s is ImageFormat => Object.hasOwn(CODECS, s);

export function rowForExtension(extension: string): CodecRow | null {
  return ROWS.find((r) => r.extension === extension) ?? null;
}
