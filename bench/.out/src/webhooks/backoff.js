const SECOND = 1e3;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const RETRY_SCHEDULE_MS = [5 * SECOND, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR];
const MAX_ATTEMPTS = RETRY_SCHEDULE_MS.length + 1;
const JITTER = 0.2;
function retryDelay(failedAttempt, scale = 1, random = Math.random) {
  const base = RETRY_SCHEDULE_MS[failedAttempt - 1];
  if (base === void 0 || failedAttempt < 1) return null;
  const jitter = 1 + JITTER * (2 * random() - 1);
  return Math.max(0, Math.round(base * scale * jitter));
}
export {
  MAX_ATTEMPTS,
  RETRY_SCHEDULE_MS,
  retryDelay
};
//# sourceMappingURL=backoff.js.map
