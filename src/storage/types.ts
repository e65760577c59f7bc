// Where output images live. Keys are 64 hex characters plus the extension the codec table gives
// the format: an HMAC-SHA256 of the bytes under the deployment's secret (the store keeps it),
// or, for outputs made before that, the plain SHA-256 (those keep working, and stay guessable).
import { CODECS, isImageFormat, ROWS, rowForExtension } from '../codecs/table.js';

export interface StoredBlob {
  body: ReadableStream<Uint8Array>;
  size: number;
  contentType: string;
}

export interface BlobStorage {
  readonly kind: 'local' | 's3';
  /** Stores bytes under key, atomically: a reader sees all of it or nothing. Idempotent. */
  put(key: string, bytes: Uint8Array, contentType: string): Promise<void>;
  get(key: string): Promise<StoredBlob | null>;
  /** Removes a key (absent is fine). */
  remove(key: string): Promise<void>;
  /** When the key was last written (a put of an existing key counts), or null when absent. */
  modifiedAt(key: string): Promise<number | null>;
  /** Every stored key with when it was last written, in no particular order. */
  list(): AsyncIterable<{ key: string; modifiedAt: number }>;
  /** Throws if the backend is unusable (readiness). */
  check(): Promise<void>;
}

/** Keys are 64 hex characters, a dot and a known extension: nothing else reaches a backend. */
export const BLOB_KEY = new RegExp(`^[0-9a-f]{64}\\.(${ROWS.map((r) => r.extension).join('|')})$`);

export function blobKey(digestHex: string, format: string): string {
  if (!isImageFormat(format)) throw new Error(`no extension for format ${format}`);
  return `${digestHex}.${CODECS[format].extension}`;
}

export function contentTypeOf(key: string): string {
  return rowForExtension(key.slice(key.lastIndexOf('.') + 1))?.mime ?? 'application/octet-stream';
}
