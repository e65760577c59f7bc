// Attempts with a total time limit each, and retries of retryable failures with exponential
// backoff and jitter (Retry-After honoured, every wait capped).
import { randomInt } from 'node:crypto';
import { abortedError, FetchError, mapNodeError } from './errors.js';

export interface RetryInfo {
  /** the attempt that just failed (1-based) */
  attempt: number;
  /** how long we wait before the next attempt */
  delayMs: number;
  error: FetchError;
}

export interface RetryOptions {
  /** Total time for one attempt. */
  timeoutMs: number;
  /** Extra attempts after the first, for retryable failures. */
  retries: number;
  /** Base of the exponential backoff. */
  retryBaseMs: number;
  /** Cap on any single wait, including one asked for by Retry-After. */
  maxRetryDelayMs: number;
  /** Cancels everything, including a backoff wait. */
  signal?: AbortSignal | undefined;
  /** Called before each backoff wait (logging, tests). */
  onRetry?: ((info: RetryInfo) => void) | undefined;
}

/** One attempt: its signal fires on the total timeout or the caller's abort (reason: a FetchError). */
export interface Attempt {
  readonly signal: AbortSignal;
  /**
   * Runs `work` with the attempt's clock stopped: time spent queueing for a connection slot is
   * not time the remote host took, so it must not use up the attempt's timeout.
   */
  untimed<T>(work: () => Promise<T>): Promise<T>;
}

/** Parses Retry-After (delta seconds or HTTP date) into ms from `now`; undefined if absent/invalid. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v), 86_400 * 365) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** Backoff before attempt `failedAttempt + 1`: base*2^(n-1), half fixed + half random, capped; Retry-After wins when longer. */
export function backoffDelay(failedAttempt: number, baseMs: number, maxMs: number, retryAfterMs?: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(failedAttempt - 1, 30));
  const half = Math.floor(exp / 2);
  const jittered = half + (half > 0 ? randomInt(0, half + 1) : 0);
  if (retryAfterMs === undefined) return Math.min(jittered, maxMs);
  return Math.min(Math.max(retryAfterMs, jittered), maxMs);
}

/** Runs attempts with a total timeout each, retrying retryable FetchErrors with backoff. */
export async function withRetries<T>(opts: RetryOptions, attemptFn: (attempt: Attempt) => Promise<T>): Promise<T> {
  const outer = opts.signal;
  for (let attempt = 1; ; attempt++) {
    if (outer?.aborted) throw finalError(abortedError(), attempt - 1 || 1);
    const clock = startAttempt(opts.timeoutMs, outer);
    let err: FetchError;
    try {
      return await attemptFn(clock.attempt);
    } catch (e) {
      err = e instanceof FetchError ? e : mapNodeError(e);
    } finally {
      clock.dispose();
    }
    if (!err.retryable || attempt > opts.retries || outer?.aborted) throw finalError(err, attempt);
    const delayMs = backoffDelay(attempt, opts.retryBaseMs, opts.maxRetryDelayMs, err.retryAfterMs);
    try {
      opts.onRetry?.({ attempt, delayMs, error: err });
    } catch {
      // a faulty hook must not break the fetch
    }
    try {
      await sleep(delayMs, outer);
    } catch {
      throw finalError(abortedError(), attempt);
    }
  }
}

function startAttempt(timeoutMs: number, outer: AbortSignal | undefined): { attempt: Attempt; dispose(): void } {
  const ctl = new AbortController();
  const onOuter = () => ctl.abort(abortedError());
  outer?.addEventListener('abort', onOuter, { once: true });
  const expire = () => ctl.abort(new FetchError(`timed out after ${timeoutMs} ms`, 'timeout', true));
  let remaining = timeoutMs;
  let runningSince = performance.now();
  let timer: NodeJS.Timeout | undefined = setTimeout(expire, remaining);
  let stopped = 0;
  const attempt: Attempt = {
    signal: ctl.signal,
    async untimed(work) {
      if (stopped++ === 0 && timer) {
        clearTimeout(timer);
        timer = undefined;
        remaining -= performance.now() - runningSince;
      }
      try {
        return await work();
      } finally {
        if (--stopped === 0 && !ctl.signal.aborted) {
          runningSince = performance.now();
          timer = setTimeout(expire, Math.max(0, remaining));
        }
      }
    },
  };
  return {
    attempt,
    dispose() {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
    },
  };
}

function finalError(err: FetchError, attempts: number): FetchError {
  if (attempts <= 1 || err.kind === 'aborted') {
    err.attempts = attempts;
    return err;
  }
  const out = new FetchError(`${err.reason} (after ${attempts} attempts)`, err.kind, err.retryable, {
    ...(err.status !== undefined ? { status: err.status } : {}),
    ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
    cause: err,
  });
  out.attempts = attempts;
  return out;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
