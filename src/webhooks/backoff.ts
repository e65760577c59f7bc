// When to try a failed delivery again: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after
// attempts 1..7 fail; after the 8th failed attempt the delivery is marked failed.
// Each wait gets ±20 % jitter so receivers coming back from an outage are not hit in lockstep.

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

export const RETRY_SCHEDULE_MS: readonly number[] = [5 * SECOND, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR];

/** Attempts in total (the first one plus one per schedule entry). */
export const MAX_ATTEMPTS = RETRY_SCHEDULE_MS.length + 1;

const JITTER = 0.2;

/**
 * Delay before the next attempt after attempt number `failedAttempt` (1-based) failed, or null
 * when that was the last one. `scale` is WEBHOOK_BACKOFF_SCALE (tests use e.g. 0.001).
 */
export function retryDelay(failedAttempt: number, scale = 1, random: () => number = Math.random): number | null {
  const base = RETRY_SCHEDULE_MS[failedAttempt - 1];
  if (base === undefined || failedAttempt < 1) return null;
  const jitter = 1 + JITTER * (2 * random() - 1);
  return Math.max(0, Math.round(base * scale * jitter));
}
