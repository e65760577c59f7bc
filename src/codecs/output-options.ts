// What a caller may ask of an output image: quality, format and a box to fit inside. Plain types,
// defaults and one validator, free of zod and of any framework, so the HTTP layer, the CLI and the
// pool share them.
import { FORMATS, type ImageFormat } from './table.js';
import type { Dimensions } from './types.js';

export type OutputFormat = 'original' | ImageFormat;

export interface OutputOptions {
  /** 1-100, for JPEG, WebP and AVIF (PNG keeps its palette rule) */
  quality: number;
  /** 'original' keeps the input's format */
  format: OutputFormat;
  /** fit inside maxWidth x maxHeight, keeping the aspect ratio, never enlarging; null = no bound */
  maxWidth: number | null;
  maxHeight: number | null;
}

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['original', ...FORMATS];
export const MAX_DIMENSION = 16384;

/** The defaults; the service replaces quality with JPEG_QUALITY. */
export const DEFAULT_OUTPUT_OPTIONS: Readonly<OutputOptions> = { quality: 50, format: 'original', maxWidth: null, maxHeight: null };

export type OutputOptionsInput = { [K in keyof OutputOptions]?: unknown };

export type ValidatedOptions = { ok: true; options: OutputOptions } | { ok: false; field: keyof OutputOptions; error: string };

/**
 * Checks caller-supplied options (numbers, or digit strings as form fields carry them; undefined,
 * null and '' mean "default") and fills in the defaults. The error names the field.
 */
export function validateOutputOptions(input: OutputOptionsInput, defaults: Readonly<OutputOptions> = DEFAULT_OUTPUT_OPTIONS): ValidatedOptions {
  const quality = integer(input.quality, 1, 100);
  if (quality === false) return { ok: false, field: 'quality', error: 'quality: must be an integer from 1 to 100' };
  const maxWidth = integer(input.maxWidth, 1, MAX_DIMENSION);
  if (maxWidth === false) return { ok: false, field: 'maxWidth', error: `maxWidth: must be an integer from 1 to ${MAX_DIMENSION}` };
  const maxHeight = integer(input.maxHeight, 1, MAX_DIMENSION);
  if (maxHeight === false) return { ok: false, field: 'maxHeight', error: `maxHeight: must be an integer from 1 to ${MAX_DIMENSION}` };
  const format = input.format === undefined || input.format === null || input.format === '' ? defaults.format : input.format;
  if (typeof format !== 'string' || !(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    return { ok: false, field: 'format', error: `format: must be one of ${OUTPUT_FORMATS.join(', ')}` };
  }
  return {
    ok: true,
    options: {
      quality: quality ?? defaults.quality,
      format: format as OutputFormat,
      maxWidth: maxWidth === null ? defaults.maxWidth : maxWidth,
      maxHeight: maxHeight === null ? defaults.maxHeight : maxHeight,
    },
  };
}

/** null: not given; false: invalid */
function integer(v: unknown, min: number, max: number): number | null | false {
  if (v === undefined || v === null || v === '') return null;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= min && n <= max ? n : false;
}

/** The size that fits inside the box with the same aspect ratio, never larger than the image. */
export function fitInside(image: Dimensions, maxWidth: number | null, maxHeight: number | null): Dimensions {
  const scale = Math.min(1, maxWidth ? maxWidth / image.width : 1, maxHeight ? maxHeight / image.height : 1);
  if (scale >= 1) return { width: image.width, height: image.height };
  return {
    width: Math.max(1, Math.min(maxWidth ?? Infinity, Math.round(image.width * scale))),
    height: Math.max(1, Math.min(maxHeight ?? Infinity, Math.round(image.height * scale))),
  };
}

/** The output format for an input format under these options. */
export const targetFormat = (input: ImageFormat, format: OutputFormat): ImageFormat => (format === 'original' ? input : format);
