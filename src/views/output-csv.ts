// The output CSV, written as a stream, one page of products at a time.
//
//   "S. No.","Product Name","Input Image Urls","Output Image Urls"
//   "1","SKU1","https://a/1.jpg,https://a/2.jpg","http://svc/images/k1.jpg,"
//
// - A request with renditions adds one column per rendition after those four, in the order asked:
//   "Output Image Urls (thumb)", aligned with the input URLs the same way.
// - RFC 4180: CRLF line ends; every cell is quoted (quotes doubled), the header included, so no
//   reader has to guess where a cell ends, whatever it holds (`x;=1+1` is one quoted cell).
// - Output URLs are aligned with input URLs: entry i of "Output Image Urls" belongs to entry i of
//   "Input Image Urls". An image that failed (or is not finished) leaves its entry empty, so
//   `a,,c` means the second image has no output; the status endpoint says why.
// - Formula injection: a cell that starts with = + - @ TAB or CR gets a leading single quote (')
//   so spreadsheet programs show it as text (OWASP "CSV injection").

export interface OutputRow {
  serial: number;
  name: string;
  inputUrls: string[];
  /** Same length and order as inputUrls; null where that image has no output. */
  outputUrls: (string | null)[];
  /** One list per rendition column, each like outputUrls. */
  renditionUrls?: (string | null)[][];
}

/** The header of a request's output CSV: the four columns, then one per rendition. */
export const outputCsvHeader = (renditionNames: readonly string[] = []): string[] => [...OUTPUT_CSV_HEADER, ...renditionNames.map((n) => `Output Image Urls (${n})`)];

export const OUTPUT_CSV_HEADER = ['S. No.', 'Product Name', 'Input Image Urls', 'Output Image Urls'] as const;

const FORMULA_START = /^[=+\-@\t\r]/;

/** Prefixes a single quote to a cell a spreadsheet would read as a formula. */
export function neutralizeCell(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

/** One RFC 4180 cell: neutralised, then quoted. */
export function csvCell(value: string): string {
  return `"${neutralizeCell(value).replace(/"/g, '""')}"`;
}

const csvLine = (cells: readonly string[]) => `${cells.map(csvCell).join(',')}\r\n`;

/** One output line (with its CRLF). */
export function outputCsvLine(row: OutputRow): string {
  const aligned = (urls: (string | null)[]) => row.inputUrls.map((_, i) => urls[i] ?? '').join(',');
  return csvLine([String(row.serial), row.name, row.inputUrls.join(','), aligned(row.outputUrls), ...(row.renditionUrls ?? []).map(aligned)]);
}

/**
 * Streams the output CSV: the header, then each page as one chunk. Pages are pulled only as the
 * consumer reads (backpressure); cancelling the stream calls the iterator's return(). An error
 * thrown by `pages` errors the stream (the response is cut short; headers are already sent).
 */
export function outputCsvStream(pages: AsyncIterable<OutputRow[]>, renditionNames: readonly string[] = []): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let iterator: AsyncIterator<OutputRow[]> | null = null;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controller.enqueue(encoder.encode(csvLine(outputCsvHeader(renditionNames))));
      },
      async pull(controller) {
        iterator ??= pages[Symbol.asyncIterator]();
        // Skip empty pages so one pull always makes progress or ends the stream.
        for (;;) {
          const next = await iterator.next();
          if (next.done) {
            controller.close();
            return;
          }
          if (next.value.length === 0) continue;
          controller.enqueue(encoder.encode(next.value.map(outputCsvLine).join('')));
          return;
        }
      },
      async cancel() {
        await iterator?.return?.();
      },
    },
    { highWaterMark: 1 },
  );
}
