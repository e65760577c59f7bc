// Command-line arguments of `image-csv-processor`. Bad arguments are a UsageError (exit 2).
import { parseArgs } from 'node:util';
import { OUTPUT_OPTION_FIELDS, OUTPUT_OPTION_NAMES, type OutputOptionName } from '../codecs/output-options.js';

/** The flag of an output option: max_width -> max-width (given as --max-width). */
export const flagOf = (name: OutputOptionName): string => name.replaceAll('_', '-');

/** One help line per output option, from its entry in the options table. */
const outputOptionsHelp = OUTPUT_OPTION_NAMES.map((name) => {
  const field = OUTPUT_OPTION_FIELDS[name];
  const flag = `--${flagOf(name)} <${field.kind === 'integer' ? field.value : 'f'}>`;
  // a flag too long for the column puts its help on the next line, in the column
  return flag.length < 20 ? `      ${flag.padEnd(20)}${field.help}` : `      ${flag}\n${' '.repeat(26)}${field.help}`;
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

const OUTPUT_OPTION_FLAGS = Object.fromEntries(OUTPUT_OPTION_NAMES.map((name) => [flagOf(name), { type: 'string' as const }]));

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | {
    kind: 'process'; input: string; out: string; outDir: string | null; concurrency: number | null; threads: number | null; quiet: boolean;
    /** Output options as form fields name them (checked when the command runs, like an upload's). */
    options: Record<string, string | undefined>;
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
    options: Object.fromEntries(OUTPUT_OPTION_NAMES.map((name) => [name, (values as Record<string, unknown>)[flagOf(name)] as string | undefined])),
  };
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
