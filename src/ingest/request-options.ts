// A request's output options as clients name them (form fields `quality`, `format`,
// `max_width`, `max_height`; the same keys in the status response and in the store), checked
// once at upload with the codec table's validator, defaults filled in.
import { AppError } from '../errors.js';
import { DEFAULT_OUTPUT_OPTIONS, validateOutputOptions, type OutputFormat, type OutputOptions } from '../codecs/output-options.js';

export interface RequestOptions {
  quality: number;
  format: OutputFormat;
  max_width: number | null;
  max_height: number | null;
}

const FIELD: Record<keyof OutputOptions, keyof RequestOptions> = { quality: 'quality', format: 'format', maxWidth: 'max_width', maxHeight: 'max_height' };

/** Form fields → options with defaults (quality defaults to JPEG_QUALITY); a 400 naming the field. */
export function parseRequestOptions(fields: Readonly<Record<string, string | undefined>>, defaultQuality: number): RequestOptions {
  const checked = validateOutputOptions(
    { quality: fields.quality, format: fields.format, maxWidth: fields.max_width, maxHeight: fields.max_height },
    { ...DEFAULT_OUTPUT_OPTIONS, quality: defaultQuality },
  );
  if (!checked.ok) {
    const name = FIELD[checked.field];
    throw new AppError(400, `${name}: ${checked.error.slice(checked.error.indexOf(':') + 1).trim()}`);
  }
  return toRequestOptions(checked.options);
}

export function toRequestOptions(o: OutputOptions): RequestOptions {
  return { quality: o.quality, format: o.format, max_width: o.maxWidth, max_height: o.maxHeight };
}

/** What the store holds for a request (null before options existed) → what the pool takes. */
export function compressOptionsOf(stored: Record<string, unknown> | null, defaultQuality: number): OutputOptions {
  const o = (stored ?? {}) as Partial<RequestOptions>;
  return {
    quality: o.quality ?? defaultQuality,
    format: o.format ?? 'original',
    maxWidth: o.max_width ?? null,
    maxHeight: o.max_height ?? null,
  };
}
