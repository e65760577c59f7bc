// Webhook delivery: one signed JSON POST through the guarded transport, redirects not followed.
import { parseHttpUrl } from './address-guard.js';
import { connectionSettings, DEFAULTS, retryOptions, type GuardedRequestOptions } from './options.js';
import { withRetries } from './retry.js';
import { exchange } from './transport.js';

export type PostOptions = GuardedRequestOptions;

export interface PostResult {
  status: number;
  /** From sending the request to receiving the response headers, of the last attempt. */
  durationMs: number;
}

/**
 * POST a JSON body (webhook delivery). Never follows redirects: any HTTP status, 3xx included,
 * is returned as is (the caller decides what counts as delivered). Rejects with a FetchError only
 * when no HTTP response was obtained (blocked, timeout, network). `retries` defaults to 0 because
 * the webhook dispatcher schedules its own retries; when set, only thrown retryable errors retry.
 */
export async function postJson(
  url: string,
  body: string,
  headers: Record<string, string> = {},
  opts: PostOptions = {},
): Promise<PostResult> {
  const target = parseHttpUrl(url);
  const connection = connectionSettings(opts);
  const payload = Buffer.from(body, 'utf8');
  return withRetries(retryOptions(opts, 0), async (attempt) => {
    const started = performance.now();
    const res = await exchange(target, {
      ...connection,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': opts.userAgent ?? DEFAULTS.userAgent,
        ...lowerKeys(headers),
        'content-length': String(payload.length),
      },
      body: payload,
      maxBytes: 0,
      wantBody: () => false,
      attempt,
    });
    return { status: res.status, durationMs: Math.round(performance.now() - started) };
  });
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}
