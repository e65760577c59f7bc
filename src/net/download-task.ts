// What the runner's side of the download thread (download-thread.ts) and the thread itself
// (workers/download.ts) say to each other. A leaf both halves import. Everything here is copied
// between threads (structured clone): plain data only; a body's ArrayBuffer is moved, not copied.
// A failure crosses as DownloadFailure: toFailure on the way out, fromFailure on the way in.
import { FetchError, type FetchErrorKind } from './errors.js';
import type { DownloadResult, NotModified, Validators } from './fetch-image.js';

/** The thread's settings, fixed for its life (workerData): the process's download configuration. */
export interface DownloadThreadSettings {
  /** FETCH_ALLOWLIST as configured (CIDRs or addresses) */
  allowlist: readonly string[];
  connectTimeoutMs: number;
  timeoutMs: number;
  retries: number;
  retryBaseMs: number;
  /** MAX_IMAGE_BYTES */
  maxBytes: number;
  /** DOWNLOAD_CONCURRENCY and DOWNLOAD_PER_HOST: the thread holds the one connection limiter */
  concurrency: number;
  perHost: number;
  /** send the guard's refusals back to be logged (only when the log's level is debug) */
  logRefusals: boolean;
}

/** A downloaded image and the SHA-256 of its bytes (the content cache's key), computed in the thread. */
export interface FetchedImage extends DownloadResult {
  sha256: string;
}

export type DownloadRequest =
  | { type: 'get'; id: number; url: string; validators: Validators | null }
  | { type: 'abort'; id: number };

/** A failure as it crosses back: a FetchError's fields, or another error's message. */
export interface DownloadFailure {
  message: string;
  fetch?: { reason: string; kind: FetchErrorKind; retryable: boolean; status?: number; retryAfterMs?: number; attempts: number };
}

/** An error as it leaves the thread. */
export function toFailure(err: unknown): DownloadFailure {
  if (err instanceof FetchError) {
    const { reason, kind, retryable, status, retryAfterMs, attempts } = err;
    return {
      message: err.message,
      fetch: { reason, kind, retryable, attempts, ...(status !== undefined && { status }), ...(retryAfterMs !== undefined && { retryAfterMs }) },
    };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}

/** The error again, on the runner's side: a FetchError with every field, or a plain Error. */
export function fromFailure(failure: DownloadFailure): Error {
  if (!failure.fetch) return new Error(failure.message);
  const { reason, kind, retryable, status, retryAfterMs, attempts } = failure.fetch;
  const err = new FetchError(reason, kind, retryable, { ...(status !== undefined && { status }), ...(retryAfterMs !== undefined && { retryAfterMs }) });
  err.attempts = attempts;
  return err;
}

export type DownloadReply =
  | { type: 'done'; id: number; result: FetchedImage | NotModified }
  | { type: 'failed'; id: number; error: DownloadFailure }
  | { type: 'refused'; obj: object; msg: string };
