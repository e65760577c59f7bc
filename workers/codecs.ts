// The codec table as pool threads see it: every row of src/codecs/table.ts joined with its WASM
// decoder and encoder (instantiated lazily, on first use), plus what the worker needs around it.
// Runs inside pool threads only. A new format adds its row to src/codecs/table.ts and its codec
// to WASM_CODECS below.
import { ROWS, type CodecRow, type ImageFormat } from '../src/codecs/table.js';
import type { Codec } from '../src/codecs/types.js';
import { avif, instances as avifInstances } from './codecs/avif.js';
import { instances as jpegInstances, jpeg } from './codecs/jpeg.js';
import { instances as pngInstances, png } from './codecs/png.js';
import { instances as resizeInstances } from './codecs/resize.js';
import { instances as webpInstances, webp } from './codecs/webp.js';

export { CodecError, type Raster } from '../src/codecs/types.js';
export type { ImageFormat };
export { applyOrientation } from './codecs/orientation.js';
export { MOZJPEG_OPTIONS, type MozJpegOptions } from './codecs/jpeg.js';
export { encodePng, PNG_OPTIONS, type PngEncodeReport, type PngOptions } from './codecs/png.js';
export { WEBP_OPTIONS } from './codecs/webp.js';
export { AVIF_OPTIONS } from './codecs/avif.js';
export { resize, RESIZE_OPTIONS } from './codecs/resize.js';
export { grownBytes, instanceStats, patchedGlue, releaseGrown } from './codecs/wasm.js';

export type LoadedRow = CodecRow & Codec;

/** The WASM column of the codec table, one entry per format. */
const WASM_CODECS: Readonly<Record<ImageFormat, Codec>> = { jpeg, png, webp, avif };

export const CODECS = Object.fromEntries(ROWS.map((row) => [row.format, { ...row, ...WASM_CODECS[row.format] }])) as Record<ImageFormat, LoadedRow>;

/** The row whose detector accepts these bytes, or null. */
export function codecFor(bytes: Uint8Array): LoadedRow | null {
  return Object.values(CODECS).find((r) => r.detect(bytes)) ?? null;
}

/** Instantiates every codec in this thread (used to warm a pool up and to prove it works). */
export async function warmUp(): Promise<void> {
  await Promise.all([...jpegInstances, ...pngInstances, ...webpInstances, ...avifInstances, ...resizeInstances].map((l) => l.get()));
}
