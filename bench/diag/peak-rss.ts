// The resident set now and its peak (VmHWM), from /proc: unlike process.memoryUsage() the peak
// counts JS heap, ArrayBuffers and WASM memory alike, and writing '5' to /proc/self/clear_refs
// resets it, so a child process can measure the peak of one call.
import { readFileSync, writeFileSync } from 'node:fs';

export function status(): { rss: number; hwm: number } {
  const text = readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Bytes the resident set rose to above where it stood before `fn` (collect garbage first). */
export async function peakOf(fn: () => Promise<unknown>): Promise<number> {
  const before = status().rss;
  writeFileSync('/proc/self/clear_refs', '5');
  await fn();
  return status().hwm - before;
}
