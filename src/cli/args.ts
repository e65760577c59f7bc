// Command-line arguments of `image-csv-processor`. Bad arguments are a UsageError (exit 2).
import { parseArgs } from 'node:util';
import { OUTPUT_OPTION_FIELDS, OUTPUT_OPTION_NAMES, type OutputOptionName } from '../codecs/output-options.js';

/** The flag of an output option: max_width -> max-width (given as --max-width). */
export const flagOf = (name: OutputOptionName): string => name.replaceAll('_', '-');

/** One help line per output option, from its entry in the options table. */
const outputOptionsHelp = OUTPUT_OPTION_NAMES.map((name) => {
  const field = OUTPUT_OPTION_FIELDS[name];
  const flag = field.kind === 'boolean' ? `--${flagOf(name)}` : `--${flagOf(name)} <${field.kind === 'integer' ? field.value : 'f'}>`;
  return `      ${flag.padEnd(20)}${field.help}`;
}).join('\n');

export const USAGE = `Usage:
  image-csv-processor process <input.csv> --out <output.csv> [options]
  image-csv-processor keys create --name <name>    (prints the new key alone on its last line)
  image-csv-processor keys list
  image-csv-processor keys revoke <id>
  image-csv-processor requests cancel|retry|delete <request id>

Downloads and compresses every image of a products CSV (the same pipeline as the server, without
a server) and writes the output CSV with an "Output Image Urls" column pointing at the files.

Options:
  -o, --out <file>        output CSV (required)
  -d, --out-dir <dir>     where the images go (default: <output name>-images next to the output CSV)
  -c, --concurrency <n>   downloads in flight at once (default: DOWNLOAD_CONCURRENCY, 16)
  -t, --threads <n>       compression threads (default: WORKER_THREADS, one per CPU)
${outputOptionsHelp}
      --rendition <spec>  an extra output of every image, from the same download and decode (up to
                          8, repeatable): name:key=value,... with the keys above in snake_case,
                          e.g. --rendition thumb:max_width=320,format=webp; an omitted key takes
                          the value of the options above
  -q, --quiet             no progress output, only the summary
  -h, --help              this text
  -v, --version           the version

Environment: the server's settings apply where they make sense (FETCH_ALLOWLIST, MAX_IMAGE_BYTES,
MAX_IMAGE_PIXELS, JPEG_QUALITY, FETCH_TIMEOUT_MS, LOG_LEVEL, ...).

The keys and requests commands work on the configured store (MONGODB_URI, or the SQLite file in DATA_DIR),
the one the server uses; keys take effect on every running server within a second.

Exit status: 0 all images done, 1 some image failed (keys: unknown id), 2 bad arguments,
configuration or CSV.`;

export class UsageError extends Error {}

/** A boolean option is a bare flag (--progressive); the others take a value. */
const OUTPUT_OPTION_FLAGS = Object.fromEntries(OUTPUT_OPTION_NAMES.map((name) => [flagOf(name), { type: OUTPUT_OPTION_FIELDS[name].kind === 'boolean' ? ('boolean' as const) : ('string' as const) }]));

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | {
    kind: 'process'; input: string; out: string; outDir: string | null; concurrency: number | null; threads: number | null; quiet: boolean;
    /** Output options as form fields name them (checked when the command runs, like an upload's). */
    options: Record<string, string | undefined>;
    /** --rendition specs as the upload's `renditions` objects, checked when the command runs */
    renditions: Record<string, string>[];
  }
  | { kind: 'requests'; action: 'cancel' | 'retry' | 'delete'; id: string }
  | { kind: 'keys'; action: 'create'; name: string }
  | { kind: 'keys'; action: 'list' }
  | { kind: 'keys'; action: 'revoke'; id: string };

function positiveInt(name: string, raw: string | undefined, max: number): number | null {
  if (raw === undefined) return null;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw new UsageError(`--${name}: expected a whole number from 1 to ${max}, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

export function parseCommand(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        out: { type: 'string', short: 'o' },
        'out-dir': { type: 'string', short: 'd' },
        concurrency: { type: 'string', short: 'c' },
        threads: { type: 'string', short: 't' },
        quiet: { type: 'boolean', short: 'q' },
        name: { type: 'string' },
        ...OUTPUT_OPTION_FLAGS,
        rendition: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError('no command given');
  if (command === 'keys') return parseKeys(rest, values.name);
  if (command === 'requests') return parseRequests(rest);
  if (command !== 'process') throw new UsageError(`unknown command ${JSON.stringify(command)}; the commands are "process", "keys" and "requests"`);
  if (rest.length === 0) throw new UsageError('process: the input CSV is missing');
  if (rest.length > 1) throw new UsageError(`process: one input CSV expected, got ${rest.length}: ${rest.join(' ')}`);
  if (!values.out) throw new UsageError('process: --out <output.csv> is required');
  return {
    kind: 'process',
    input: rest[0]!,
    out: values.out,
    outDir: values['out-dir'] ?? null,
    concurrency: positiveInt('concurrency', values.concurrency, 1024),
    threads: positiveInt('threads', values.threads, 256),
    quiet: values.quiet ?? false,
    // a bare flag is its wire form 'true' (absent: the default)
    options: Object.fromEntries(OUTPUT_OPTION_NAMES.map((name) => {
      const value = (values as Record<string, unknown>)[flagOf(name)];
      return [name, value === true ? 'true' : (value as string | undefined)];
    })),
    renditions: (values.rendition ?? []).map(parseRenditionFlag),
  };
}

/**
 * `name:key=value,...` (or a bare `name`) to the object an upload's `renditions` array holds.
 * Only the shape is checked here; names, keys and values are checked like an upload's.
 */
export function parseRenditionFlag(spec: string): Record<string, string> {
  const colon = spec.indexOf(':');
  const name = colon === -1 ? spec : spec.slice(0, colon);
  const rendition: Record<string, string> = { name };
  const pairs = colon === -1 ? [] : spec.slice(colon + 1).split(',').filter((p) => p.trim() !== '');
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--rendition ${JSON.stringify(spec)}: expected name:key=value,... (e.g. thumb:max_width=320,format=webp)`);
    const key = pair.slice(0, eq).trim().replaceAll('-', '_');
    if (key === 'name' || key in rendition) throw new UsageError(`--rendition ${JSON.stringify(spec)}: ${key} given twice`);
    rendition[key] = pair.slice(eq + 1).trim();
  }
  return rendition;
}

function parseRequests(rest: string[]): Command {
  const [action, id, ...more] = rest;
  if ((action === 'cancel' || action === 'retry' || action === 'delete') && id && more.length === 0) return { kind: 'requests', action, id };
  throw new UsageError('requests: expected "cancel <id>", "retry <id>" or "delete <id>"');
}

function parseKeys(rest: string[], name: string | undefined): Command {
  const [action, ...args] = rest;
  if (action === 'create') {
    if (args.length > 0) throw new UsageError(`keys create: unexpected ${args.join(' ')}`);
    if (!name || name.trim() === '' || name.length > 100) throw new UsageError('keys create: --name <name> (1 to 100 characters) is required');
    return { kind: 'keys', action: 'create', name: name.trim() };
  }
  if (name !== undefined) throw new UsageError('--name is only for keys create');
  if (action === 'list' && args.length === 0) return { kind: 'keys', action: 'list' };
  if (action === 'revoke' && args.length === 1) return { kind: 'keys', action: 'revoke', id: args[0]! };
  throw new UsageError('keys: expected "create --name <name>", "list" or "revoke <id>"');
}
