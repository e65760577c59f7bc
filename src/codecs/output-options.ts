// What a caller may ask of an output image, and the one owner of it. Each option is one entry of
// OUTPUT_OPTION_FIELDS: its name (the same snake_case name is the form field, the status key, the
// stored key and, with '-' for '_', the CLI flag), its kind and limits, its default and its help
// line. The type OutputOptions is derived from that table, so adding an option is adding an entry
// (and using it in plan.ts). The HTTP upload and the CLI read the wire form with
// parseOutputOptions, the only validation; the store keeps what it returns; the pool plans from it.
//
// Imports only the format names (no codec code), so the dashboard's bundle can take it too.
import { IMAGE_FORMATS, type ImageFormat } from './formats.js';
import type { Dimensions } from './types.js';

export const OUTPUT_FORMATS = ['original', ...IMAGE_FORMATS] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export const MAX_DIMENSION = 16384;
/** The quality when the service sets none: JPEG_QUALITY's default in src/config.ts. */
export const DEFAULT_QUALITY = 50;

export interface IntegerField {
  kind: 'integer';
  min: number;
  max: number;
  /** null: no bound */
  default: number | null;
  /** the CLI's placeholder for the value */
  value: string;
  help: string;
}

interface ChoiceField {
  kind: 'choice';
  choices: readonly string[];
  default: string;
  help: string;
}

interface BooleanField {
  kind: 'boolean';
  default: boolean;
  help: string;
}

export type OutputOptionField = IntegerField | ChoiceField | BooleanField;

const dimension = (side: 'width' | 'height'): IntegerField => ({
  kind: 'integer', min: 1, max: MAX_DIMENSION, default: null, value: 'px',
  help: `fit inside this ${side} (1-${MAX_DIMENSION}), never enlarging`,
});

export const OUTPUT_OPTION_FIELDS = {
  quality: {
    kind: 'integer', min: 1, max: 100, default: DEFAULT_QUALITY, value: '1-100',
    help: `output quality for JPEG, WebP and AVIF (default: JPEG_QUALITY, ${DEFAULT_QUALITY})`,
  },
  format: {
    kind: 'choice', choices: OUTPUT_FORMATS, default: 'original',
    help: `${OUTPUT_FORMATS[0]} (default), ${OUTPUT_FORMATS.slice(1, -1).join(', ')} or ${OUTPUT_FORMATS.at(-1)}`,
  },
  max_width: dimension('width'),
  max_height: dimension('height'),
  progressive: {
    kind: 'boolean', default: false,
    help: 'progressive JPEG (true or false, default false: sequential, faster to encode)',
  },
} as const satisfies Record<string, OutputOptionField>;

type ValueOf<F> = F extends { kind: 'choice'; choices: readonly (infer T)[] } ? T : F extends { kind: 'boolean' } ? boolean : F extends { default: number } ? number : number | null;

/** The options of one request, every field filled in: what the store keeps and the pool plans from. */
export type OutputOptions = { -readonly [K in keyof typeof OUTPUT_OPTION_FIELDS]: ValueOf<(typeof OUTPUT_OPTION_FIELDS)[K]> };
export type OutputOptionName = keyof OutputOptions;
export const OUTPUT_OPTION_NAMES = Object.keys(OUTPUT_OPTION_FIELDS) as OutputOptionName[];

/** Every option at its default, quality at `quality` (the service passes JPEG_QUALITY): the one place defaults are made. */
export function defaultOutputOptions(quality: number = DEFAULT_QUALITY): OutputOptions {
  const options = Object.fromEntries(OUTPUT_OPTION_NAMES.map((name) => [name, OUTPUT_OPTION_FIELDS[name].default])) as OutputOptions;
  return { ...options, quality };
}

export const DEFAULT_OUTPUT_OPTIONS: Readonly<OutputOptions> = Object.freeze(defaultOutputOptions());

/** An option the caller gave that is out of range; `field` is its wire name, `reason` says what is allowed. */
export class OutputOptionError extends Error {
  override name = 'OutputOptionError';
  constructor(readonly field: OutputOptionName, readonly reason: string) {
    super(`${field}: ${reason}`);
  }
}

/**
 * The wire form (form fields or CLI flags by their snake_case names: digit strings or numbers,
 * 'true'/'false' or booleans; undefined, null and '' mean "not given") to options, the defaults filled in. Throws
 * OutputOptionError naming the first bad field.
 */
export function parseOutputOptions(wire: Readonly<Record<string, unknown>>, defaults: Readonly<OutputOptions>): OutputOptions {
  const options = { ...defaults };
  for (const name of OUTPUT_OPTION_NAMES) {
    const raw = wire[name];
    if (raw === undefined || raw === null || raw === '') continue;
    const field: OutputOptionField = OUTPUT_OPTION_FIELDS[name];
    if (field.kind === 'integer') {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(n) || n < field.min || n > field.max) throw new OutputOptionError(name, `must be an integer from ${field.min} to ${field.max}`);
      (options as Record<string, unknown>)[name] = n;
    } else if (field.kind === 'boolean') {
      const b = raw === true || raw === 'true' ? true : raw === false || raw === 'false' ? false : null;
      if (b === null) throw new OutputOptionError(name, 'must be true or false');
      (options as Record<string, unknown>)[name] = b;
    } else {
      if (typeof raw !== 'string' || !field.choices.includes(raw)) throw new OutputOptionError(name, `must be one of ${field.choices.join(', ')}`);
      (options as Record<string, unknown>)[name] = raw;
    }
  }
  return options;
}

/** Options as stored (null for requests from before options existed; older rows may lack newer fields) with the defaults filled in. */
export const storedOutputOptions = (stored: Partial<OutputOptions> | null, defaults: Readonly<OutputOptions>): OutputOptions => ({ ...defaults, ...stored });

/**
 * The encode settings the content cache and the URL validators are keyed on. Frozen: stored cache
 * entries carry it, so a new option extends it only when it differs from its default.
 */
export const settingsKey = (o: OutputOptions): string =>
  JSON.stringify([o.format, o.quality, o.max_width, o.max_height, ...(o.progressive ? [{ progressive: true }] : [])]);

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
