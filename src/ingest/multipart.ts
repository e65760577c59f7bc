// Streaming multipart/form-data reader for the upload endpoint.
//
// The web-standard request body is read chunk by chunk and fed to busboy with backpressure: a
// chunk is read only when busboy (and through it the CSV consumer) has taken the previous one.
// The `file` part is handed to `onFile` as a byte stream while it arrives; nothing is buffered
// whole. Bytes are counted as they come: past `maxBytes` the reader is cancelled at once and the
// upload fails with 413 (a declared Content-Length over the cap fails before reading anything).
//
// Text fields: those that arrive before the file are passed to `onFile` (`fieldsBefore`); those
// after it are still read (the CSV consumer drains the file first), and `readUpload` resolves only
// once the whole body is parsed, with every field in `fields`. Callers commit the request after
// readUpload resolves, so a `webhook_url` sent after the file is still in time.
//
// A body that falls below a minimum rate (`minRate`, UPLOAD_MIN_BYTES_PER_SEC) is cut off with
// 408, like one over the size cap: the reader is cancelled and onFile's stream fails.
//
// Errors are AppError: 415 (not multipart/form-data, or a file part whose Content-Type is not one of
// CSV_CONTENT_TYPES or whose name is clearly not a CSV),
// 413 (too large), 408 (too slow), 400 (malformed body, no `file` part, more than one file,
// unexpected file field, too many fields, a field value too long, upload interrupted). When `onFile` fails, its
// error wins unless the upload itself failed first. readUpload settles only after `onFile` has
// settled, so the caller can clean up knowing nothing is still being written.
import busboy from 'busboy';
import type { Readable } from 'node:stream';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { watchMinRate, type MinRate } from './min-rate.js';

export interface UploadLimits {
  /** Total request body bytes (MAX_UPLOAD_BYTES). */
  maxBytes: number;
  /** Text fields allowed besides the file (default 8). */
  maxFields?: number;
  /** Bytes per text field value (default 8192). */
  maxFieldBytes?: number;
  /** Name of the file field (default "file"). */
  fileField?: string;
  /** The slowest body accepted (default: not checked). */
  minRate?: MinRate;
}

export function uploadLimitsFromConfig(config: Config): UploadLimits {
  return {
    maxBytes: config.MAX_UPLOAD_BYTES,
    minRate: {
      minBytesPerSec: config.UPLOAD_MIN_BYTES_PER_SEC,
      windowMs: config.UPLOAD_RATE_WINDOW_MS,
      graceMs: config.UPLOAD_RATE_GRACE_MS,
    },
  };
}

export interface UploadFile {
  /** The CSV bytes as they arrive. Consume it (or let onFile settle) to let the upload go on. */
  stream: AsyncIterable<Uint8Array>;
  filename: string;
  mimeType: string;
  /** Text fields that came before the file part. */
  fieldsBefore: Readonly<Record<string, string>>;
}

export interface UploadResult<T> {
  result: T;
  /** Every text field of the form (before and after the file). Last value wins on repeats. */
  fields: Record<string, string>;
  filename: string;
  /** Body bytes read. */
  bytes: number;
}

/**
 * The Content-Types a file part may carry (parameters such as charset aside): what browsers and
 * curl send for a .csv (Windows browsers send application/vnd.ms-excel; a part without one reads
 * as text/plain; a Blob without a type is application/octet-stream). The OpenAPI document lists
 * these as the `file` part's encoding.
 */
export const CSV_CONTENT_TYPES = ['text/csv', 'text/plain', 'application/csv', 'text/comma-separated-values', 'application/vnd.ms-excel', 'application/octet-stream'] as const;
const CSV_TYPES = new Set<string>(CSV_CONTENT_TYPES);
const NOT_CSV_EXTENSIONS = /\.(png|jpe?g|gif|webp|avif|heic|bmp|tiff?|svg|ico|pdf|zip|gz|tgz|tar|7z|rar|bz2|xz|xlsx|xlsm|xls|ods|docx?|pptx?|exe|dll|so|bin|mp3|mp4|mov|avi|wav|json|xml|html?)$/i;

/** Why a file part is not a CSV, or null: a Content-Type outside CSV_CONTENT_TYPES, or a file name that is clearly something else. */
export function notCsvReason(filename: string, mimeType: string): string | null {
  const essence = mimeType.split(';')[0]!.trim().toLowerCase();
  if (!CSV_TYPES.has(essence)) return `the file part has Content-Type ${mimeType.slice(0, 100)}; expected a CSV (${CSV_CONTENT_TYPES.join(', ')})`;
  if (NOT_CSV_EXTENSIONS.test(filename)) return `the file ${JSON.stringify(filename)} is not a CSV; expected a .csv file (text/csv)`;
  return null;
}

const tooLarge = (max: number) => new AppError(413, `upload is larger than ${max} bytes (MAX_UPLOAD_BYTES)`);
const tooSlow = (r: MinRate) =>
  new AppError(408, `upload too slow: less than ${r.minBytesPerSec} bytes/s over ${r.windowMs / 1000} s (UPLOAD_MIN_BYTES_PER_SEC)`);

/**
 * Reads a multipart/form-data upload as a stream, calling `onFile` with the `file` part as soon
 * as it starts. Resolves when the body is fully parsed and `onFile` has resolved.
 *
 * @example
 *   const { result, fields } = await readUpload(c.req.raw, { maxBytes: config.MAX_UPLOAD_BYTES },
 *     async (file) => {
 *       for await (const batch of readProductBatches(file.stream, csvLimits)) await store.appendBatch(id, batch);
 *     });
 *   const webhookUrl = fields.webhook_url ?? null;
 */
export async function readUpload<T>(
  request: Request,
  limits: UploadLimits,
  onFile: (file: UploadFile) => Promise<T>,
): Promise<UploadResult<T>> {
  const maxFields = limits.maxFields ?? 8;
  const maxFieldBytes = limits.maxFieldBytes ?? 8192;
  const fileField = limits.fileField ?? 'file';

  const contentType = request.headers.get('content-type') ?? '';
  if (!/^multipart\/form-data\s*(;|$)/i.test(contentType)) {
    throw new AppError(
      415,
      `expected Content-Type multipart/form-data with the CSV in the field "${fileField}", got ${contentType ? JSON.stringify(contentType.slice(0, 100)) : 'none'}`,
    );
  }
  const declared = request.headers.get('content-length');
  if (declared && /^\d+$/.test(declared.trim()) && Number(declared) > limits.maxBytes) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge(limits.maxBytes);
  }
  if (!request.body) throw new AppError(400, `missing the "${fileField}" field (the CSV file); the request has no body`);

  let bb: busboy.Busboy;
  try {
    bb = busboy({
      headers: { 'content-type': contentType },
      defParamCharset: 'utf8', // browsers send a file name's non-ASCII characters as raw UTF-8
      limits: { files: 1, fields: maxFields, fieldSize: maxFieldBytes + 1, headerPairs: 100 },
    });
  } catch (err) {
    await request.body.cancel().catch(() => {});
    throw new AppError(400, `malformed multipart/form-data Content-Type: ${(err as Error).message}`);
  }

  const reader = request.body.getReader();
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  let received = 0;
  let failure: Error | null = null;
  let fileInfo: { filename: string; stream: Readable } | null = null;
  let onFileDone: Promise<void> = Promise.resolve();
  let result: { value: T } | null = null;
  const wakers = new Set<() => void>();
  const wakeAll = () => {
    for (const w of wakers) w();
  };

  const rate = limits.minRate ? watchMinRate(limits.minRate, () => fail(tooSlow(limits.minRate!))) : undefined;
  const fail = (err: Error) => {
    if (failure) return;
    failure = err;
    rate?.stop();
    reader.cancel(err).catch(() => {});
    if (fileInfo && !fileInfo.stream.destroyed) fileInfo.stream.destroy(err);
    bb.destroy();
    wakeAll();
  };

  bb.on('error', (err: Error) => fail(new AppError(400, `malformed multipart/form-data body: ${err.message}`)));
  bb.on('filesLimit', () => fail(new AppError(400, `more than one file in the upload; send one CSV in the field "${fileField}"`)));
  bb.on('fieldsLimit', () => fail(new AppError(400, `too many form fields (the limit is ${maxFields})`)));
  bb.on('field', (name: string, value: string, info: busboy.FieldInfo) => {
    if (name === fileField) {
      fail(new AppError(400, `the field "${fileField}" must be a file part with a filename (e.g. curl -F "${fileField}=@products.csv")`));
    } else if (info.valueTruncated || Buffer.byteLength(value) > maxFieldBytes) {
      fail(new AppError(400, `the field ${JSON.stringify(name.slice(0, 100))} is longer than ${maxFieldBytes} bytes`));
    } else {
      fields[name] = value;
    }
  });
  bb.on('file', (name: string, stream: Readable, info: busboy.FileInfo) => {
    stream.on('error', () => {}); // errors reach onFile through its iterator; never crash on them
    const filename = info.filename ?? '';
    if (name !== fileField) {
      stream.resume();
      return fail(new AppError(400, `unexpected file field ${JSON.stringify(name.slice(0, 100))}; send the CSV in the field "${fileField}"`));
    }
    const reason = notCsvReason(filename, info.mimeType);
    if (reason) {
      stream.resume();
      return fail(new AppError(415, reason));
    }
    fileInfo = { filename, stream };
    const file: UploadFile = { stream, filename, mimeType: info.mimeType, fieldsBefore: { ...fields } };
    onFileDone = (async () => {
      try {
        result = { value: await onFile(file) };
        // Whatever onFile left unread is drained so that fields after the file still arrive.
        if (!stream.destroyed && !stream.readableEnded) stream.resume();
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    })();
  });

  const parsed = new Promise<void>((resolve) => {
    bb.once('close', resolve);
    wakers.add(resolve);
  });

  const waitDrain = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        bb.off('drain', done);
        bb.off('close', done);
        wakers.delete(done);
        resolve();
      };
      bb.on('drain', done);
      bb.on('close', done);
      wakers.add(done);
    });

  const pump = async () => {
    try {
      for (;;) {
        if (failure) return;
        const { done, value } = await reader.read();
        if (failure) return;
        if (done) break;
        received += value.byteLength;
        rate?.received(value.byteLength);
        if (received > limits.maxBytes) return fail(tooLarge(limits.maxBytes));
        const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
        if (!bb.write(chunk)) {
          rate?.pause();
          await waitDrain();
          rate?.resume();
        }
      }
      bb.end();
    } catch (err) {
      fail(new AppError(400, `the upload was interrupted before it finished (${(err as Error).message})`));
    }
  };

  try {
    await pump();
  } finally {
    rate?.stop();
  }
  await parsed;
  await onFileDone;
  if (failure) throw failure;
  if (!fileInfo || !result) {
    throw new AppError(400, `missing the "${fileField}" field (the CSV file)`);
  }
  const done: { value: T } = result;
  return { result: done.value, fields: { ...fields }, filename: (fileInfo as { filename: string }).filename, bytes: received };
}
