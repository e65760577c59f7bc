// watchMinRate on its own, on a fake clock: the grace period, one verdict per window, a window
// in which the server held the body back not judged, and stop() ending the judging.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchMinRate, type MinRate } from '../src/ingest/min-rate.js';

const RATE: MinRate = { minBytesPerSec: 1000, windowMs: 1000, graceMs: 2000 };
/** Bytes a window needs at RATE. */
const NEEDED = (RATE.minBytesPerSec * RATE.windowMs) / 1000;

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('watchMinRate', () => {
  it('judges nothing during the grace period', () => {
    const tooSlow = vi.fn();
    watchMinRate(RATE, tooSlow);
    vi.advanceTimersByTime(RATE.graceMs);
    expect(tooSlow).not.toHaveBeenCalled();
  });

  it('calls tooSlow once, at the end of the first window below the rate', () => {
    const tooSlow = vi.fn();
    const watch = watchMinRate(RATE, tooSlow);
    vi.advanceTimersByTime(RATE.graceMs);
    watch.received(NEEDED); // first window: enough
    vi.advanceTimersByTime(RATE.windowMs);
    expect(tooSlow).not.toHaveBeenCalled();
    watch.received(NEEDED - 1); // second window: one byte short
    vi.advanceTimersByTime(RATE.windowMs - 1);
    expect(tooSlow).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(tooSlow).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(RATE.windowMs * 5);
    expect(tooSlow).toHaveBeenCalledTimes(1);
  });

  it('does not judge a window in which the server paused reading', () => {
    const tooSlow = vi.fn();
    const watch = watchMinRate(RATE, tooSlow);
    vi.advanceTimersByTime(RATE.graceMs);
    watch.pause();
    vi.advanceTimersByTime(RATE.windowMs / 2);
    watch.resume();
    vi.advanceTimersByTime(RATE.windowMs / 2); // nothing arrived, but the window had a pause
    expect(tooSlow).not.toHaveBeenCalled();
    vi.advanceTimersByTime(RATE.windowMs); // a whole window without a pause and without bytes
    expect(tooSlow).toHaveBeenCalledTimes(1);
  });

  it('judges nothing after stop(), and nothing at all when the rate is 0', () => {
    const tooSlow = vi.fn();
    watchMinRate(RATE, tooSlow).stop();
    watchMinRate({ ...RATE, minBytesPerSec: 0 }, tooSlow);
    vi.advanceTimersByTime(RATE.graceMs + RATE.windowMs * 3);
    expect(tooSlow).not.toHaveBeenCalled();
  });
});
