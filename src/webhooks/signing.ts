// Standard Webhooks signing (https://www.standardwebhooks.com): secrets are `whsec_<base64 key>`,
// the signature is `v1,<base64 HMAC-SHA256(key, "<msg id>.<timestamp seconds>.<body>")>`, and one
// header may carry several space-separated signatures (one per active secret, for rotation).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';

/** A fresh secret: `whsec_` + base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** True for `whsec_` followed by base64 of 24 to 64 bytes. */
export function isSecret(secret: string): boolean {
  if (!secret.startsWith(SECRET_PREFIX)) return false;
  const b64 = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return false;
  const len = Buffer.from(b64, 'base64').length;
  return len >= 24 && len <= 64;
}

/**
 * Turns an operator-given secret (WEBHOOK_SECRET) into the `whsec_` form receivers use.
 * `whsec_...` is kept as is. Anything else is taken as the raw key (its UTF-8 bytes) and
 * re-encoded as `whsec_<base64 of those bytes>`, so the secret handed to receivers works with
 * every Standard Webhooks library and the HMAC key is exactly the bytes the operator chose.
 */
export function normalizeSecret(secret: string): string {
  const s = secret.trim();
  if (s.startsWith(SECRET_PREFIX)) return s;
  return SECRET_PREFIX + Buffer.from(s, 'utf8').toString('base64');
}

function keyOf(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error('webhook secret must start with whsec_');
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

function signOne(secret: string, msgId: string, timestampSeconds: number, body: string): string {
  return createHmac('sha256', keyOf(secret)).update(`${msgId}.${timestampSeconds}.${body}`).digest('base64');
}

/** The `webhook-signature` header value: one `v1,<sig>` per secret, space-separated. */
export function sign(secrets: readonly string[], msgId: string, timestampSeconds: number, body: string): string {
  if (secrets.length === 0) throw new Error('no webhook secret to sign with');
  return secrets.map((s) => `v1,${signOne(s, msgId, timestampSeconds, body)}`).join(' ');
}

/**
 * Verifies a delivery the way a receiver would: some `v1` signature in the header matches
 * `secret`, and the timestamp is within `toleranceSeconds` of `nowSeconds`.
 */
export function verify(
  secret: string,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  opts: { nowSeconds?: number; toleranceSeconds?: number } = {},
): boolean {
  const ts = Number(headers.timestamp);
  if (!Number.isInteger(ts)) return false;
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - ts) > (opts.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signOne(secret, headers.id, ts, body));
  return headers.signature.split(' ').some((part) => {
    const [version, sig] = part.split(',', 2);
    if (version !== 'v1' || !sig) return false;
    const given = Buffer.from(sig);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
