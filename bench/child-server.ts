// The service as a child process (node dist/src/main.js), with its memory read from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sleep } from './stats.js';

export interface ChildServer {
  pid: number;
  base: string;
  proc: ChildProcess;
  /** VmHWM (peak resident set) and VmRSS in MiB, from /proc/<pid>/status */
  memory(): { hwmMB: number; rssMB: number };
  stop(): Promise<void>;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function procStatus(pid: number): { hwmMB: number; rssMB: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { hwmMB: kb('VmHWM') / 1024, rssMB: kb('VmRSS') / 1024 };
}

export interface Diagnostics {
  /** directory for --cpu-prof profiles and memory probe files */
  dir: string;
  /** the built bench/diag/mem-probe.js */
  memProbe: string;
}

/** Node flags and environment for a child server under diagnostics (bench --profile DIR). */
export function diagnosticsFor(d: Diagnostics | null, name: string): { execArgv: string[]; env: Record<string, string> } {
  if (!d) return { execArgv: [], env: {} };
  mkdirSync(d.dir, { recursive: true });
  return {
    execArgv: ['--cpu-prof', '--cpu-prof-dir', join(d.dir, name), '--import', pathToFileURL(d.memProbe).href],
    env: { BENCH_MEM_PROBE: join(d.dir, `${name}.mem.jsonl`) },
  };
}

export async function startChildServer(opts: { entry: string; env: Record<string, string>; dir: string; execArgv?: string[] }): Promise<ChildServer> {
  const port = await freePort();
  const logFile = join(opts.dir, 'server.log');
  const fd = openSync(logFile, 'a');
  const proc = spawn(process.execPath, [...(opts.execArgv ?? []), opts.entry], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const base = `http://127.0.0.1:${port}`;
  let exited: number | null = null;
  proc.once('exit', (code) => (exited = code ?? -1));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited !== null) throw new Error(`server exited with ${exited} during start-up; see ${logFile}: ${readFileSync(logFile, 'utf8').slice(-500)}`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not start; see ${logFile}`);
    await sleep(50);
  }
  return {
    pid: proc.pid!,
    base,
    proc,
    memory: () => procStatus(proc.pid!),
    stop: async () => {
      if (exited !== null) return;
      const done = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await done;
      clearTimeout(t);
    },
  };
}

/** Samples a process's VmRSS every `everyMs` until stopped; returns the max seen (MiB). */
export function sampleRss(pid: number, everyMs = 20): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, procStatus(pid).rssMB);
    } catch {
      // process gone
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      try {
        peak = Math.max(peak, procStatus(pid).rssMB);
      } catch {
        // gone
      }
      return peak;
    },
  };
}
