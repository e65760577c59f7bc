// FetchError: every way an outbound request can fail, as a kind, whether trying again later
// could help, and a reason short and safe enough for the status page.
export type FetchErrorKind =
  | 'invalid-url' // not an absolute http(s) URL
  | 'blocked' // SSRF guard refused the address
  | 'http' // the server answered with a non-2xx status
  | 'too-large' // byte cap exceeded (declared or streamed)
  | 'timeout' // connect or total timeout
  | 'network' // connection refused/reset, DNS failure, TLS failure, premature close
  | 'bad-response' // unparseable HTTP, unsupported content-encoding
  | 'redirect' // too many redirects, bad Location
  | 'aborted'; // the caller's AbortSignal fired

export class FetchError extends Error {
  override readonly name = 'FetchError';
  /** Short, human-readable, safe to show on the status page. Contains "blocked" for every SSRF refusal. */
  readonly reason: string;
  readonly kind: FetchErrorKind;
  /** Whether trying again later could succeed (timeouts, connection errors, 429, 5xx). */
  readonly retryable: boolean;
  /** HTTP status when kind === 'http'. */
  readonly status?: number;
  /** Parsed Retry-After, in ms, when the server sent one. */
  readonly retryAfterMs?: number;
  /** How many attempts were made before giving up (set by the retry loop). */
  attempts = 1;

  constructor(
    reason: string,
    kind: FetchErrorKind,
    retryable: boolean,
    extra: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(reason, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.reason = reason;
    this.kind = kind;
    this.retryable = retryable;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
  }
}

export const abortedError = () => new FetchError('aborted', 'aborted', false);

export const tooLarge = (max: number) => new FetchError(`too large: more than ${max} bytes`, 'too-large', false);

/** Turns a Node socket/DNS/HTTP-parser error into a FetchError (a FetchError passes through). */
export function mapNodeError(e: unknown, host?: string): FetchError {
  if (e instanceof FetchError) return e;
  const err = e as NodeJS.ErrnoException | undefined;
  const code = typeof err?.code === 'string' ? err.code : '';
  switch (code) {
    case 'ENOTFOUND':
      return new FetchError(`host not found${host ? `: ${host}` : ''}`, 'network', false, { cause: e });
    case 'EAI_AGAIN':
      return new FetchError(`DNS lookup failed${host ? ` for ${host}` : ''} (temporary)`, 'network', true, { cause: e });
    case 'ECONNREFUSED':
      return new FetchError('connection refused', 'network', true, { cause: e });
    case 'ECONNRESET':
    case 'EPIPE':
      return new FetchError('connection reset', 'network', true, { cause: e });
    case 'ETIMEDOUT':
      return new FetchError('connection timed out', 'timeout', true, { cause: e });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new FetchError('host unreachable', 'network', true, { cause: e });
  }
  if (code.startsWith('HPE_') || code === 'ERR_INVALID_HTTP_RESPONSE') {
    return new FetchError(`invalid HTTP response (${code})`, 'bad-response', false, { cause: e });
  }
  if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /CERT|SELF_SIGNED|UNABLE_TO/.test(code)) {
    return new FetchError(`TLS error (${code})`, 'network', false, { cause: e });
  }
  const msg = err?.message ? String(err.message).slice(0, 120) : 'unknown error';
  return new FetchError(`network error: ${code || msg}`, 'network', true, { cause: e });
}
