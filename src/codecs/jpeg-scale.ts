// libjpeg's DCT-domain scaling (shrink-on-load) as the main thread sees it: which scales exist,
// what size each gives and what the decode holds in memory, all known from the header before any
// decode, so the memory plan can count the scaled image rather than the full one. The pool
// threads' decoder (workers/codecs/libjpeg.ts) and the planner both import it.
import { isSof, jpegSegments } from './jpeg.js';
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

export interface JpegFrame extends Dimensions {
  /** progressive (SOF2/6/10/14) */
  progressive: boolean;
  /**
   * libjpeg keeps every DCT coefficient of the image until the end: progressive files, and
   * sequential ones whose first scan lacks some components (jdinput.c's has_multiple_scans)
   */
  wholeImageBuffered: boolean;
  /** per component, its sampling factors */
  components: { h: number; v: number }[];
}

/** The start-of-frame header: size, progressive or not, components and their sampling. */
export function jpegFrame(b: Uint8Array): JpegFrame | null {
  const segs = jpegSegments(b);
  const sof = segs?.find((s) => isSof(s.marker));
  if (!sof || sof.end - sof.data < 6) return null;
  const count = b[sof.data + 5]!;
  if (count < 1 || sof.data + 6 + count * 3 > sof.end) return null;
  const components = Array.from({ length: count }, (_, i) => {
    const hv = b[sof.data + 6 + i * 3 + 1]!;
    return { h: hv >> 4, v: hv & 15 };
  });
  if (components.some((c) => c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4)) return null;
  const height = (b[sof.data + 1]! << 8) | b[sof.data + 2]!;
  const width = (b[sof.data + 3]! << 8) | b[sof.data + 4]!;
  if (width === 0 || height === 0) return null;
  const progressive = [0xc2, 0xc6, 0xca, 0xce].includes(sof.marker);
  const sos = segs!.at(-1)!;
  const firstScanComponents = sos.marker === 0xda && sos.end > sos.data ? b[sos.data]! : count;
  return { width, height, progressive, wholeImageBuffered: progressive || firstScanComponents < count, components };
}

/**
 * Bytes the libjpeg decoder holds at its peak for this frame at 1/scale: its WASM memory (a copy
 * of the file, the RGBA output, and for a progressive (or multi-scan) file every DCT coefficient
 * of the whole image, 128 bytes per 8x8 block of each component, whatever the scale), plus the RGBA copied out
 * to JavaScript, plus about 1 MiB of fixed and per-row working memory. Measured with
 * bench/diag/libjpeg.ts on 12 and 24 MP photos (sequential 4:2:0 1/1: input + 8.04 B/px;
 * progressive 4:2:0 and 4:4:4 add 3.0 and 6.0 B per source pixel at every scale), and checked
 * against a fresh instance in test/libjpeg.test.ts.
 */
export function libjpegDecodeBytes(frame: JpegFrame, scale: JpegScale, fileBytes: number): number {
  const out = jpegScaledSize(frame, scale);
  let coefficients = 0;
  if (frame.wholeImageBuffered) {
    const hMax = Math.max(...frame.components.map((c) => c.h));
    const vMax = Math.max(...frame.components.map((c) => c.v));
    for (const c of frame.components) {
      // jdcoefct.c: blocks per component, rounded up to whole MCUs
      const bw = Math.ceil(Math.ceil((frame.width * c.h) / hMax) / 8);
      const bh = Math.ceil(Math.ceil((frame.height * c.v) / vMax) / 8);
      coefficients += Math.ceil(bw / c.h) * c.h * Math.ceil(bh / c.v) * c.v * 128;
    }
  }
  return fileBytes + 8 * out.width * out.height + coefficients + 1024 * 1024 + 64 * frame.width;
}
