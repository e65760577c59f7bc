// What the runner's side of the download thread (download-thread.ts) and the thread itself
// (workers/download.ts) say to each other. A leaf both halves import. Everything here is copied
// between threads (structured clone): plain data only; a body's ArrayBuffer is moved, not copied.
import type { FetchErrorKind } from './errors.js';
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

export type DownloadReply =
  | { type: 'done'; id: number; result: FetchedImage | NotModified }
  | { type: 'failed'; id: number; error: DownloadFailure }
  | { type: 'refused'; obj: object; msg: string };
