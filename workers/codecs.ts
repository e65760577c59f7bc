// The codec table as pool threads see it: every row of src/codecs/table.ts joined with its WASM
// decoder and encoder (instantiated lazily, on first use), plus what the worker needs around it.
// Runs inside pool threads only. A new format adds its row to src/codecs/table.ts and its codec
// to WASM_CODECS below; an input-only format (never written) its decoder to INPUT_ONLY_DECODERS.
import { INPUT_ONLY_CODECS, ROWS, type CodecRow, type ImageFormat, type InputFormat, type InputOnlyFormat } from '../src/codecs/table.js';
import type { Codec } from '../src/codecs/types.js';
import { avif, instances as avifInstances } from './codecs/avif.js';
import { bmp } from './codecs/bmp.js';
import { gif } from './codecs/gif.js';
import { heif } from './codecs/heif.js';
import { instances as jpegInstances, jpeg } from './codecs/jpeg.js';
import { instances as pngInstances, png } from './codecs/png.js';
import { instances as resizeInstances } from './codecs/resize.js';
import { tiff } from './codecs/tiff.js';
import { instances as webpInstances, webp } from './codecs/webp.js';

export { CodecError, type Raster } from '../src/codecs/types.js';
export type { ImageFormat };
export { applyOrientation } from './codecs/orientation.js';
export { MOZJPEG_OPTIONS, type MozJpegOptions } from './codecs/jpeg.js';
export { encodePng, PNG_OPTIONS, type PngEncodeReport, type PngOptions } from './codecs/png.js';
export { WEBP_OPTIONS } from './codecs/webp.js';
export { AVIF_OPTIONS } from './codecs/avif.js';
export { resize } from './codecs/resize.js';
export { grownBytes, instanceStats, patchedGlue, releaseGrown } from './codecs/wasm.js';

export type LoadedRow = CodecRow & Codec & { format: ImageFormat };
/** A row a source may match: an output format's, or an input-only one with its decoder alone. */
export type SourceRow = CodecRow & Pick<Codec, 'decode'>;

/** The WASM column of the codec table, one entry per format. */
const WASM_CODECS: Readonly<Record<ImageFormat, Codec>> = { jpeg, png, webp, avif };

export const CODECS = Object.fromEntries(ROWS.map((row) => [row.format, { ...row, ...WASM_CODECS[row.format] }])) as Record<ImageFormat, LoadedRow>;

/** The decoder column of the input-only rows (plain JS, or WASM loaded on first use). */
const INPUT_ONLY_DECODERS: Readonly<Record<InputOnlyFormat, Pick<Codec, 'decode'>>> = { gif, tiff, bmp, heif };

const INPUT_ONLY_SOURCES = Object.fromEntries(
  Object.values(INPUT_ONLY_CODECS).map((row) => [row.format, { ...row, decode: (b: Uint8Array) => INPUT_ONLY_DECODERS[row.format as InputOnlyFormat].decode(b) }]),
) as Record<InputOnlyFormat, SourceRow>;

/** Every row a source may match, joined with its decoder. */
export const SOURCES: Readonly<Record<InputFormat, SourceRow>> = { ...CODECS, ...INPUT_ONLY_SOURCES };

/** The row whose detector accepts these bytes, or null. */
export function codecFor(bytes: Uint8Array): LoadedRow | null {
  return Object.values(CODECS).find((r) => r.detect(bytes)) ?? null;
}

/** Instantiates every codec in this thread (used to warm a pool up and to prove it works). */
export async function warmUp(): Promise<void> {
  await Promise.all([...jpegInstances, ...pngInstances, ...webpInstances, ...avifInstances, ...resizeInstances].map((l) => l.get()));
}
