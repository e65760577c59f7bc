// libjpeg's DCT-domain scaling (shrink-on-load) as the main thread sees it: which scales exist and
// what size each gives, known from the header before any decode, so the memory plan can count the
// scaled image rather than the full one. A leaf module: the pool threads' decoder
// (workers/codecs/libjpeg.ts) and the planner both import it.
import type { Dimensions } from './types.js';

/** The denominators libjpeg decodes at directly (1/1, 1/2, 1/4, 1/8 of each side). */
export const JPEG_SCALES = [1, 2, 4, 8] as const;
export type JpegScale = (typeof JPEG_SCALES)[number];

/**
 * The size libjpeg decodes to at 1/scale: jpeg_core_output_dimensions rounds each side up
 * (jdiv_round_up(side * scale_num, 8) with scale_num = 8/scale), the same as a box shrink whose
 * partial edge boxes count. test/libjpeg.test.ts checks it against libjpeg's own answer.
 */
export function jpegScaledSize({ width, height }: Dimensions, scale: JpegScale): Dimensions {
  return { width: Math.ceil(width / scale), height: Math.ceil(height / scale) };
}
