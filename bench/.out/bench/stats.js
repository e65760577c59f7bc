function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const min = (xs) => Math.min(...xs);
const max = (xs) => Math.max(...xs);
const now = () => performance.now();
async function timed(fn) {
  const t0 = now();
  const value = await fn();
  return { ms: now() - t0, value };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function round(x, digits = 2) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(lanes);
  return out;
}
export {
  mapLimit,
  max,
  median,
  min,
  now,
  round,
  sleep,
  sum,
  timed
};
//# sourceMappingURL=stats.js.map
