// `image-csv-processor process`: the server's pipeline, without a server. An embedded SQLite store
// in a temp dir, the same CSV reader and store steps as an upload, the same PipelineRunner and
// CompressPool, and the same output CSV writer; images go to a directory and the output CSV points
// at them with file paths (relative to the output CSV's folder when the images are inside it).
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { defaultOutputOptions, OutputOptionError, parseOutputOptions } from '../codecs/output-options.js';
import { parseRenditions, RenditionError, type RequestOptions } from '../codecs/renditions.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { csvLimitsFromConfig, readProductBatches } from '../ingest/csv-rows.js';
import type { Logger } from '../log.js';
import { redactUrl } from '../net/redact-url.js';
import { isFinal } from '../store/lifecycle.js';
import { outputCsvStream, type OutputRow } from '../views/output-csv.js';
import { outputCsvRows, renditionNamesOf } from '../views/request-views.js';
import { CompressPool } from '../pipeline/pool.js';
import { PipelineRunner } from '../pipeline/runner.js';
import { LocalStorage } from '../storage/local.js';
import { openStore } from '../store/open.js';
import { ADMIN_TENANT, type RequestRecord, type Store } from '../store/types.js';
import { formatBytes } from '../byte-size.js';
import { flagOf } from './args.js';
import { createProgress, formatDuration, type ProgressState } from './progress.js';

/** A problem with the input (bad CSV, unreadable file): exit 2. */
export class InputError extends Error {}

export interface BatchOptions {
  input: string;
  out: string;
  outDir: string | null;
  quiet: boolean;
  /** Output options as form fields name them (quality, format, max_width, max_height); absent: defaults. */
  options?: Record<string, string | undefined>;
  /** Renditions as the upload's `renditions` objects (from --rendition); absent: none. */
  renditions?: Record<string, string>[];
}

export interface BatchResult {
  request: RequestRecord;
  failures: { url: string; error: string }[];
  /** images that succeeded with something to say (converted from HEIC, first frame of 12, ...) */
  notes: { url: string; note: string }[];
  bytesIn: number;
  bytesOut: number;
  ms: number;
}

interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
}

/** Where the images of `out` go by default: "<name>-images" next to it. */
export function defaultOutDir(out: string): string {
  const name = basename(out, extname(out)) || 'output';
  return join(dirname(out), `${name}-images`);
}

/** How the output CSV refers to a file: relative to the CSV's folder if inside it, else absolute. */
export function fileReference(csvPath: string, file: string): string {
  const rel = relative(dirname(csvPath), file);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return file;
  return rel.split(sep).join('/');
}

async function ingest(store: Store, config: Config, input: string, fields: Record<string, string | undefined>, renditionSpecs: Record<string, string>[]): Promise<RequestRecord> {
  let options: RequestOptions;
  try {
    const own = parseOutputOptions(fields, defaultOutputOptions(config.JPEG_QUALITY));
    const renditions = parseRenditions(renditionSpecs, own);
    options = renditions.length ? { ...own, renditions } : own;
  } catch (err) {
    if (err instanceof OutputOptionError) throw new InputError(`--${flagOf(err.field)}: ${err.reason}`);
    if (err instanceof RenditionError) throw new InputError(`--rendition: ${err.message}`);
    throw err;
  }
  const info = await stat(input).catch((err: NodeJS.ErrnoException) => {
    throw new InputError(`${input}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  if (!info.isFile()) throw new InputError(`${input}: not a file`);
  const id = randomUUID();
  await store.beginRequest({ id, tenantId: ADMIN_TENANT, idempotencyKey: null, webhookUrl: null, webhookSecret: null, now: Date.now() });
  try {
    for await (const batch of readProductBatches(createReadStream(input), csvLimitsFromConfig(config))) {
      await store.appendBatch(id, batch);
    }
    return await store.commitRequest(id, Date.now(), { options });
  } catch (err) {
    await store.abortRequest(id).catch(() => {});
    if (err instanceof AppError) throw new InputError(`${input}: ${err.detail}`);
    throw err;
  }
}

/** Writes the output CSV next to its final name, then renames it into place. */
async function writeOutputCsv(path: string, rows: AsyncIterable<OutputRow[]>, renditionNames: readonly string[]): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await pipeline(Readable.fromWeb(outputCsvStream(rows, renditionNames) as NodeReadableStream<Uint8Array>), createWriteStream(tmp));
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs one CSV through the pipeline. `config` must point DATA_DIR at a scratch directory (the
 * caller's temp dir); images go to options.outDir (default next to the output CSV).
 */
export async function runBatch(config: Config, options: BatchOptions, log: Logger, io: Io, signal?: AbortSignal): Promise<BatchResult> {
  const started = Date.now();
  const out = resolve(options.out);
  const outDir = resolve(options.outDir ?? defaultOutDir(out));
  if (resolve(options.input) === out) throw new InputError('--out must not be the input file');
  const storage = new LocalStorage(outDir);
  const store = await openStore(config);
  let pool: CompressPool | null = null;
  let runner: PipelineRunner | null = null;
  try {
    const request = await ingest(store, config, options.input, options.options ?? {}, options.renditions ?? []);
    // Only a valid CSV creates anything next to the output.
    await mkdir(dirname(out), { recursive: true });
    await storage.check();
    const state: ProgressState = { total: request.total, done: 0, failed: 0, bytesIn: 0, bytesOut: 0 };
    const failures: { url: string; error: string }[] = [];
    const notes: { url: string; note: string }[] = [];
    pool = new CompressPool({ threads: config.WORKER_THREADS, maxPixels: config.MAX_IMAGE_PIXELS, maxDecodeMemoryMb: config.MAX_DECODE_MEMORY_MB });
    runner = new PipelineRunner({
      config, store, storage, pool, log,
      idlePollMs: 100,
      onItem: (item, outcome) => {
        if (outcome.ok) {
          state.done++;
          state.bytesIn += outcome.bytesIn;
          state.bytesOut += outcome.bytesOut;
          if (outcome.note) notes.push({ url: item.url, note: outcome.note });
        } else {
          state.failed++;
          failures.push({ url: item.url, error: outcome.error });
        }
      },
    });
    const progress = createProgress(io.stderr, { quiet: options.quiet });
    runner.start();
    let final: RequestRecord = request;
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error('interrupted');
      progress.update(state);
      const current = await store.getRequest(request.id);
      if (current && isFinal(current.status)) {
        final = current;
        break;
      }
      await sleep(100);
    }
    // The store's counters are the truth (an item retried after a lost lease counts once).
    progress.finish({ ...state, done: final.done, failed: final.failed });
    await runner.stop();
    runner = null;
    const names = renditionNamesOf(request);
    await writeOutputCsv(out, outputCsvRows(store, request.id, (key) => fileReference(out, storage.pathOf(key)), names), names);
    return { request: final, failures, notes, bytesIn: state.bytesIn, bytesOut: state.bytesOut, ms: Date.now() - started };
  } finally {
    await runner?.stop(1000).catch(() => {});
    await pool?.close().catch(() => {});
    await store.close().catch(() => {});
  }
}

export function summary(result: BatchResult, options: { out: string; outDir: string }): string {
  const { request: r, failures } = result;
  const lines = [
    `${r.failed === 0 ? 'Done' : r.done === 0 ? 'Failed' : 'Done with failures'}: ${r.total} image${r.total === 1 ? '' : 's'} of ${r.productCount} product${r.productCount === 1 ? '' : 's'} in ${formatDuration(result.ms)}`,
    `  succeeded: ${r.done}  failed: ${r.failed}`,
  ];
  if (result.bytesIn > 0) {
    const saved = result.bytesIn > 0 ? Math.round((1 - result.bytesOut / result.bytesIn) * 100) : 0;
    lines.push(`  size:      ${formatBytes(result.bytesIn)} in → ${formatBytes(result.bytesOut)} out (${saved}% smaller)`);
  }
  lines.push(`  output:    ${resolve(options.out)}`, `  images:    ${resolve(options.outDir)}`);
  const notes = result.notes ?? [];
  if (notes.length > 0) {
    lines.push('Notes:');
    for (const n of notes.slice(0, 20)) lines.push(`  ${redactUrl(n.url)}: ${n.note}`);
    if (notes.length > 20) lines.push(`  … and ${notes.length - 20} more`);
  }
  if (failures.length > 0) {
    lines.push('Failed images:');
    for (const f of failures.slice(0, 20)) lines.push(`  ${redactUrl(f.url)}: ${f.error}`);
    if (failures.length > 20) lines.push(`  … and ${failures.length - 20} more (their entries in the output CSV are empty)`);
  }
  return lines.join('\n') + '\n';
}
