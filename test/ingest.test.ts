// Unit tests for the upload path: multipart reader, CSV rows → product batches, output CSV.
// Everything runs over streams built in the test; no server, no network.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseCsvSync } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { AppError } from '../src/errors.js';
import { outputCsvStream, type OutputRow } from '../src/views/output-csv.js';
import { HEADER_NAMES, readProductBatches, type CsvLimits, type CsvSummary } from '../src/ingest/csv-rows.js';
import { cleanFileName, MAX_FILE_NAME_CHARS } from '../src/ingest/file-name.js';
import { readUpload, type UploadFile } from '../src/ingest/multipart.js';
import type { ProductRecord } from '../src/store/types.js';
import { until } from './helpers/poll.js';

const enc = new TextEncoder();
const LIMITS: CsvLimits = { maxRows: 100_000, maxUrlsPerProduct: 50, maxCellChars: 16_384, batchSize: 2_000 };

// ---- helpers ----------------------------------------------------------------------------------

const bytesOf = (data: string | Uint8Array) => (typeof data === 'string' ? enc.encode(data) : data);

/** A pull-based byte stream over `data`, `chunk` bytes at a time. */
function streamOf(data: string | Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  const bytes = bytesOf(data);
  let pos = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (pos >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(pos, pos + chunk));
        pos += chunk;
      },
    },
    { highWaterMark: 0 },
  );
}

/** A stream of generated lines that records how many bytes were pulled and whether it was cancelled. */
function countingStream(lines: (i: number) => string | null, prefix = '', suffix = '') {
  const stats = { pulled: 0, cancelled: false, finished: false };
  let i = 0;
  let started = false;
  let ended = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        let text = '';
        if (!started) {
          started = true;
          text += prefix;
        }
        while (text.length < 64 * 1024 && !ended) {
          const line = lines(i++);
          if (line === null) {
            ended = true;
            text += suffix;
          } else text += line;
        }
        if (text.length > 0) {
          const b = enc.encode(text);
          stats.pulled += b.length;
          controller.enqueue(b);
        }
        if (ended) {
          stats.finished = true;
          controller.close();
        }
      },
      cancel() {
        stats.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, stats };
}

async function readAll(data: string | Uint8Array, limits: Partial<CsvLimits> = {}, chunk?: number) {
  const gen = readProductBatches(streamOf(data, chunk), { ...LIMITS, ...limits });
  const batches: ProductRecord[][] = [];
  for (;;) {
    const r = await gen.next();
    if (r.done) return { batches, products: batches.flat(), summary: r.value as CsvSummary };
    batches.push(r.value);
  }
}

async function csvError(data: string | Uint8Array, limits: Partial<CsvLimits> = {}, chunk?: number): Promise<AppError> {
  try {
    await readAll(data, limits, chunk);
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected the CSV to be rejected');
}

type Part = { name: string; value: string } | { name: string; filename: string; type?: string; data: string | Uint8Array };

const BOUNDARY = '----vitestBoundary7MA4YWxkTrZu0gW';

function multipartBody(parts: Part[], boundary = BOUNDARY): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const p of parts) {
    if ('value' in p) {
      chunks.push(enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`));
    } else {
      chunks.push(
        enc.encode(
          `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.type ?? 'text/csv'}\r\n\r\n`,
        ),
      );
      chunks.push(bytesOf(p.data));
      chunks.push(enc.encode('\r\n'));
    }
  }
  chunks.push(enc.encode(`--${boundary}--\r\n`));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function uploadRequest(body: ReadableStream<Uint8Array> | Uint8Array | null, headers: Record<string, string> = {}): Request {
  const init = {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, ...headers },
    body: body instanceof Uint8Array ? streamOf(body, 16 * 1024) : body,
    duplex: 'half',
  };
  return new Request('http://127.0.0.1/api/v1/upload', init as RequestInit);
}

async function drain(file: UploadFile): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of file.stream) parts.push(Buffer.from(c));
  return Buffer.concat(parts).toString('utf8');
}

async function uploadError(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected the upload to be rejected');
}

// ---- CSV rows ---------------------------------------------------------------------------------

describe('readProductBatches: accepted files', () => {
  it('reads the seed format with BOM, CRLF, quoted URL lists and duplicate URLs kept once', async () => {
    const csv =
      '\ufeffS. No.,Product Name,Input Image Urls\r\n' +
      '1,SKU1,"https://a.example/1.jpg, https://a.example/2.jpg,https://a.example/1.jpg"\r\n' +
      '2,"Shirt, blue",http://b.example/x.png\r\n' +
      '\r\n' +
      '3,"Two\r\nlines","  https://c.example/y.jpg  "\r\n';
    const { products, summary } = await readAll(csv);
    expect(products).toEqual([
      { serial: 1, name: 'SKU1', inputUrls: ['https://a.example/1.jpg', 'https://a.example/2.jpg'] },
      { serial: 2, name: 'Shirt, blue', inputUrls: ['http://b.example/x.png'] },
      { serial: 3, name: 'Two\r\nlines', inputUrls: ['https://c.example/y.jpg'] },
    ]);
    expect(summary).toEqual({ format: 'seed', rows: 3, products: 3, urls: 4 });
  });

  it('gives the same result whatever the chunking (1-byte chunks split multi-byte characters)', async () => {
    const csv = 'S. No.,Product Name,Input Image Urls\n1,Café ☕ 🍰,"http://x.example/1.jpg,http://x.example/2.jpg"\n2,naïve,http://x.example/3.jpg';
    const whole = await readAll(csv);
    const tiny = await readAll(csv, {}, 1);
    expect(tiny.products).toEqual(whole.products);
    expect(whole.products[0]!.name).toBe('Café ☕ 🍰');
  });

  it('reads the simple format, grouping rows by product in order of first appearance', async () => {
    const csv = 'product_name,image_url\nproduct1,http://example.com/image1.jpg\nproduct2,http://example.com/image2.png\nproduct1,http://example.com/image3.jpg\nproduct1,http://example.com/image1.jpg\n';
    const { products, summary } = await readAll(csv);
    expect(products).toEqual([
      { serial: 1, name: 'product1', inputUrls: ['http://example.com/image1.jpg', 'http://example.com/image3.jpg'] },
      { serial: 2, name: 'product2', inputUrls: ['http://example.com/image2.png'] },
    ]);
    expect(summary).toMatchObject({ format: 'simple', rows: 4, products: 2, urls: 3 });
  });

  it.each([
    ['S NO.,product name,INPUT IMAGE URLS', '7,Thing,http://x.example/a.jpg', 'seed'],
    ['serial_number,Product_Name,image_urls', '7,Thing,http://x.example/a.jpg', 'seed'],
    ['sno,name,image_url', '7,Thing,http://x.example/a.jpg', 'seed'],
    [' S. No. , Product Name , Input Image Urls ', '7,Thing,http://x.example/a.jpg', 'seed'],
    ['Input Image Urls,Product Name,S.No', 'http://x.example/a.jpg,Thing,7', 'seed'],
    ['Product Name,Image URL', 'Thing,http://x.example/a.jpg', 'simple'],
    ['PRODUCT-NAME,Image_Urls,notes', 'Thing,http://x.example/a.jpg,ignored', 'simple'],
  ])('matches header %j', async (header, row, format) => {
    const { products, summary } = await readAll(`${header}\n${row}\n`);
    expect(summary.format).toBe(format);
    expect(products).toEqual([{ serial: format === 'seed' ? 7 : 1, name: 'Thing', inputUrls: ['http://x.example/a.jpg'] }]);
  });

  it.each([
    ['semicolons (Excel in much of Europe)', ';'],
    ['tabs', '\t'],
  ])('detects %s from the header row', async (_name, d) => {
    const seed = `\uFEFFS. No.${d}Product Name${d}Input Image Urls\r\n1${d}"Caf\u00e9 ""Deluxe"""${d}"http://x.example/a.jpg,http://x.example/b.jpg"\r\n2${d}b, with a comma${d}http://x.example/c.jpg\r\n`;
    for (const chunk of [1, 7, 64 * 1024]) {
      const { products, summary } = await readAll(seed, {}, chunk);
      expect(summary.format).toBe('seed');
      expect(products).toEqual([
        { serial: 1, name: 'Caf\u00e9 "Deluxe"', inputUrls: ['http://x.example/a.jpg', 'http://x.example/b.jpg'] },
        { serial: 2, name: 'b, with a comma', inputUrls: ['http://x.example/c.jpg'] },
      ]);
    }
    const simple = await readAll(`product_name${d}image_url\na${d}http://x.example/1.jpg\na${d}http://x.example/2.jpg\n`);
    expect(simple.products).toEqual([{ serial: 1, name: 'a', inputUrls: ['http://x.example/1.jpg', 'http://x.example/2.jpg'] }]);
  });

  it('accepts its own output CSV as input (the output column is ignored)', async () => {
    const csv = 'S. No.,Product Name,Input Image Urls,Output Image Urls\r\n1,A,"http://x.example/1.jpg","http://svc/images/k.jpg"\r\n';
    const { products } = await readAll(csv);
    expect(products).toEqual([{ serial: 1, name: 'A', inputUrls: ['http://x.example/1.jpg'] }]);
  });

  it('skips blank lines and lines of empty cells; tolerates empty entries in a URL list', async () => {
    const csv = '\nsno,name,urls\n\n1,a,"http://x.example/1,,http://x.example/2,"\n,,\n  \n';
    const { products } = await readAll(csv);
    expect(products).toEqual([{ serial: 1, name: 'a', inputUrls: ['http://x.example/1', 'http://x.example/2'] }]);
  });

  it('accepts 100 000 rows in bounded batches while streaming', async () => {
    const total = 100_000;
    const { stream, stats } = countingStream(
      (i) => (i < total ? `${i + 1},Product ${i + 1},"https://img.example/${i}/a.jpg,https://img.example/${i}/b.jpg"\n` : null),
      'S. No.,Product Name,Input Image Urls\n',
    );
    let count = 0;
    let maxBatch = 0;
    let pulledAtFirstBatch = -1;
    const gen = readProductBatches(stream, { ...LIMITS, batchSize: 1_000 });
    let r = await gen.next();
    while (!r.done) {
      if (pulledAtFirstBatch < 0) pulledAtFirstBatch = stats.pulled;
      maxBatch = Math.max(maxBatch, r.value.length);
      count += r.value.length;
      r = await gen.next();
    }
    expect(count).toBe(total);
    expect(maxBatch).toBe(1_000);
    expect(r.value).toMatchObject({ format: 'seed', rows: total, products: total, urls: 2 * total });
    // The first batch came out long before the file was read: the parser streams.
    expect(stats.finished).toBe(true);
    expect(pulledAtFirstBatch).toBeLessThan(stats.pulled / 10);
  }, 60_000);

  it('stops reading the source when the consumer stops early', async () => {
    const { stream, stats } = countingStream((i) => (i < 1_000_000 ? `${i + 1},P,http://x.example/${i}\n` : null), 'sno,name,urls\n');
    for await (const batch of readProductBatches(stream, { ...LIMITS, maxRows: 2_000_000, batchSize: 100 })) {
      expect(batch).toHaveLength(100);
      break;
    }
    await until(() => stats.cancelled, 'the source to be cancelled');
    expect(stats.pulled).toBeLessThan(2 * 1024 * 1024);
  });

  it('rethrows errors of the source unchanged', async () => {
    const failing = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode('sno,name,urls\n1,a,http://x.example/1\n'));
      },
      pull(c) {
        c.error(new AppError(413, 'upload is larger than 10 bytes'));
      },
    });
    await expect(readProductBatches(failing, LIMITS).next()).rejects.toMatchObject({ status: 413 });
  });
});

describe('readProductBatches: rejected files name the line and the column', () => {
  const H = 'S. No.,Product Name,Input Image Urls\n';
  const latin1 = new Uint8Array([...enc.encode(`${H}1,ok,http://x.example/1\n2,Caf`), 0xe9, ...enc.encode(',http://x.example/2\n')]);
  const nul = new Uint8Array([...enc.encode(`${H}1,ok,http://x.example/1\n2,ok,http://x.example/`), 0x00, 0x01, ...enc.encode('\n')]);
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const utf16 = new Uint8Array([0xff, 0xfe, ...[...'sno,name'].flatMap((ch) => [ch.charCodeAt(0), 0])]);

  it.each<[string, string | Uint8Array, RegExp]>([
    ['empty file', '', /^line 1: the file is empty/],
    ['only blank lines', '\r\n\r\n', /^line 1: the file is empty/],
    ['header only', H, /^line 2: no data rows/],
    ['missing column', 'S. No.,Product Name\n1,a\n', /^line 1, column "Input Image Urls": required column is missing/],
    ['missing column (simple)', 'product_name,notes\na,b\n', /^line 1, column "image_url": required column is missing/],
    ['unknown header names the delimiter it saw', 'Artikel;Bild\na;http://x/1\n', /^line 1, column "product_name": required column is missing; the header, read as semicolon-separated \(;\), has "Artikel", "Bild"/],
    ['unknown header lists the accepted forms', 'foo,bar\na,b\n', /read as comma-separated \(,\), has "foo", "bar"; accepted headers: .*S\. No\..*Product Name.*Input Image Urls.*product_name.*image_url/],
    ['bad cell in a tab-separated file names its column', 'sno\tname\turls\n1\ta\tftp://x/1\n', /^line 2, column "urls": "ftp:\/\/x\/1" is not an http\(s\) URL/],
    ['extra cell in a semicolon file counts semicolons', 'sno;name;urls\n1;a;http://x/1;http://x/2\n', /^line 2, column 4 \(after the last column "urls"\): the row has 4 cells but the header has 3; an unquoted semicolon/],
    ['binary byte in a semicolon file names its column', new Uint8Array([...enc.encode('sno;name;urls\n1;a'), 0x00, ...enc.encode(';http://x/1\n')]), /^line 2, column "name": contains the control character 0x00/],
    ['duplicate column', 'sno,name,urls,image_url\n1,a,http://x/1,http://x/2\n', /^line 1, column "image_url": duplicate column/],
    ['unquoted comma shifts the columns', `${H}1,a,http://x.example/1\n2,b,http://x.example/2,http://x.example/3\n`, /^line 3, column 4 \(after the last column "Input Image Urls"\): the row has 4 cells but the header has 3; an unquoted comma/],
    ['too few cells', `${H}1,a,http://x.example/1\n2,b\n`, /^line 3, column "Input Image Urls": missing; the row has 2 cells/],
    ['ftp URL', `${H}1,a,"http://x.example/1,ftp://x/y.jpg"\n`, /^line 2, column "Input Image Urls": "ftp:\/\/x\/y.jpg" is not an http\(s\) URL/],
    ['javascript URL', `${H}1,a,javascript:alert(1)\n`, /^line 2, column "Input Image Urls": "javascript:alert\(1\)" is not an http\(s\) URL/],
    ['relative URL', `${H}1,a,/images/1.jpg\n`, /^line 2, column "Input Image Urls": "\/images\/1.jpg" is not an absolute http\(s\) URL/],
    ['URL without scheme', `${H}1,a,www.example.com/1.jpg\n`, /^line 2, column "Input Image Urls": .* is not an absolute http\(s\) URL \(add http:\/\/ or https:\/\/\)/],
    ['empty URL cell', `${H}1,a,\n`, /^line 2, column "Input Image Urls": no image URL/],
    ['URLs separated by spaces', `${H}1,a,"http://x/1.jpg http://x/2.jpg"\n`, /^line 2, column "Input Image Urls": .* contains whitespace/],
    ['empty product name', `${H}1, ,http://x.example/1\n`, /^line 2, column "Product Name": product name is empty/],
    ['serial not a number', `${H}one,a,http://x.example/1\n`, /^line 2, column "S. No.": "one" is not a positive integer/],
    ['serial zero', `${H}0,a,http://x.example/1\n`, /^line 2, column "S. No.": "0" is not a positive integer/],
    ['duplicate serial', `${H}1,a,http://x.example/1\n\n1,b,http://x.example/2\n`, /^line 4, column "S. No.": serial number 1 is already used on line 2/],
    ['non-UTF-8 bytes (Latin-1)', latin1, /^line 3, column "Product Name": byte 0xE9 is not valid UTF-8/],
    ['binary data (NUL)', nul, /^line 3, column "Input Image Urls": contains the control character 0x00: this looks like binary data/],
    ['a PNG renamed .csv', png, /^line 1, column 1: byte 0x89 is not valid UTF-8/],
    ['UTF-16', utf16, /^line 1, column 1: the file is UTF-16/],
    ['unclosed quote', `${H}1,a,http://x.example/1\n2,"b,http://x.example/2\n`, /^line 3, column "Product Name": a quoted cell is never closed/],
    ['stray quote', `${H}1,a "b",http://x.example/1\n`, /^line 2, column "Product Name": a quote \(\"\) inside an unquoted cell/],
    ['text after a closing quote', `${H}1,"a"b,http://x.example/1\n`, /^line 2, column "Product Name": unexpected text after a closing quote/],
    ['simple format: bad URL names the line', 'product_name,image_url\na,http://x/1\nb,ftp://x/2\n', /^line 3, column "image_url": "ftp:\/\/x\/2" is not an http\(s\) URL/],
  ])('%s', async (_name, data, detail) => {
    const err = await csvError(data);
    expect(err.status).toBe(400);
    expect(err.detail).toMatch(detail);
  });

  it('reports the first problem in file order (a bad row before a binary byte)', async () => {
    const data = new Uint8Array([...enc.encode(`${H}1,a,ftp://x/1\n2,b,http://x/`), 0x00, ...enc.encode('\n')]);
    expect((await csvError(data)).detail).toMatch(/^line 2, column "Input Image Urls": "ftp:/);
  });

  it('finds the right line and column whatever the chunking', async () => {
    for (const chunk of [1, 3, 17, 4096]) {
      expect((await csvError(latin1, {}, chunk)).detail).toMatch(/^line 3, column "Product Name": byte 0xE9/);
      expect((await csvError(`${H}1,a,http://x/1\r\n2,"b\r\nc",ftp://x/2\r\n`, {}, chunk)).detail).toMatch(/^line 3, column "Input Image Urls": "ftp:/);
    }
  });

  it('limits URLs per product, cell length and row size', async () => {
    const urls = Array.from({ length: 4 }, (_, i) => `http://x.example/${i}`).join(',');
    expect((await csvError(`${H}1,a,"${urls}"\n`, { maxUrlsPerProduct: 3 })).detail).toMatch(/^line 2, column "Input Image Urls": 4 image URLs; the limit is 3 per product/);
    const simple = 'product_name,image_url\na,http://x/1\nb,http://x/2\na,http://x/3\na,http://x/4\n';
    expect((await csvError(simple, { maxUrlsPerProduct: 2 })).detail).toMatch(/^line 5, column "image_url": product "a" \(first on line 2\) has more than 2 image URLs/);
    expect((await csvError(`${H}1,${'n'.repeat(40)},http://x/1\n`, { maxCellChars: 32 })).detail).toMatch(/^line 2, column "Product Name": cell is longer than 32 characters/);
    expect((await csvError(`${H}1,"${'n'.repeat(200_000)}\n`)).detail).toMatch(/^line 2, column "Product Name": row is longer than \d+ characters/);
  });

  it('rejects 100 001 data rows with "too many rows" without reading further', async () => {
    const { stream, stats } = countingStream((i) => (i < 100_001 ? `${i + 1},P${i},http://x.example/${i}.jpg\n` : i < 200_000 ? `${i + 1},P${i},http://x.example/${i}.jpg\n` : null), 'S. No.,Product Name,Input Image Urls\n');
    let err: unknown;
    try {
      for await (const _batch of readProductBatches(stream, LIMITS)) {
        /* drain */
      }
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(400);
    expect((err as AppError).detail).toBe('line 100002: too many rows: the limit is 100000 data rows per file');
    await until(() => stats.cancelled, 'the source to be cancelled');
    expect(stats.finished).toBe(false);
  }, 60_000);

  it('counts exactly: 100 001 rows is one too many, also in the simple format', async () => {
    let csv = 'product_name,image_url\n';
    for (let i = 0; i < 100_001; i++) csv += `p${i % 10},http://x.example/${i}.jpg\n`;
    const err = await csvError(csv, { maxUrlsPerProduct: 1_000_000 });
    expect(err.detail).toMatch(/^line 100002: too many rows/);
  }, 60_000);
});

// ---- multipart ------------------------------------------------------------------------------

describe('the accepted header names', () => {
  it('are the ones docs/api.md lists, and the unknown-header error lists them all', async () => {
    const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'api.md'), 'utf8');
    const err = await csvError('foo,bar\na,b\n');
    for (const name of Object.values(HEADER_NAMES).flat()) {
      expect(doc, name).toContain(`\`${name}\``);
      expect(err.detail, name).toContain(name);
    }
  });
});

describe('cleanFileName', () => {
  it('keeps the base name without control or bidi characters, capped; null when nothing is left', () => {
    expect(cleanFileName('products.csv')).toBe('products.csv');
    expect(cleanFileName('C:\\a\\b/c d.csv')).toBe('c d.csv');
    expect(cleanFileName(' x\u0000\u001b[31m\u202e.csv ')).toBe('x[31m.csv');
    expect(cleanFileName(`${'\u00e9'.repeat(300)}`)).toBe('\u00e9'.repeat(MAX_FILE_NAME_CHARS));
    for (const none of [undefined, null, '', '  ', '\u0007', 'dir/']) expect(cleanFileName(none)).toBeNull();
  });
});

describe('readUpload', () => {
  const CSV = 'S. No.,Product Name,Input Image Urls\n1,SKU1,"http://x.example/1.jpg,http://x.example/2.jpg"\n';

  it('streams the file part to onFile and returns fields sent before and after it', async () => {
    const body = multipartBody([
      { name: 'note', value: 'before' },
      { name: 'file', filename: 'products.csv', data: CSV },
      { name: 'webhook_url', value: 'https://hooks.example/x' },
    ]);
    let seen: UploadFile | null = null;
    const out = await readUpload(uploadRequest(body), { maxBytes: 1024 * 1024 }, async (file) => {
      seen = file;
      const products: ProductRecord[] = [];
      for await (const batch of readProductBatches(file.stream, LIMITS)) products.push(...batch);
      return products;
    });
    expect(out.result).toEqual([{ serial: 1, name: 'SKU1', inputUrls: ['http://x.example/1.jpg', 'http://x.example/2.jpg'] }]);
    expect(out.fields).toEqual({ note: 'before', webhook_url: 'https://hooks.example/x' });
    expect(out.filename).toBe('products.csv');
    expect(out.bytes).toBe(body.length);
    expect(seen!.fieldsBefore).toEqual({ note: 'before' });
    expect(seen!.mimeType).toBe('text/csv');
  });

  it('drains what onFile leaves unread so later fields still arrive', async () => {
    const body = multipartBody([
      { name: 'file', filename: 'p.csv', type: 'application/octet-stream', data: 'x'.repeat(300_000) },
      { name: 'webhook_url', value: 'https://hooks.example/y' },
    ]);
    const out = await readUpload(uploadRequest(body), { maxBytes: 1024 * 1024 }, async () => 'ignored');
    expect(out.fields.webhook_url).toBe('https://hooks.example/y');
  });

  it('accepts text/plain, application/vnd.ms-excel and unnamed types for .csv files', async () => {
    for (const type of ['text/plain', 'application/vnd.ms-excel', 'application/octet-stream']) {
      const body = multipartBody([{ name: 'file', filename: 'p.csv', type, data: CSV }]);
      const out = await readUpload(uploadRequest(body), { maxBytes: 1024 * 1024 }, drain);
      expect(out.result).toBe(CSV);
    }
  });

  it('415 when the request is not multipart/form-data', async () => {
    const req = new Request('http://127.0.0.1/api/v1/upload', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const err = await uploadError(readUpload(req, { maxBytes: 1024 }, drain));
    expect(err.status).toBe(415);
    expect(err.detail).toMatch(/expected Content-Type multipart\/form-data .*"file", got "application\/json"/);
    const none = new Request('http://127.0.0.1/api/v1/upload', { method: 'POST', body: 'x' });
    none.headers.delete('content-type');
    expect((await uploadError(readUpload(none, { maxBytes: 1024 }, drain))).status).toBe(415);
  });

  it('415 when the file part is clearly not a CSV', async () => {
    const png = multipartBody([{ name: 'file', filename: 'photo.png', type: 'image/png', data: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) }]);
    const err = await uploadError(readUpload(uploadRequest(png), { maxBytes: 1024 * 1024 }, drain));
    expect(err.status).toBe(415);
    expect(err.detail).toMatch(/image\/png/);
    const xlsx = multipartBody([{ name: 'file', filename: 'products.xlsx', type: 'application/octet-stream', data: 'PK' }]);
    const err2 = await uploadError(readUpload(uploadRequest(xlsx), { maxBytes: 1024 * 1024 }, drain));
    expect(err2.status).toBe(415);
    expect(err2.detail).toMatch(/products\.xlsx/);
  });

  it.each<[string, Part[], RegExp]>([
    ['no file field', [{ name: 'webhook_url', value: 'https://hooks.example/x' }], /missing the "file" field/],
    ['file sent as a text field', [{ name: 'file', value: CSV }], /must be a file part with a filename/],
    ['file under another name', [{ name: 'csv', filename: 'p.csv', data: CSV }], /unexpected file field "csv"/],
    ['two files', [{ name: 'file', filename: 'a.csv', data: CSV }, { name: 'file', filename: 'b.csv', data: CSV }], /more than one file/],
    ['too many fields', Array.from({ length: 9 }, (_, i) => ({ name: `f${i}`, value: 'v' })), /too many form fields \(the limit is 8\)/],
    ['oversized field value', [{ name: 'webhook_url', value: `https://hooks.example/${'a'.repeat(9000)}` }, { name: 'file', filename: 'a.csv', data: CSV }], /"webhook_url" is longer than 8192 bytes/],
  ])('400: %s', async (_name, parts, detail) => {
    const err = await uploadError(readUpload(uploadRequest(multipartBody(parts)), { maxBytes: 1024 * 1024 }, drain));
    expect(err.status).toBe(400);
    expect(err.detail).toMatch(detail);
  });

  it('400 on malformed multipart, never a crash', async () => {
    const full = multipartBody([{ name: 'file', filename: 'a.csv', data: CSV }]);
    const truncated = full.slice(0, full.length - 30);
    const cases: Array<[Request, RegExp]> = [
      [uploadRequest(truncated), /malformed multipart\/form-data body: Unexpected end of (form|file)/],
      [uploadRequest(enc.encode('this is not multipart at all')), /malformed multipart|missing the "file" field/],
      [uploadRequest(enc.encode(`--${BOUNDARY}\r\nno-colon-header\r\n\r\nx\r\n--${BOUNDARY}--\r\n`)), /malformed multipart|missing the "file" field/],
      [uploadRequest(full, { 'content-type': 'multipart/form-data' }), /malformed multipart\/form-data Content-Type/],
    ];
    for (const [req, detail] of cases) {
      const err = await uploadError(readUpload(req, { maxBytes: 1024 * 1024 }, drain));
      expect(err.status).toBe(400);
      expect(err.detail).toMatch(detail);
    }
  });

  it('passes the CSV error of onFile through (and stops reading the body)', async () => {
    const bad = 'S. No.,Product Name,Input Image Urls\n1,a,ftp://x/1.jpg\n' + '2,b,http://x/2.jpg\n'.repeat(200_000);
    const body = multipartBody([{ name: 'file', filename: 'a.csv', data: bad }]);
    let pulled = 0;
    const source = streamOf(body, 64 * 1024);
    const reader = source.getReader();
    const counted = new ReadableStream<Uint8Array>({
      async pull(c) {
        const r = await reader.read();
        if (r.done) return c.close();
        pulled += r.value.length;
        c.enqueue(r.value);
      },
    }, { highWaterMark: 0 });
    const err = await uploadError(
      readUpload(uploadRequest(counted), { maxBytes: 50 * 1024 * 1024 }, async (file) => {
        for await (const _b of readProductBatches(file.stream, LIMITS)) {
          /* drain */
        }
      }),
    );
    expect(err.status).toBe(400);
    expect(err.detail).toMatch(/^line 2, column "Input Image Urls": "ftp:/);
    expect(pulled).toBeLessThan(body.length / 4);
  });

  it('413 up front on a declared Content-Length over the cap, before reading anything', async () => {
    const { stream, stats } = countingStream((i) => (i < 1000 ? 'x'.repeat(1000) : null));
    const req = uploadRequest(stream, { 'content-length': String(60 * 1024 * 1024) });
    expect(req.headers.get('content-length')).toBe(String(60 * 1024 * 1024));
    const err = await uploadError(readUpload(req, { maxBytes: 50 * 1024 * 1024 }, drain));
    expect(err.status).toBe(413);
    expect(stats.pulled).toBe(0);
  });

  it('413 while streaming a 60 MB body without Content-Length, long before its end', async () => {
    const MB = 1024 * 1024;
    const total = 60 * MB;
    const row = (i: number) => `${i + 1},Product ${i + 1},"https://img.example/${'p'.repeat(560)}/${i}.jpg"\n`;
    const prefix = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\nS. No.,Product Name,Input Image Urls\n`;
    let produced = 0;
    const { stream, stats } = countingStream((i) => {
      if (produced >= total) return null;
      const r = row(i);
      produced += r.length;
      return r;
    }, prefix, `\r\n--${BOUNDARY}--\r\n`);
    let batches = 0;
    const err = await uploadError(
      readUpload(uploadRequest(stream), { maxBytes: 50 * MB }, async (file) => {
        for await (const _b of readProductBatches(file.stream, { ...LIMITS, batchSize: 500 })) batches++;
      }),
    );
    expect(err.status).toBe(413);
    expect(err.detail).toMatch(/larger than 52428800 bytes/);
    // Rejected as soon as the cap was crossed: at most one chunk past 50 MB, far from 60 MB.
    expect(stats.pulled).toBeGreaterThan(50 * MB);
    expect(stats.pulled).toBeLessThanOrEqual(50 * MB + 128 * 1024);
    expect(stats.finished).toBe(false);
    expect(stats.cancelled).toBe(true);
    // The CSV was being parsed while it arrived, not after.
    expect(batches).toBeGreaterThan(10);
  }, 60_000);

  it('applies backpressure: a slow consumer keeps the body mostly unread', async () => {
    const prefix = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n`;
    const { stream, stats } = countingStream((i) => (i < 200_000 ? `${'z'.repeat(99)}\n` : null), prefix, `\r\n--${BOUNDARY}--\r\n`);
    const pulledWhileWaiting: number[] = [];
    await readUpload(uploadRequest(stream), { maxBytes: 50 * 1024 * 1024 }, async (file) => {
      const it = file.stream[Symbol.asyncIterator]();
      await it.next();
      await new Promise((r) => setTimeout(r, 100)); // the slow consumer under test, not a wait for a state
      pulledWhileWaiting.push(stats.pulled);
      for (let r = await it.next(); !r.done; r = await it.next()) {
        /* drain */
      }
    });
    expect(stats.finished).toBe(true);
    expect(pulledWhileWaiting[0]).toBeLessThan(2 * 1024 * 1024); // of 20 MB
  });
});

// ---- output CSV -------------------------------------------------------------------------------

async function textOf(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

async function* pagesOf<T>(...pages: T[][]): AsyncGenerator<T[]> {
  for (const p of pages) yield p;
}

describe('outputCsvStream', () => {
  const rows: OutputRow[] = [
    { serial: 1, name: 'SKU1', inputUrls: ['https://a.example/1.jpg', 'https://a.example/2.jpg'], outputUrls: ['http://svc/images/k1.jpg', 'http://svc/images/k2.jpg'] },
    { serial: 2, name: 'Shirt, "blue"\nXL', inputUrls: ['https://a.example/3.jpg', 'https://a.example/4.jpg', 'https://a.example/5.jpg'], outputUrls: ['http://svc/images/k3.jpg', null, 'http://svc/images/k5.jpg'] },
    { serial: 3, name: '=HYPERLINK("http://evil")', inputUrls: ['https://a.example/6.jpg'], outputUrls: [null] },
    { serial: 4, name: '+1 sale', inputUrls: ['https://a.example/7.jpg'], outputUrls: ['http://svc/images/k7.jpg'] },
    { serial: 5, name: '-5%', inputUrls: ['https://a.example/8.jpg'], outputUrls: ['http://svc/images/k8.jpg'] },
    { serial: 6, name: '@SUM(A1)', inputUrls: ['https://a.example/9.jpg'], outputUrls: ['http://svc/images/k9.jpg'] },
    { serial: 7, name: '\tcmd', inputUrls: ['https://a.example/10.jpg'], outputUrls: ['http://svc/images/k10.jpg'] },
    { serial: 8, name: '\rcmd', inputUrls: ['https://a.example/11.jpg'], outputUrls: [] },
  ];

  it('quotes every cell, the header included, with RFC 4180 quote doubling and CRLF', async () => {
    const text = await textOf(outputCsvStream(pagesOf(rows.slice(0, 2), [], rows.slice(2))));
    const lines = text.split('\r\n');
    expect(lines[0]).toBe('"S. No.","Product Name","Input Image Urls","Output Image Urls"');
    expect(lines[1]).toBe('"1","SKU1","https://a.example/1.jpg,https://a.example/2.jpg","http://svc/images/k1.jpg,http://svc/images/k2.jpg"');
    expect(text).toContain('\r\n"2","Shirt, ""blue""\nXL","https://a.example/3.jpg,https://a.example/4.jpg,https://a.example/5.jpg","http://svc/images/k3.jpg,,http://svc/images/k5.jpg"\r\n');
    expect(text.endsWith('\r\n')).toBe(true);
  });

  it('quotes a cell that hides a formula behind another separator', async () => {
    const text = await textOf(outputCsvStream(pagesOf([{ serial: 9, name: 'x;=1+1', inputUrls: ['https://a.example/1.jpg'], outputUrls: [null] }])));
    expect(text.split('\r\n')[1]).toBe('"9","x;=1+1","https://a.example/1.jpg",""');
  });

  it('neutralises cells that start with = + - @ TAB or CR', async () => {
    const text = await textOf(outputCsvStream(pagesOf(rows)));
    expect(text).toContain(`\r\n"3","'=HYPERLINK(""http://evil"")","https://a.example/6.jpg",""\r\n`);
    expect(text).toContain(`\r\n"4","'+1 sale",`);
    expect(text).toContain(`\r\n"5","'-5%",`);
    expect(text).toContain(`\r\n"6","'@SUM(A1)",`);
    expect(text).toContain(`\r\n"7","'\tcmd",`);
    expect(text).toContain(`\r\n"8","'\rcmd",`);
  });

  it('round-trips through csv-parse, output entries aligned with inputs (failed → empty)', async () => {
    const text = await textOf(outputCsvStream(pagesOf(rows)));
    const records = parseCsvSync(text, { columns: true, bom: true }) as Record<string, string>[];
    expect(records).toHaveLength(rows.length);
    records.forEach((rec, i) => {
      const row = rows[i]!;
      expect(rec['S. No.']).toBe(String(row.serial));
      expect(rec['Product Name']!.replace(/^'(?=[=+\-@\t\r])/, '')).toBe(row.name);
      expect(rec['Input Image Urls']!.split(',')).toEqual(row.inputUrls);
      expect(rec['Output Image Urls']!.split(',')).toEqual(row.inputUrls.map((_, j) => row.outputUrls[j] ?? ''));
    });
    // ...and the output is accepted back as an input CSV (the extra column is ignored).
    const back = await readAll(text.replace(/'(?=[=+\-@\t\r])/g, ''));
    expect(back.products.map((p) => p.serial)).toEqual(rows.map((r) => r.serial));
  });

  it('pulls pages lazily and closes the source when cancelled', async () => {
    let pulled = 0;
    let closed = false;
    async function* pages(): AsyncGenerator<OutputRow[]> {
      try {
        for (let i = 0; i < 1_000; i++) {
          pulled++;
          yield [{ serial: i + 1, name: `p${i}`, inputUrls: ['http://x/1'], outputUrls: ['http://y/1'] }];
        }
      } finally {
        closed = true;
      }
    }
    const reader = outputCsvStream(pages()).getReader();
    await reader.read(); // header
    await reader.read(); // first page
    await reader.cancel();
    expect(pulled).toBeLessThan(5);
    expect(closed).toBe(true);
  });
});
