import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
const SECRET_PREFIX = "whsec_";
function generateSecret() {
  return SECRET_PREFIX + randomBytes(32).toString("base64");
}
function isSecret(secret) {
  if (!secret.startsWith(SECRET_PREFIX)) return false;
  const b64 = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return false;
  const len = Buffer.from(b64, "base64").length;
  return len >= 24 && len <= 64;
}
function normalizeSecret(secret) {
  const s = secret.trim();
  if (s.startsWith(SECRET_PREFIX)) return s;
  return SECRET_PREFIX + Buffer.from(s, "utf8").toString("base64");
}
function keyOf(secret) {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error("webhook secret must start with whsec_");
  return Buffer.from(secret.slice(SECRET_PREFIX.length), "base64");
}
function signOne(secret, msgId, timestampSeconds, body) {
  return createHmac("sha256", keyOf(secret)).update(`${msgId}.${timestampSeconds}.${body}`).digest("base64");
}
function sign(secrets, msgId, timestampSeconds, body) {
  if (secrets.length === 0) throw new Error("no webhook secret to sign with");
  return secrets.map((s) => `v1,${signOne(s, msgId, timestampSeconds, body)}`).join(" ");
}
function verify(secret, headers, body, opts = {}) {
  const ts = Number(headers.timestamp);
  if (!Number.isInteger(ts)) return false;
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1e3);
  if (Math.abs(now - ts) > (opts.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signOne(secret, headers.id, ts, body));
  return headers.signature.split(" ").some((part) => {
    const [version, sig] = part.split(",", 2);
    if (version !== "v1" || !sig) return false;
    const given = Buffer.from(sig);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
export {
  SECRET_PREFIX,
  generateSecret,
  isSecret,
  normalizeSecret,
  sign,
  verify
};
//# sourceMappingURL=signing.js.map
