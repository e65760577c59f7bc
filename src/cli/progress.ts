// Progress output for the CLI: a redrawn bar on a terminal, plain lines otherwise (logs, CI).
import { formatBytes } from '../byte-size.js';

export interface ProgressState {
  total: number;
  done: number;
  failed: number;
  bytesIn: number;
  bytesOut: number;
}

export interface ProgressReporter {
  update(state: ProgressState): void;
  /** Draws the final state and leaves the cursor on a fresh line. */
  finish(state: ProgressState): void;
}

interface Out {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${(ms / 1000).toFixed(1)}s`;
}

function counts(s: ProgressState): string {
  const finished = s.done + s.failed;
  const failed = s.failed ? `, ${s.failed} failed` : '';
  const bytes = s.bytesIn ? ` · ${formatBytes(s.bytesIn)} → ${formatBytes(s.bytesOut)}` : '';
  return `${finished}/${s.total} images${failed}${bytes}`;
}

export function createProgress(out: Out, options: { quiet?: boolean; now?: () => number } = {}): ProgressReporter {
  const now = options.now ?? Date.now;
  const started = now();
  if (options.quiet) return { update() {}, finish() {} };

  if (out.isTTY) {
    let last = 0;
    const draw = (s: ProgressState) => {
      const finished = s.done + s.failed;
      const ratio = s.total ? finished / s.total : 1;
      const tail = ` ${String(Math.floor(ratio * 100)).padStart(3)}% ${counts(s)} · ${formatDuration(now() - started)}`;
      const width = Math.max(10, Math.min(40, (out.columns ?? 80) - tail.length - 3));
      const filled = Math.round(ratio * width);
      out.write(`\r\x1b[2K[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]${tail}`);
    };
    return {
      update(s) {
        if (now() - last < 100) return; // at most 10 redraws a second
        last = now();
        draw(s);
      },
      finish(s) {
        draw(s);
        out.write('\n');
      },
    };
  }

  // Not a terminal: a line when something changed, at most one a second, and the last one.
  let last = 0;
  let lastText = '';
  const line = (s: ProgressState) => {
    const text = counts(s);
    if (text === lastText) return;
    lastText = text;
    out.write(`progress: ${text} (${formatDuration(now() - started)})\n`);
  };
  return {
    update(s) {
      if (now() - last < 1000) return;
      last = now();
      line(s);
    },
    finish(s) {
      line(s);
    },
  };
}
