// Streaming CSV ingest: bytes in, validated product batches out.
//
//   source bytes ──▶ ByteScanner (UTF-8 + control characters, line/column bookkeeping)
//                ──▶ csv-parse (Node Transform, bounded buffers) ──▶ row validation (zod)
//                ──▶ batches of ProductRecord
//
// Memory: the seed format (`S. No.,Product Name,Input Image Urls`) holds at most one batch plus
// the set of serial numbers seen (for the uniqueness check, bounded by MAX_ROWS). The simple
// format (`product_name,image_url`, one row per image) must group rows by product name, so it
// holds the grouping until the end of the file; that is bounded by MAX_ROWS rows as well.
//
// The delimiter (comma, semicolon as Excel writes it in much of Europe, or tab) is read from the
// header row before parsing starts.
//
// Any problem rejects the whole file with AppError(400) whose detail names the line (the line
// the offending row starts on, counting the header as line 1) and, where there is one, the column.
import { Readable, pipeline } from 'node:stream';
import { Parser } from 'csv-parse';
import { z } from 'zod';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { ProductRecord } from '../store/types.js';

export interface CsvLimits {
  /** Data rows (header and blank lines excluded). MAX_ROWS. */
  maxRows: number;
  /** Distinct URLs per product. MAX_URLS_PER_PRODUCT. */
  maxUrlsPerProduct: number;
  /** Characters per cell. MAX_CELL_CHARS. */
  maxCellChars: number;
  /** Products per yielded batch. INGEST_BATCH_ROWS. */
  batchSize: number;
  /** csv-parse max_record_size (characters in one row); defaults to a bound derived from maxCellChars. */
  maxRecordChars?: number;
}

export type CsvFormat = 'seed' | 'simple';

export interface CsvSummary {
  format: CsvFormat;
  /** Data rows read (blank lines excluded). */
  rows: number;
  products: number;
  /** Sum over products of their distinct URLs (URLs shared between products count once per product). */
  urls: number;
}

export function csvLimitsFromConfig(
  config: Pick<Config, 'MAX_ROWS' | 'MAX_URLS_PER_PRODUCT' | 'MAX_CELL_CHARS' | 'INGEST_BATCH_ROWS'>,
): CsvLimits {
  return {
    maxRows: config.MAX_ROWS,
    maxUrlsPerProduct: config.MAX_URLS_PER_PRODUCT,
    maxCellChars: config.MAX_CELL_CHARS,
    batchSize: config.INGEST_BATCH_ROWS,
  };
}

export type ByteSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

// ---------------------------------------------------------------------------------------------
// Header matching

/** Lower-case, letters and digits only: `S. No.` → `sno`, `Input Image Urls` → `inputimageurls`. */
export function normalizeHeader(s: string): string {
  return s.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
}

export type ColumnKey = 'serial' | 'name' | 'urls';

/**
 * Every header name each column answers to, the usual one first. Matching ignores case, spaces and
 * punctuation (normalizeHeader), so "product_name" and "PRODUCT NAME" are "Product Name".
 * docs/api.md shows this table; a test keeps the two in step.
 */
export const HEADER_NAMES: Readonly<Record<ColumnKey, readonly string[]>> = {
  serial: ['S. No.', 'SN', 'S Num', 'Sr. No.', 'Sl. No.', 'Serial', 'Serial No.', 'Serial Num', 'Serial Number', 'No.', 'Num', 'Number'],
  name: ['Product Name', 'Name', 'Product', 'Product Title', 'Title', 'Item Name', 'Item'],
  urls: [
    'Input Image Urls', 'Input Image Url', 'Image Urls', 'Image Url', 'Input Urls', 'Input Url', 'Urls', 'Url',
    'Images', 'Image', 'Image Links', 'Image Link', 'Input Images', 'Input Image',
  ],
};

const aliasesOf = (key: ColumnKey): ReadonlySet<string> => new Set(HEADER_NAMES[key].map(normalizeHeader));
const ALIASES: Record<ColumnKey, ReadonlySet<string>> = { serial: aliasesOf('serial'), name: aliasesOf('name'), urls: aliasesOf('urls') };

const EXPECTED_HEADERS = '"S. No.,Product Name,Input Image Urls" (one row per product) or "product_name,image_url" (one row per image)';

/** The header names the unknown-header error lists. */
const ACCEPTED_HEADERS = `${EXPECTED_HEADERS}, separated by commas, semicolons or tabs; other names that work (case, spaces and punctuation ignored): ${
  (Object.keys(HEADER_NAMES) as ColumnKey[]).map((k) => `${describeKey(k)}: ${HEADER_NAMES[k].join(' | ')}`).join('; ')
}`;

// ---------------------------------------------------------------------------------------------
// Delimiters

export type Delimiter = ',' | ';' | '\t';

const DELIMITERS: readonly Delimiter[] = [',', ';', '\t'];

const DELIMITER_WORDS: Record<Delimiter, { word: string; shown: string }> = {
  ',': { word: 'comma', shown: ',' },
  ';': { word: 'semicolon', shown: ';' },
  '\t': { word: 'tab', shown: 'tab' },
};

/** Header cells split at `d`, quotes honoured (a header rarely has any). */
function splitHeader(line: string, d: Delimiter): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (ch === d && !quoted) {
      cells.push(cell);
      cell = '';
    } else cell += ch;
  }
  cells.push(cell);
  return cells;
}

const matchesKnownForm = (cells: string[]) => {
  const names = new Set(cells.map(normalizeHeader));
  const has = (key: ColumnKey) => [...ALIASES[key]].some((a) => names.has(a));
  return has('name') && has('urls');
};

/**
 * The delimiter of a header row: the first that splits it into a known form, else the one it
 * holds most of (the error then names it), comma on a tie.
 */
export function detectDelimiter(headerLine: string): Delimiter {
  const line = headerLine.replace(/^\uFEFF/, '').replace(/\r$/, '');
  for (const d of DELIMITERS) if (matchesKnownForm(splitHeader(line, d))) return d;
  let best: Delimiter = ',';
  for (const d of DELIMITERS) if (splitHeader(line, d).length > splitHeader(line, best).length) best = d;
  return best;
}

interface Header {
  line: number;
  delimiter: Delimiter;
  labels: string[];
  index: Partial<Record<ColumnKey, number>>;
  format: CsvFormat;
}

function readHeader(record: string[], line: number, delimiter: Delimiter): Header {
  const labels = record.map((c) => c.trim());
  const index: Partial<Record<ColumnKey, number>> = {};
  labels.forEach((label, i) => {
    const n = normalizeHeader(label);
    for (const key of Object.keys(ALIASES) as ColumnKey[]) {
      if (!ALIASES[key].has(n)) continue;
      const prev = index[key];
      if (prev !== undefined) {
        throw new AppError(400, `line ${line}, column "${label}": duplicate column, "${labels[prev]}" already is the ${describeKey(key)} column`);
      }
      index[key] = i;
    }
  });
  const format: CsvFormat = index.serial !== undefined ? 'seed' : 'simple';
  for (const key of ['name', 'urls'] as const) {
    if (index[key] === undefined) {
      const want = key === 'name' ? (format === 'seed' ? 'Product Name' : 'product_name') : format === 'seed' ? 'Input Image Urls' : 'image_url';
      const { word, shown } = DELIMITER_WORDS[delimiter];
      throw new AppError(
        400,
        `line ${line}, column "${want}": required column is missing; the header, read as ${word}-separated (${shown}), has ${labels.map((l) => JSON.stringify(l)).join(', ')}; accepted headers: ${ACCEPTED_HEADERS}`,
      );
    }
  }
  return { line, delimiter, labels, index, format };
}

function shiftHint(d: Delimiter): string {
  const { word } = DELIMITER_WORDS[d];
  const example = d === ',' ? ', e.g. "http://a/1.jpg,http://a/2.jpg"' : '';
  return `an unquoted ${word} shifts the columns, so quote cells that contain ${word}s${example}`;
}

function describeKey(key: ColumnKey): string {
  return key === 'serial' ? 'serial number' : key === 'name' ? 'product name' : 'image URL';
}

function columnLabel(header: Header | null, fieldIndex: number): string {
  const label = header?.labels[fieldIndex];
  return label !== undefined && label !== '' ? `column "${label}"` : `column ${fieldIndex + 1}`;
}

// ---------------------------------------------------------------------------------------------
// Byte scanning: UTF-8 validity and control characters, with the line and column of the culprit.
// It runs ahead of csv-parse, so it only records the problem and stops the byte flow; the row
// loop raises it once every row that starts before it has been validated (earlier rows' errors
// win, as a reader going top to bottom would expect).

interface ByteProblem {
  line: number;
  /** Line where the row containing the problem starts. */
  recordLine: number;
  field: number;
  reason: string;
}

const hex = (b: number) => `0x${b.toString(16).toUpperCase().padStart(2, '0')}`;

class ByteScanner {
  constructor(private readonly delimiter: number) {}

  line = 1;
  recordLine = 1;
  field = 0;
  inQuotes = false;
  // UTF-8 state: continuation bytes still expected and the allowed range of the next one.
  need = 0;
  lower = 0x80;
  upper = 0xbf;
  lead = 0;
  total = 0;
  problem: ByteProblem | null = null;

  /** Returns -1 when the chunk is clean, else the offset of the first bad byte. */
  scan(buf: Uint8Array): number {
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i]!;
      if (this.need > 0) {
        if (b < this.lower || b > this.upper) return this.fail(i, this.notUtf8(this.lead));
        this.lower = 0x80;
        this.upper = 0xbf;
        this.need--;
        continue;
      }
      if (b < 0x80) {
        if (b === 0x22) this.inQuotes = !this.inQuotes;
        else if (b === this.delimiter) {
          if (!this.inQuotes) this.field++;
        } else if (b === 0x0a) {
          this.line++;
          if (!this.inQuotes) {
            this.field = 0;
            this.recordLine = this.line;
          }
        } else if (b < 0x20 && b !== 0x09 && b !== 0x0d) {
          return this.fail(i, `contains the control character ${hex(b)}: this looks like binary data, not a CSV text file`);
        }
        continue;
      }
      this.lead = b;
      if (b >= 0xc2 && b <= 0xdf) this.need = 1;
      else if (b >= 0xe0 && b <= 0xef) {
        this.need = 2;
        if (b === 0xe0) this.lower = 0xa0;
        else if (b === 0xed) this.upper = 0x9f;
      } else if (b >= 0xf0 && b <= 0xf4) {
        this.need = 3;
        if (b === 0xf0) this.lower = 0x90;
        else if (b === 0xf4) this.upper = 0x8f;
      } else {
        const utf16 = this.total + i === 0 && (b === 0xff || b === 0xfe);
        return this.fail(i, utf16 ? 'the file is UTF-16; save it as UTF-8 (CSV UTF-8)' : this.notUtf8(b));
      }
    }
    this.total += buf.length;
    return -1;
  }

  /** Call at end of input: a multi-byte sequence cut short is an error too. */
  finish(): void {
    if (this.need > 0 && !this.problem) this.fail(0, this.notUtf8(this.lead));
  }

  private notUtf8(b: number): string {
    return `byte ${hex(b)} is not valid UTF-8; save the file as UTF-8 (CSV UTF-8)`;
  }

  private fail(offset: number, reason: string): number {
    this.problem = { line: this.line, recordLine: this.recordLine, field: this.field, reason };
    return offset;
  }
}

function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

async function* iterateBytes(source: ByteSource): AsyncGenerator<Uint8Array> {
  if ('getReader' in source && typeof source.getReader === 'function') {
    const reader = source.getReader();
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          finished = true;
          return;
        }
        yield value;
      }
    } finally {
      if (!finished) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  } else {
    yield* source as AsyncIterable<Uint8Array>;
  }
}

/** The source's first bytes, read far enough to hold the header row (or HEADER_PEEK_BYTES). */
const HEADER_PEEK_BYTES = 64 * 1024;

interface Peeked {
  head: Uint8Array[];
  rest: AsyncIterator<Uint8Array>;
  headerLine: string;
}

async function peekHeaderLine(source: ByteSource): Promise<Peeked> {
  const rest = iterateBytes(source)[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let text = '';
  let size = 0;
  for (;;) {
    // The first line with something on it, once it is complete (blank lines may come before).
    const line = text.split('\n').find((l, i, all) => l.trim() !== '' && (i < all.length - 1));
    if (line !== undefined) return { head, rest, headerLine: line };
    if (size >= HEADER_PEEK_BYTES) break;
    const r = await rest.next();
    if (r.done) break;
    head.push(r.value);
    size += r.value.byteLength;
    text += decoder.decode(r.value, { stream: true });
  }
  return { head, rest, headerLine: text.split('\n').find((l) => l.trim() !== '') ?? '' };
}

async function* replay(peeked: Peeked): AsyncGenerator<Uint8Array> {
  try {
    yield* peeked.head;
    for (;;) {
      const r = await peeked.rest.next();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await peeked.rest.return?.(); // cancels the source when the reader stops early
  }
}

async function* scannedBytes(source: AsyncIterable<Uint8Array>, scanner: ByteScanner): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    if (chunk.byteLength === 0) continue;
    const bad = scanner.scan(chunk);
    if (bad >= 0) {
      // Rows before the problem still reach the parser so that their own errors come first.
      if (bad > 0) yield toBuffer(chunk.subarray(0, bad));
      return; // leaving the loop cancels the source
    }
    yield toBuffer(chunk);
  }
  scanner.finish();
}

// ---------------------------------------------------------------------------------------------
// Row validation (zod), one row at a time.

const quote = (s: string, max = 200) => JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);

/** Why `u` is not acceptable as an image URL, or null when it is. */
export function urlProblem(u: string): string | null {
  if (/\s/.test(u)) return `${quote(u)} contains whitespace; separate URLs with commas and write spaces inside a URL as %20`;
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    const hint = /^[\w.-]+\.[a-z]{2,}(\/|$)/i.test(u) ? ' (add http:// or https://)' : '';
    return `${quote(u)} is not an absolute http(s) URL${hint}`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return `${quote(u)} is not an http(s) URL (scheme "${parsed.protocol.slice(0, -1)}")`;
  }
  if (!parsed.hostname) return `${quote(u)} has no host`;
  return null;
}

function buildRowSchemas(limits: CsvLimits) {
  const cell = () => z.string().max(limits.maxCellChars, { error: `cell is longer than ${limits.maxCellChars} characters` }).trim();

  const serial = cell().transform((s, ctx) => {
    if (s === '') {
      ctx.issues.push({ code: 'custom', message: 'serial number is empty', input: s });
      return z.NEVER;
    }
    const n = /^\d{1,15}$/.test(s) ? Number(s) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) {
      ctx.issues.push({ code: 'custom', message: `${quote(s)} is not a positive integer serial number`, input: s });
      return z.NEVER;
    }
    return n;
  });

  const name = cell().min(1, { error: 'product name is empty' });

  const urls = cell().transform((s, ctx) => {
    const out: string[] = [];
    const seen = new Set<string>();
    for (const piece of s.split(/[,\r\n]/)) {
      const u = piece.trim();
      if (u === '') continue; // "a,,b" and a trailing comma are tolerated
      const problem = urlProblem(u);
      if (problem) {
        ctx.issues.push({ code: 'custom', message: problem, input: s });
        return z.NEVER;
      }
      if (seen.has(u)) continue;
      seen.add(u);
      out.push(u);
    }
    if (out.length === 0) {
      ctx.issues.push({ code: 'custom', message: 'no image URL (the cell is empty)', input: s });
      return z.NEVER;
    }
    return out;
  });

  return {
    seed: z.object({ serial, name, urls }),
    simple: z.object({ name, urls }),
  };
}

// ---------------------------------------------------------------------------------------------
// The generator

function csvErrorDetail(err: { code?: unknown; index?: unknown; message: string }, line: number, header: Header | null, limits: { recordChars: number }): string {
  const col = typeof err.index === 'number' ? `, ${columnLabel(header, err.index)}` : '';
  switch (err.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return `line ${line}${col}: a quoted cell is never closed (missing closing ")`;
    case 'INVALID_OPENING_QUOTE':
      return `line ${line}${col}: a quote (") inside an unquoted cell; quote the whole cell and double the quotes inside it ("")`;
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return `line ${line}${col}: unexpected text after a closing quote; a cell that starts with a quote must end with one`;
    case 'CSV_MAX_RECORD_SIZE':
      return `line ${line}${col}: row is longer than ${limits.recordChars} characters (is a quote left open?)`;
    default:
      return `line ${line}${col}: malformed CSV: ${err.message}`;
  }
}

function isCsvError(err: unknown): err is { code: string; index?: unknown; message: string } {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^(CSV_|INVALID_)/.test(code);
}

/**
 * csv-parse reports a syntax error by destroying its stream, which drops the records still
 * buffered before it, so an earlier row's error (or the right line number) would be lost. This
 * parser hands the error over in band instead, after the records that precede it.
 */
class CsvFailure {
  constructor(readonly error: unknown) {}
}

class InBandErrorParser extends Parser {
  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    super._transform(chunk, encoding, (err?: Error | null) => this.settle(err, callback));
  }

  override _flush(callback: (err?: Error | null) => void): void {
    super._flush((err?: Error | null) => this.settle(err, callback));
  }

  private settle(err: Error | null | undefined, callback: (err?: Error | null) => void): void {
    if (err) {
      this.push(new CsvFailure(err));
      this.push(null);
    }
    callback();
  }
}

function countNewlines(record: string[]): number {
  let n = 0;
  for (const f of record) {
    let i = f.indexOf('\n');
    while (i !== -1) {
      n++;
      i = f.indexOf('\n', i + 1);
    }
  }
  return n;
}

/**
 * Parses a CSV byte stream and yields validated products in batches of up to `limits.batchSize`.
 * Throws AppError(400) on the first problem (the caller aborts what it stored). Errors of the
 * source (e.g. AppError(413) from the multipart reader) are rethrown unchanged. Returning early
 * (break) cancels the source. The generator's return value summarises the file.
 */
export async function* readProductBatches(source: ByteSource, limits: CsvLimits): AsyncGenerator<ProductRecord[], CsvSummary, undefined> {
  const recordChars = limits.maxRecordChars ?? Math.max(limits.maxCellChars * 3 + 1024, 4096);
  const peeked = await peekHeaderLine(source);
  const delimiter = detectDelimiter(peeked.headerLine);
  const scanner = new ByteScanner(delimiter.charCodeAt(0));
  const bytes = Readable.from(scannedBytes(replay(peeked), scanner), { objectMode: true, highWaterMark: 4 });
  const parser = new InBandErrorParser({
    bom: true,
    delimiter,
    relax_column_count: true, // field counts are checked here, with a better message
    skip_empty_lines: false, // blank lines come through as [""] so that line numbers stay exact
    max_record_size: recordChars,
  });
  pipeline(bytes, parser, () => {
    /* errors surface through the parser's iterator */
  });
  const schemas = buildRowSchemas(limits);

  let header: Header | null = null;
  let nextLine = 1; // line the next record starts on
  let rows = 0;
  let products = 0;
  let urls = 0;
  const serials = new Map<number, number>(); // serial → line, seed format
  const grouped = new Map<string, { firstLine: number; urls: Set<string> }>(); // simple format
  let batch: ProductRecord[] = [];

  const byteProblem = (p: ByteProblem) => new AppError(400, `line ${p.line}, ${columnLabel(p.recordLine > (header?.line ?? Infinity) ? header : null, p.field)}: ${p.reason}`);

  try {
    try {
      for await (const rec of parser as AsyncIterable<string[] | CsvFailure>) {
        if (rec instanceof CsvFailure) throw rec.error;
        const line = nextLine;
        nextLine += 1 + countNewlines(rec);
        if (scanner.problem && line >= scanner.problem.recordLine) throw byteProblem(scanner.problem);
        if (rec.every((f) => f.trim() === '')) continue; // blank line (or only commas)

        if (!header) {
          header = readHeader(rec, line, delimiter);
          continue;
        }

        rows++;
        if (rows > limits.maxRows) {
          throw new AppError(400, `line ${line}: too many rows: the limit is ${limits.maxRows} data rows per file`);
        }
        if (rec.length !== header.labels.length) {
          if (rec.length > header.labels.length) {
            throw new AppError(
              400,
              `line ${line}, column ${header.labels.length + 1} (after the last ${columnLabel(header, header.labels.length - 1)}): the row has ${rec.length} cells but the header has ${header.labels.length}; ${shiftHint(header.delimiter)}`,
            );
          }
          throw new AppError(400, `line ${line}, ${columnLabel(header, rec.length)}: missing; the row has ${rec.length} cells but the header has ${header.labels.length}`);
        }

        const idx = header.index;
        const input = { serial: rec[idx.serial ?? -1], name: rec[idx.name!], urls: rec[idx.urls!] };
        const parsed = header.format === 'seed' ? schemas.seed.safeParse(input) : schemas.simple.safeParse(input);
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          const key = issue.path[0] as ColumnKey;
          throw new AppError(400, `line ${line}, ${columnLabel(header, idx[key] ?? 0)}: ${issue.message}`);
        }
        const value = parsed.data as { serial?: number; name: string; urls: string[] };

        if (header.format === 'seed') {
          const serial = value.serial!;
          const seenAt = serials.get(serial);
          if (seenAt !== undefined) {
            throw new AppError(400, `line ${line}, ${columnLabel(header, idx.serial!)}: serial number ${serial} is already used on line ${seenAt}`);
          }
          serials.set(serial, line);
          if (value.urls.length > limits.maxUrlsPerProduct) {
            throw new AppError(400, `line ${line}, ${columnLabel(header, idx.urls!)}: ${value.urls.length} image URLs; the limit is ${limits.maxUrlsPerProduct} per product`);
          }
          batch.push({ serial, name: value.name, inputUrls: value.urls });
          products++;
          urls += value.urls.length;
          if (batch.length >= limits.batchSize) {
            const out = batch;
            batch = [];
            yield out;
          }
        } else {
          let group = grouped.get(value.name);
          if (!group) {
            group = { firstLine: line, urls: new Set() };
            grouped.set(value.name, group);
          }
          for (const u of value.urls) group.urls.add(u);
          if (group.urls.size > limits.maxUrlsPerProduct) {
            throw new AppError(
              400,
              `line ${line}, ${columnLabel(header, idx.urls!)}: product ${quote(value.name)} (first on line ${group.firstLine}) has more than ${limits.maxUrlsPerProduct} image URLs`,
            );
          }
        }
      }
    } catch (err) {
      if (scanner.problem && !(err instanceof AppError)) throw byteProblem(scanner.problem);
      if (isCsvError(err)) throw new AppError(400, csvErrorDetail(err, nextLine, header, { recordChars }));
      throw err;
    }
    if (scanner.problem) throw byteProblem(scanner.problem);

    if (!header) {
      throw new AppError(400, `line 1: the file is empty; expected a header row: ${EXPECTED_HEADERS}`);
    }
    if (rows === 0) {
      throw new AppError(400, `line ${header.line + 1}: no data rows; the file has only a header`);
    }

    if (header.format === 'simple') {
      let serial = 0;
      for (const [name, group] of grouped) {
        const list = [...group.urls];
        batch.push({ serial: ++serial, name, inputUrls: list });
        urls += list.length;
        if (batch.length >= limits.batchSize) {
          const out = batch;
          batch = [];
          yield out;
        }
      }
      products = serial;
      grouped.clear();
    }
    if (batch.length > 0) yield batch;
    return { format: header.format, rows, products, urls };
  } finally {
    parser.destroy();
    bytes.destroy();
  }
}
