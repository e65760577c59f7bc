// What compressing one image will do and cost, decided from its header alone, before any
// decoding: the format (magic bytes), the declared size (refused above the pixel limit), the
// orientation, the output format and size, and the memory the whole job holds at its peak. The
// pool admits work against its memory budget with this; the worker follows the same plan.
import { fitInside, targetFormat, type OutputOptions } from './output-options.js';
import { rowFor, CODECS, type CodecRow } from './table.js';
import { CodecError, type Dimensions, type MemoryCost } from './types.js';

export interface ImagePlan {
  source: CodecRow;
  target: CodecRow;
  declared: Dimensions;
  orientation: number;
  /** the declared size after orientation */
  upright: Dimensions;
  output: Dimensions;
  /** peak bytes the job holds, source bytes included */
  memoryBytes: number;
}

/**
 * The resizer holds its input and output in WASM memory plus, per output column, a float row
 * buffer of the input's height (measured with bench/diag/codec-memory.ts).
 */
export const RESIZE_MEMORY = { fixed: 1024 * 1024, perInputPixel: 4, perOutputPixel: 8 } as const;

const cost = (c: MemoryCost, pixels: number) => c.fixed + c.perPixel * pixels;

/** Throws CodecError (a message safe to show) for unsupported, unreadable or too large images. */
export function planImage(bytes: Uint8Array, options: OutputOptions, maxPixels: number): ImagePlan {
  const source = rowFor(bytes);
  if (!source) throw new CodecError('unsupported image format');
  const declared = source.dimensions(bytes);
  if (!declared) throw new CodecError(`${source.format.toUpperCase()} decode failed: unreadable header`);
  const pixels = declared.width * declared.height;
  if (pixels > maxPixels) {
    throw new CodecError(`image too large: ${declared.width}x${declared.height} (${pixels} pixels) exceeds the limit of ${maxPixels} pixels`);
  }
  const orientation = source.orientation(bytes);
  const upright = orientation >= 5 ? { width: declared.height, height: declared.width } : declared;
  const output = fitInside(upright, options.maxWidth, options.maxHeight);
  const target = CODECS[targetFormat(source.format, options.format)];
  const outPixels = output.width * output.height;
  const resized = outPixels !== pixels;
  const memoryBytes =
    bytes.length +
    cost(source.memory.decode, pixels) +
    (orientation >= 2 ? 4 * pixels : 0) +
    (resized ? RESIZE_MEMORY.fixed + RESIZE_MEMORY.perInputPixel * pixels + RESIZE_MEMORY.perOutputPixel * outPixels : 0) +
    cost(target.memory.encode, outPixels);
  return { source, target, declared, orientation, upright, output, memoryBytes };
}
