// The suite's one poll helper: for a state that announces itself by no event a test can
// listen to (a row in the store, a counter, a file), check it until it holds. Built on
// vi.waitFor; the timeout is a bound for a failing test, never a wait a passing test sits out.
import { vi } from 'vitest';

export interface PollOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /** Check this often (default 20 ms). */
  intervalMs?: number;
}

/** Resolves with the first truthy value of `check`; fails naming `what` when it never comes. */
export async function until<T>(check: () => T | Promise<T>, what = 'the condition', opts: PollOptions = {}): Promise<NonNullable<T>> {
  let last: unknown;
  try {
    return await vi.waitFor(async () => {
      const value = await check();
      last = value;
      if (!value) throw new Error(`still waiting for ${what}`);
      return value as NonNullable<T>;
    }, { timeout: opts.timeoutMs ?? 30_000, interval: opts.intervalMs ?? 20 });
  } catch (err) {
    throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)?.slice(0, 300)})`, { cause: err });
  }
}
