// Types shared by the codec table (main thread) and the codecs (pool threads).

export interface Dimensions {
  width: number;
  height: number;
}

/** 8-bit RGBA pixels, row-major, no padding. */
export interface Raster {
  data: Uint8ClampedArray;
  width: number;
  height: number;
  /** set by a decoder whose format has no alpha: every alpha value is 255 (nothing to flatten) */
  opaque?: boolean;
  /** what the status should say about this decode (e.g. "first frame of 12"), from the decoder */
  notes?: string[];
  /** the decoder already converted the pixels to sRGB (CMYK): the source's profile no longer describes them */
  srgb?: boolean;
}

/** A clean, short error for one image; the message is safe to show to API users. */
export class CodecError extends Error {
  override name = 'CodecError';
}

export interface EncodeOptions {
  /** 1-100; lossy formats only (the PNG row keeps its palette rule) */
  quality: number;
  /** JPEG only: progressive scans rather than sequential */
  progressive?: boolean;
}

/** A decode at 1/scale of each side (JPEG's DCT scaling); 1 is full size. */
export type DecodeScale = 1 | 2 | 4 | 8;

export interface DecodeOptions {
  /** only rows with a `scaledDecode` column honour it; others always decode at full size */
  scale?: DecodeScale;
}

/** The WASM half of a row: loaded only inside pool threads. */
export interface Codec {
  decode(bytes: Uint8Array, options?: DecodeOptions): Promise<Raster>;
  encode(image: Raster, options: EncodeOptions): Promise<Uint8Array>;
  /** an encoder holding far less memory (the row's `memory.encodeLean`), for images the usual one would not fit */
  encodeLean?(image: Raster, options: EncodeOptions): Promise<Uint8Array>;
  /** the encoder's default settings (what `encode` uses, quality aside) */
  defaults: object;
}

/**
 * Bytes a step holds at its peak for an image of this many pixels: the codec instance's WASM
 * memory (which grows to fit the image) plus, for a decoder, the pixels copied out of it.
 * Measured with bench/diag/codec-memory.ts. An encoder's cost may also depend on what it is told
 * (JPEG: the quality picks the subsampling); without it, the worst case.
 */
export type MemoryCost = (pixels: number, encode?: EncodeOptions) => number;
