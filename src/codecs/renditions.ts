// Renditions: extra outputs of every image of a request, each with its own name and output
// options, all made from the image's one download and one decode. A rendition's fields are the
// output options of OUTPUT_OPTION_FIELDS (their limits are checked by parseOutputOptions, the only
// validation), and a field it omits is the request-level value.
//
// Imports no codec code, so the dashboard's bundle can take it too.
import { OUTPUT_OPTION_NAMES, OutputOptionError, parseOutputOptions, settingsKey, type OutputOptions } from './output-options.js';

export const MAX_RENDITIONS = 8;
export const RENDITION_NAME_PATTERN = /^[a-z0-9_-]{1,32}$/;

/** One rendition as the store keeps it and the pool plans it: its name and every option filled in. */
export type Rendition = OutputOptions & { name: string };

/** A request's options as the store keeps them: the request-level output's, and the renditions asked for (absent: none). */
export type RequestOptions = OutputOptions & { renditions?: Rendition[] };

/** A rendition spec that cannot be used; the message names the rendition (or its index) and the field. */
export class RenditionError extends Error {
  override name = 'RenditionError';
}

/**
 * The `renditions` wire form (a JSON array as text, from a form field, or already parsed) to
 * renditions, each omitted field taken from `base` (the request-level options). Undefined, null
 * and '' mean none. Throws RenditionError naming the rendition and the field.
 */
export function parseRenditions(wire: unknown, base: Readonly<OutputOptions>): Rendition[] {
  if (wire === undefined || wire === null || (typeof wire === 'string' && wire.trim() === '')) return [];
  let list = wire;
  if (typeof wire === 'string') {
    try {
      list = JSON.parse(wire);
    } catch {
      throw new RenditionError('renditions: must be a JSON array of objects');
    }
  }
  if (!Array.isArray(list)) throw new RenditionError('renditions: must be a JSON array of objects');
  if (list.length > MAX_RENDITIONS) throw new RenditionError(`renditions: at most ${MAX_RENDITIONS} are allowed (got ${list.length})`);
  const seen = new Set<string>();
  return list.map((spec: unknown, i) => {
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new RenditionError(`renditions[${i}]: must be an object`);
    const fields = spec as Record<string, unknown>;
    const { name } = fields;
    if (typeof name !== 'string' || !RENDITION_NAME_PATTERN.test(name)) {
      throw new RenditionError(`renditions[${i}].name: must be 1-32 characters of a-z, 0-9, _ and -`);
    }
    if (seen.has(name)) throw new RenditionError(`rendition "${name}": name: used twice`);
    seen.add(name);
    const unknown = Object.keys(fields).find((k) => k !== 'name' && !(OUTPUT_OPTION_NAMES as string[]).includes(k));
    if (unknown !== undefined) throw new RenditionError(`rendition "${name}": ${unknown}: unknown field (allowed: name, ${OUTPUT_OPTION_NAMES.join(', ')})`);
    // JSON gives true/false where a form field gives text: the table's validators read the text.
    const wireOptions = Object.fromEntries(OUTPUT_OPTION_NAMES.map((k) => [k, typeof fields[k] === 'boolean' ? String(fields[k]) : fields[k]]));
    try {
      return { name, ...parseOutputOptions(wireOptions, base) };
    } catch (err) {
      if (err instanceof OutputOptionError) throw new RenditionError(`rendition "${name}": ${err.message}`);
      throw err;
    }
  });
}

/** Only the options of a rendition (what the pool plans from). */
export function renditionOptions({ name: _name, ...options }: Rendition): OutputOptions {
  return options;
}

/**
 * The content-cache and URL-validator key of a request's outputs: the request-level settings
 * alone when there are no renditions (so entries stored before renditions existed still match),
 * else those with each rendition's name and settings.
 */
export function outputSetKey(options: OutputOptions, renditions: readonly Rendition[]): string {
  const own = settingsKey(options);
  if (renditions.length === 0) return own;
  return JSON.stringify([own, ...renditions.map((r) => [r.name, settingsKey(renditionOptions(r))])]);
}
