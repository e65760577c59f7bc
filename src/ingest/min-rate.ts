// Holds a streamed request body to a minimum rate, so a client that trickles cannot keep a
// connection (and an ingesting request) open for hours. The rate is judged per window, after a
// grace period; a window in which the server itself held the body back (backpressure while the
// store caught up) is not judged: that slowness was ours, not the client's.

export interface MinRate {
  /** Bytes per second the body must keep up, on average over each window; 0: not checked. */
  minBytesPerSec: number;
  windowMs: number;
  /** Time from the start of the body before the first window is judged. */
  graceMs: number;
}

export interface RateWatch {
  /** `bytes` just arrived. */
  received(bytes: number): void;
  /** The server stops reading for now (backpressure) ... */
  pause(): void;
  /** ... and reads again. */
  resume(): void;
  /** The body ended or failed: no more judging. */
  stop(): void;
}

/** Starts judging now; calls `tooSlow` once, at the end of the first window below the rate. */
export function watchMinRate(rate: MinRate, tooSlow: () => void): RateWatch {
  if (!(rate.minBytesPerSec > 0)) return { received() {}, pause() {}, resume() {}, stop() {} };
  const needed = (rate.minBytesPerSec * rate.windowMs) / 1000;
  let bytes = 0;
  let paused = false;
  let pausedInWindow = false;
  let interval: NodeJS.Timeout | undefined;
  const startWindow = () => {
    bytes = 0;
    pausedInWindow = paused;
  };
  const judge = () => {
    if (!pausedInWindow && bytes < needed) {
      stop();
      tooSlow();
      return;
    }
    startWindow();
  };
  const grace = setTimeout(() => {
    startWindow();
    interval = setInterval(judge, rate.windowMs);
  }, rate.graceMs);
  function stop(): void {
    clearTimeout(grace);
    clearInterval(interval);
  }
  return {
    received(n) {
      bytes += n;
    },
    pause() {
      paused = true;
      pausedInWindow = true;
    },
    resume() {
      paused = false;
    },
    stop,
  };
}
