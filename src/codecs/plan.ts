// What compressing one image will do and cost, decided from its header alone, before any
// decoding: the format (magic bytes), the declared size (refused above the pixel limit), the
// orientation, the output format and size, the encode settings, and the memory the whole job holds
// at its peak. Made once, by the pool, which admits work against its memory budget with it; the
// pool thread receives it with the bytes and follows it. Plain data (formats by name, no codec
// rows), since a pool task is copied to the thread and cannot carry functions.
import { DEFAULT_QUALITY, fitInside, targetFormat, type OutputOptions } from './output-options.js';
import { refusalFor } from './refusals.js';
import { renditionOptions, type Rendition } from './renditions.js';
import { rowFor, CODECS, type ImageFormat, type InputFormat, type OutputRow } from './table.js';
import { CodecError, type DecodeScale, type Dimensions, type EncodeOptions } from './types.js';

/** One extra output (a rendition) made from the same decode as the request-level output. */
export interface RenditionPlan {
  name: string;
  target: ImageFormat;
  /** as ImagePlan.opaqueTarget, for this rendition */
  opaqueTarget: ImageFormat;
  /** as ImagePlan.encode and ImagePlan.auto, for this rendition */
  encode: EncodeOptions;
  auto: { target: number } | null;
  output: Dimensions;
}

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
  /** what the target's encoder is told (with quality=auto: where the search does not apply, the default) */
  encode: EncodeOptions;
  /** quality=auto: the SSIMULACRA2 score the search must reach, on a JPEG or WebP output (AUTO_QUALITY_FORMATS); else null */
  auto: { target: number } | null;
  declared: Dimensions;
  /** the decoder shrinks on load to 1/decodeScale of each side (JPEG's DCT scaling), chosen from the largest output; 1: full size */
  decodeScale: DecodeScale;
  /** the size the decoder gives at that scale (before orientation) */
  decoded: Dimensions;
  orientation: number;
  /** the declared size after orientation */
  upright: Dimensions;
  output: Dimensions;
  /** the renditions, in the order asked, each made from the one decode after the output above */
  renditions: RenditionPlan[];
  /** the largest of the outputs: what the one decode must serve */
  largestOutput: Dimensions;
  /** peak bytes the job holds, source bytes included, when each grown codec instance is dropped after its step */
  memoryBytes: number;
  /** the same when every instance is kept to the end (and after, for the next image): all steps at once */
  memoryKeepingBytes: number;
  /** the peak with the target's lean encoder (PNG without palette or OxiPNG), when it has one: for images the usual path does not fit */
  memoryLeanBytes: number | null;
}

/** Taps the resizer gives each output pixel on one axis: Lanczos3's 6 widened by the reduction, plus the edges. */
const resizeTaps = (inSide: number, outSide: number) => Math.min(inSide, Math.ceil(6 * Math.max(1, inSide / outSide)) + 2);

/**
 * The resizer's WASM memory (wasm/resize/resize.c): its output, a ring of horizontally filtered
 * rows (output width x vertical taps, 16 B per float RGBA pixel), one float input row, the
 * weights and a 1 MiB chunk of input rows; never the whole input. The 1.5 MiB fixed part is the
 * module's own memory, the chunk and malloc's slack (bench/diag/codec-memory.ts compares this
 * with fresh instances: 0.2-0.5 MiB above the measured memory, 0.75 to 48 MP inputs).
 */
export function resizeMemory(from: Dimensions, to: Dimensions): number {
  const tapsH = resizeTaps(from.width, to.width);
  const tapsV = resizeTaps(from.height, to.height);
  return 1.5 * 1024 * 1024 + 4 * to.width * to.height + 16 * to.width * tapsV + 16 * from.width + 4 * (to.width * tapsH + to.height * tapsV) + 8 * (to.width + to.height);
}

/** Output formats quality=auto searches; AVIF stays at a fixed quality, PNG has none (its palette rule). */
export const AUTO_QUALITY_FORMATS: readonly ImageFormat[] = ['jpeg', 'webp'];

/**
 * What the quality=auto search holds besides the output raster and the encoder (workers/auto-quality.ts,
 * autoQualityMemoryBytes, which a test keeps equal to this): the scorer's module memory. While the
 * prepared source (9 float planes per scale, about 48 B/px; two with alpha, judged on two greys)
 * stays within 640 MiB the scorer keeps it (made while scoring the first candidate); beyond, it
 * streams both images. Either way 8-bit copies of the source and the candidate (8 B/px), the
 * linear planes of two half-size scales of each (7.5 B/px), and its streaming rows (2220 B per
 * column). The decoded candidate is the target decoder's (its memory.decode).
 */
export function autoQualityMemory({ width, height }: Dimensions, alpha = false): number {
  let prepared = 0;
  for (let level = 0, w = width, h = height; level < 6 && w >= 8 && h >= 8; level++, w = (w + 1) >> 1, h = (h + 1) >> 1) prepared += 36 * Math.ceil(w / 4) * 4 * h;
  const kept = (alpha ? 2 : 1) * prepared;
  const pyramid = 12 * (Math.ceil(width / 2) * Math.ceil(height / 2) + Math.ceil(width / 4) * Math.ceil(height / 4));
  return (kept <= 640 * 2 ** 20 ? kept : 0) + 8 * width * height + 2 * pyramid + 2220 * width;
}

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

/**
 * The DCT scale (1/2, 1/4, 1/8) a JPEG decodes at: the largest that is no larger than the whole
 * reduction, sharp's default (fastShrinkOnLoad), so Lanczos3 may be left anything from 1x to 2x.
 * The DCT-domain scaling is itself a band-limited downscale; measured with
 * bench/diag/shrink-rule.ts (docs/performance.md), 8000x6000 to 1600x1200 through the 1/4 decode
 * scores 89.9 SSIMULACRA2 against Lanczos3 over the full-size decode (mean difference 0.9 of 255),
 * 90.6 against sharp's own full-size Lanczos3. Never enlarges: libjpeg rounds each side up.
 * A 24 MP photo to 1600 px wide decodes at 1/2, a 48 MP one (8000 px) at 1/4, to 1000 px at 1/8.
 */
export function shrinkOnLoadScale(from: Dimensions, to: Dimensions): DecodeScale {
  const factor = Math.min(from.width / to.width, from.height / to.height);
  return factor >= 8 ? 8 : factor >= 4 ? 4 : factor >= 2 ? 2 : 1;
}

export interface PlanSettings {
  /** decode JPEGs shrunk on load when the output is smaller (default true); false: today's full-size decode, for comparison */
  shrinkOnLoad?: boolean;
}

/** The size an integer box shrink by k gives: partial boxes at the right and bottom edges count. */
export const boxShrunk = ({ width, height }: Dimensions, k: number): Dimensions => ({ width: Math.ceil(width / k), height: Math.ceil(height / k) });

/** Throws CodecError (a message safe to show) for unsupported, unreadable or too large images. */
export function planImage(
  bytes: Uint8Array, options: OutputOptions, maxPixels: number, renditions: readonly Rendition[] = [], { shrinkOnLoad = true }: PlanSettings = {},
): ImagePlan {
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
  const outputOf = (o: OutputOptions) => {
    // Input-only formats are always converted; under format=original to what their row says, known
    // only after decoding (alpha or not): the plan names both and holds room for the costlier.
    const convertOriginal = o.format === 'original' ? source.originalAs : null;
    const target: OutputRow = convertOriginal ? CODECS[convertOriginal(false)] : CODECS[targetFormat(source.format as ImageFormat, o.format)];
    const opaqueTarget: OutputRow = convertOriginal ? CODECS[convertOriginal(true)] : target;
    // with quality=auto, `encode` is what formats the search does not apply to (AVIF) are told
    const quality = o.quality === 'auto' ? DEFAULT_QUALITY : o.quality;
    const auto = o.quality === 'auto' ? { target: o.quality_target } : null;
    return { target, opaqueTarget, output: fitInside(upright, o.max_width, o.max_height), encode: { quality, progressive: o.progressive }, auto };
  };
  const main = outputOf(options);
  const extra = renditions.map((r) => ({ name: r.name, ...outputOf(renditionOptions(r)) }));
  const all = [main, ...extra];
  // Every output fits inside the same upright image, so the widest is also the tallest.
  const largestOutput = all.reduce((a, b) => (b.output.width * b.output.height > a.output.width * a.output.height ? b : a)).output;
  // The one decode serves every output, so it may shrink on load only as far as the largest output
  // allows. A CMYK JPEG is decoded at full size (workers/codecs/jpeg.ts), so only the decoder's
  // other files scale.
  const scalable = source.scaledDecode?.accepts(bytes) ?? false;
  const anyResized = largestOutput.width * largestOutput.height !== pixels;
  const decodeScale = anyResized && shrinkOnLoad && scalable ? shrinkOnLoadScale(upright, largestOutput) : 1;
  // libjpeg rounds each scaled side up, as a box shrink with partial edge boxes does (jpegScaledSize)
  const decoded = boxShrunk(declared, decodeScale);
  const decodedPixels = decoded.width * decoded.height;
  const uprightDecoded = orientation >= 5 ? { width: decoded.height, height: decoded.width } : decoded;
  // The worker drops each grown codec instance (and collects it) after its step, so the job's peak
  // is its largest step, each holding the RGBA it works from (4 B/px) besides its WASM memory.
  // A resize holds the decoded RGBA, its box-shrunk copy, the resizer and the output. With
  // renditions the decoded (upright) RGBA stays held while each output is resized and encoded,
  // and so do the resized outputs (smaller ones are made from larger ones): the largest counted twice.
  const largestResized = 4 * largestOutput.width * largestOutput.height;
  const held = extra.length > 0 ? 4 * decodedPixels + 2 * largestResized : 0;
  // quality=auto: the search decodes each candidate with the output format's decoder and scores it
  // against that output's raster, during the output's encode step
  const searchOf = (o: (typeof all)[number], row: OutputRow) =>
    (o.auto && AUTO_QUALITY_FORMATS.includes(row.format) ? CODECS[row.format].memory.decode(o.output.width * o.output.height) + autoQualityMemory(o.output, row.format === 'webp') : 0); // WebP keeps alpha: counted as judged on two greys
  // quality=auto's search may encode at any quality: the encoder's worst case
  const encodeOf = (o: (typeof all)[number]) => (o.auto ? { ...o.encode, quality: 100 } : o.encode);
  const leanOf = (o: (typeof all)[number]) => (o.target === o.opaqueTarget ? o.target.memory.encodeLean : undefined);
  const outputSteps = (o: (typeof all)[number], lean: boolean) => {
    const outPixels = o.output.width * o.output.height;
    const resized = outPixels !== decodedPixels;
    const shrunk = boxShrunk(uprightDecoded, resized ? preShrinkFactor(uprightDecoded, o.output) : 1);
    const shrunkPixels = shrunk.width * shrunk.height;
    const leanEncode = lean ? leanOf(o) : undefined;
    return [
      resized ? 4 * decodedPixels + (shrunkPixels < decodedPixels ? 4 * shrunkPixels : 0) + resizeMemory(shrunk, o.output) + 4 * outPixels : 0,
      4 * outPixels + (leanEncode ? leanEncode(outPixels) + searchOf(o, o.target) : Math.max(
        o.target.memory.encode(outPixels, encodeOf(o)) + searchOf(o, o.target), o.opaqueTarget.memory.encode(outPixels, encodeOf(o)) + searchOf(o, o.opaqueTarget),
      )),
    ];
  };
  // A decoder that shrinks on load says what it holds at that scale (a progressive JPEG keeps
  // every DCT coefficient of the full image whatever the scale).
  const first = [
    (scalable ? source.scaledDecode!.memory(bytes, decodeScale) : null) ?? (source.memory.decodeOf?.(bytes) ?? source.memory.decode)(pixels),
    orientation >= 2 ? 8 * decodedPixels : 0,
  ];
  // each encode step also holds the shared rasters; kept all at once, those count once
  const withHeld = ([resizeStep, encodeStep]: number[]) => [resizeStep!, held + encodeStep!];
  const steps = [...first, ...all.flatMap((o) => outputSteps(o, false))];
  const memoryBytes = bytes.length + Math.max(...first, ...all.flatMap((o) => withHeld(outputSteps(o, false))));
  const memoryLeanBytes = all.some(leanOf) ? bytes.length + Math.max(...first, ...all.flatMap((o) => withHeld(outputSteps(o, true)))) : null;
  const memoryKeepingBytes = bytes.length + held + steps.reduce((a, b) => a + b, 0);
  return {
    source: source.format, target: main.target.format, opaqueTarget: main.opaqueTarget.format, encode: main.encode, auto: main.auto,
    declared, decodeScale, decoded, orientation, upright, output: main.output,
    renditions: extra.map((r) => ({ name: r.name, target: r.target.format, opaqueTarget: r.opaqueTarget.format, encode: r.encode, auto: r.auto, output: r.output })),
    largestOutput, memoryBytes, memoryKeepingBytes, memoryLeanBytes,
  };
}
