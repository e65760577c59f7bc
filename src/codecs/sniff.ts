// Header-only inspection of image bytes, for the main thread and for tests: every answer comes
// from the codec table (src/codecs/table.ts). Pure functions over Uint8Array, no WASM.
import { detectFormat, INPUT_ROWS, type ImageFormat, type InputFormat } from './table.js';
import type { Dimensions } from './types.js';

export type { Dimensions, ImageFormat, InputFormat };
export { detectFormat };
export { jpegHasEnd, jpegHasExif, readExifOrientation, estimateJpegQuality } from './jpeg.js';

/** The dimensions the header declares, read without decoding; null when the header is unreadable. */
export function readDimensions(bytes: Uint8Array, format: InputFormat): Dimensions | null {
  return INPUT_ROWS.find((r) => r.format === format)?.dimensions(bytes) ?? null;
}

/**
 * The same image with its privacy metadata (EXIF incl. GPS, XMP, text, comments) removed from
 * the container, the colour profile kept; null when the structure cannot be walked safely.
 */
export function stripMetadata(bytes: Uint8Array, format: InputFormat): Uint8Array | null {
  return INPUT_ROWS.find((r) => r.format === format)?.stripMetadata(bytes) ?? null;
}
