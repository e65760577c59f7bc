import { readdirSync, readFileSync } from 'node:fs';
// Small numeric helpers: medians, timers, formatting.

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The p-th percentile (0-100), nearest rank: the smallest sample with at least p% at or below it. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length))) - 1]!;
}

export const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
export const min = (xs: readonly number[]) => Math.min(...xs);
export const max = (xs: readonly number[]) => Math.max(...xs);

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export const now = () => performance.now();

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = now();
  const value = await fn();
  return { ms: now() - t0, value };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Runs tasks with at most `limit` in flight; resolves with results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(lanes);
  return out;
}

/** CPU time (ms) of one thread (by default a process's main thread), from /proc (Linux); NaN elsewhere. */
export function threadCpuMs(pid = process.pid, tid = pid): number {
  return procCpuMs(`/proc/${pid}/task/${tid}/stat`);
}

/** CPU time (ms) of this process's main thread. */
export const mainThreadCpuMs = (): number => threadCpuMs();

/** This process's thread ids, from /proc (Linux); none elsewhere. */
export function threadIds(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number);
  } catch {
    return [];
  }
}

/** CPU time (ms) of another process, all its threads, from /proc (Linux); NaN elsewhere. */
export const processCpuMsOf = (pid: number): number => procCpuMs(`/proc/${pid}/stat`);

function procCpuMs(statFile: string): number {
  try {
    // fields after the "(comm)": state is field 3; utime and stime are fields 14 and 15
    const stat = readFileSync(statFile, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU time (ms) of the whole process, all threads. */
export function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU time (ms) of the whole process while `fn` runs (synchronous work). */
export function cpuMsOf(fn: () => void): number {
  const c = processCpuMs();
  fn();
  return processCpuMs() - c;
}

/** `fn` run `runs` times: its last value, and the medians of its process CPU time and wall-clock time. */
export async function timedRuns<T>(runs: number, fn: () => Promise<T>): Promise<{ value: T; cpuMs: number; wallMs: number }> {
  const cpu: number[] = [];
  const wall: number[] = [];
  let value: T | undefined;
  for (let r = 0; r < runs; r++) {
    const c = processCpuMs();
    const t = now();
    value = await fn();
    wall.push(now() - t);
    cpu.push(processCpuMs() - c);
  }
  return { value: value!, cpuMs: median(cpu), wallMs: median(wall) };
}
