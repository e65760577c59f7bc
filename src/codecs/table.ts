// The codec table: one row per format, and every part of the service that needs to know about a
// format asks it: detection by magic bytes, the size the header declares (pixel limit and memory
// budget), EXIF orientation, metadata stripping, the ICC profile, MIME type and file extension,
// what decoding and encoding cost in memory, and the codec itself. Adding a format is adding a row.
//
// This module is safe on the main thread: every column is a plain function or number. The WASM
// decoder and encoder of each format join its row inside pool threads only (workers/codecs.ts),
// so nothing here imports the worker half.
import { avifDimensions, detectAvif, readAvifIcc } from './avif.js';
import { detectJpeg, embedJpegIcc, estimateJpegQuality, jpegDimensions, jpegHasEnd, readExifOrientation, readJpegIcc, stripJpeg } from './jpeg.js';
import { detectPng, embedPngIcc, pngDimensions, readPngIcc, stripPng } from './png.js';
import type { ImageFormat } from './formats.js';
import type { Dimensions, MemoryCost } from './types.js';
import { detectWebp, embedWebpIcc, readWebpIcc, stripWebp, webpDimensions } from './webp.js';

export type { ImageFormat };

/** PNGs up to this size are palette-reduced (libimagequant); larger ones are written losslessly. */
export const PNG_PALETTE_MAX_PIXELS = 8_000_000;

export interface CodecRow {
  format: ImageFormat;
  mime: string;
  extension: string;
  /** whether a quality (1-100) steers its encoder; PNG keeps its own palette rule */
  lossy: boolean;
  detect(bytes: Uint8Array): boolean;
  /** the size the header declares, read without decoding; null when unreadable */
  dimensions(bytes: Uint8Array): Dimensions | null;
  /** EXIF orientation (1..8) the decoder leaves unapplied; 1 for formats without it */
  orientation(bytes: Uint8Array): number;
  /** the same coded image without EXIF/GPS, XMP, text and comments (ICC kept); null if it cannot be walked safely */
  stripMetadata(bytes: Uint8Array): Uint8Array | null;
  readIcc(bytes: Uint8Array): Promise<Uint8Array | null>;
  /** the encoded image carrying this ICC profile; null when the format's writer cannot carry one */
  embedIcc: ((encoded: Uint8Array, icc: Uint8Array) => Promise<Uint8Array>) | null;
  /** the quality the file's own quantisation shows (JPEG pass-through); null when not estimable */
  sourceQuality: ((bytes: Uint8Array) => number | null) | null;
  /** peak bytes held while decoding (WASM memory + the pixels copied out) and encoding (WASM memory) */
  memory: { decode: MemoryCost; encode: MemoryCost };
}

const MiB = 1024 * 1024;
const noOrientation = () => 1;
/** WASM memory bytes: a fixed part plus bytes per pixel (bench/diag/codec-memory.ts, 0.75 and 6.75 MP). */
const linear = (fixed: number, perPixel: number): MemoryCost => (pixels) => fixed + perPixel * pixels;
/** A decoder's WASM memory plus the 4 bytes per pixel of RGBA it copies out. */
const decoding = (fixed: number, perPixel: number): MemoryCost => linear(fixed, perPixel + 4);

export const CODECS: Readonly<Record<ImageFormat, CodecRow>> = {
  jpeg: {
    format: 'jpeg',
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
    // MozJPEG's encoder holds the RGBA input, an RGB copy and the whole image's coefficients
    // (Huffman optimisation needs them all before writing): 16 B/px.
    memory: { decode: decoding(16 * MiB, 4.8), encode: linear(5 * MiB, 16) },
  },
  png: {
    format: 'png',
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
    // libimagequant's histogram and remapping take up to ~72 B/px on photos (48 B/px is
    // quantisation alone); OxiPNG ~26 B/px. Hence the palette is only tried up to
    // PNG_PALETTE_MAX_PIXELS (workers/codecs/png.ts); larger images go straight to OxiPNG.
    memory: { decode: decoding(2 * MiB, 7.3), encode: (px) => (px <= PNG_PALETTE_MAX_PIXELS ? linear(15 * MiB, 72)(px) : linear(11 * MiB, 26)(px)) },
  },
  webp: {
    format: 'webp',
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
    memory: { decode: decoding(16 * MiB, 4), encode: linear(5 * MiB, 16) },
  },
  avif: {
    format: 'avif',
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
    // libavif decodes to YUV planes, then converts (39 B/px); libaom keeps reference frames (29 B/px)
    memory: { decode: decoding(6 * MiB, 39), encode: linear(13 * MiB, 29.5) },
  },
};

export const FORMATS = Object.keys(CODECS) as ImageFormat[];
export const ROWS: readonly CodecRow[] = Object.values(CODECS);

/** The row whose detector accepts these bytes (magic bytes only, never extension or Content-Type), or null. */
export function rowFor(bytes: Uint8Array): CodecRow | null {
  return ROWS.find((r) => r.detect(bytes)) ?? null;
}

export const detectFormat = (bytes: Uint8Array): ImageFormat | null => rowFor(bytes)?.format ?? null;

export const isImageFormat = (s: string): s is ImageFormat => Object.hasOwn(CODECS, s);

export function rowForExtension(extension: string): CodecRow | null {
  return ROWS.find((r) => r.extension === extension) ?? null;
}
