// What compressing one image will do and cost, decided from its header alone, before any
// decoding: the format (magic bytes), the declared size (refused above the pixel limit), the
// orientation, the output format and size, the encode settings, and the memory the whole job holds
// at its peak. Made once, by the pool, which admits work against its memory budget with it; the
// pool thread receives it with the bytes and follows it. Plain data (formats by name, no codec
// rows), since a pool task is copied to the thread and cannot carry functions.
import { fitInside, targetFormat, type OutputOptions } from './output-options.js';
import { refusalFor } from './refusals.js';
import { rowFor, CODECS, type ImageFormat, type InputFormat, type OutputRow } from './table.js';
import { CodecError, type Dimensions, type EncodeOptions } from './types.js';

export interface ImagePlan {
  source: InputFormat;
  /** the output format; for an input-only format under format=original, the one when the decoded image has alpha */
  target: ImageFormat;
  /**
   * the output format when the decoded image turns out opaque: input-only formats under
   * format=original (opaque -> JPEG, alpha -> PNG; GIF always PNG), decided by the thread after
   * decoding; else `target`
   */
  opaqueTarget: ImageFormat;
  /** what the target's encoder is told */
  encode: EncodeOptions;
  declared: Dimensions;
  orientation: number;
  /** the declared size after orientation */
  upright: Dimensions;
  output: Dimensions;
  /** peak bytes the job holds, source bytes included, when each grown codec instance is dropped after its step */
  memoryBytes: number;
  /** the same when every instance is kept to the end (and after, for the next image): all steps at once */
  memoryKeepingBytes: number;
  /** the peak with the target's lean encoder (PNG without palette or OxiPNG), when it has one: for images the usual path does not fit */
  memoryLeanBytes: number | null;
}

/**
 * The resizer's WASM memory holds its input, a float copy and the output (measured
 * with bench/diag/codec-memory.ts: 33 B/px of input at 1/2 scale, 22 at 1/8).
 */
export const resizeMemory = (inPixels: number, outPixels: number) => 1024 * 1024 + 22 * inPixels + 46 * outPixels;

/**
 * The integer box factor a downscale starts with before Lanczos3 (workers/codecs/resize.ts): the
 * largest k that still leaves Lanczos3 at least a 1.5x reduction of its own to antialias. The
 * same two-stage shape as sharp's shrink-on-load plus reduce; it spares the resizer all but 1/k²
 * of the pixels (a 24 MP photo to 1600 px wide: k = 2).
 */
export function preShrinkFactor(from: Dimensions, to: Dimensions): number {
  const factor = Math.min(from.width / to.width, from.height / to.height);
  return Math.max(1, Math.floor(factor / 1.5));
}

/** The size an integer box shrink by k gives: partial boxes at the right and bottom edges count. */
export const boxShrunk = ({ width, height }: Dimensions, k: number): Dimensions => ({ width: Math.ceil(width / k), height: Math.ceil(height / k) });

/** Throws CodecError (a message safe to show) for unsupported, unreadable or too large images. */
export function planImage(bytes: Uint8Array, options: OutputOptions, maxPixels: number): ImagePlan {
  const source = rowFor(bytes);
  if (!source) throw new CodecError(refusalFor(bytes));
  const declared = source.dimensions(bytes);
  const pixels = declared ? declared.width * declared.height : 0;
  // the pixel limit first: a format's own refusals come after it
  if (declared && pixels > maxPixels) {
    throw new CodecError(`image too large: ${declared.width}x${declared.height} (${pixels} pixels) exceeds the limit of ${maxPixels} pixels`);
  }
  const refused = source.refusal?.(bytes);
  if (refused) throw new CodecError(refused);
  if (!declared) throw new CodecError(`${source.format.toUpperCase()} decode failed: unreadable header`);
  const orientation = source.orientation(bytes);
  const upright = orientation >= 5 ? { width: declared.height, height: declared.width } : declared;
  const output = fitInside(upright, options.max_width, options.max_height);
  // Input-only formats are always converted; under format=original to what their row says, known
  // only after decoding (alpha or not): the plan names both and holds room for the costlier.
  const convertOriginal = options.format === 'original' ? source.originalAs : null;
  const target: OutputRow = convertOriginal ? CODECS[convertOriginal(false)] : CODECS[targetFormat(source.format as ImageFormat, options.format)];
  const opaqueTarget: OutputRow = convertOriginal ? CODECS[convertOriginal(true)] : target;
  const outPixels = output.width * output.height;
  const resized = outPixels !== pixels;
  const shrunk = boxShrunk(upright, resized ? preShrinkFactor(upright, output) : 1);
  const shrunkPixels = shrunk.width * shrunk.height;
  // The worker drops each grown codec instance (and collects it) after its step, so the job's peak
  // is its largest step, each holding the RGBA it works from (4 B/px) besides its WASM memory.
  // A resize holds the decoded RGBA, its box-shrunk copy, the resizer and the output.
  const steps = [
    (source.memory.decodeOf?.(bytes) ?? source.memory.decode)(pixels),
    orientation >= 2 ? 8 * pixels : 0,
    resized ? 4 * pixels + (shrunkPixels < pixels ? 4 * shrunkPixels : 0) + resizeMemory(shrunkPixels, outPixels) + 4 * outPixels : 0,
    4 * outPixels + Math.max(target.memory.encode(outPixels), opaqueTarget.memory.encode(outPixels)),
  ];
  const memoryBytes = bytes.length + Math.max(...steps);
  const lean = target === opaqueTarget ? target.memory.encodeLean : undefined;
  const memoryLeanBytes = lean ? bytes.length + Math.max(...steps.slice(0, -1), 4 * outPixels + lean(outPixels)) : null;
  const memoryKeepingBytes = bytes.length + steps.reduce((a, b) => a + b, 0);
  return {
    source: source.format, target: target.format, opaqueTarget: opaqueTarget.format, encode: { quality: options.quality },
    declared, orientation, upright, output, memoryBytes, memoryKeepingBytes, memoryLeanBytes,
  };
}
