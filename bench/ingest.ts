// Ingest: a 100 000-row CSV (and a 10 000-row one, to show memory does not grow with the file)
// uploaded to the service running as a child process; time to the 202 and the server's peak
// resident memory (VmHWM from /proc, plus VmRSS sampled every 20 ms).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diagnosticsFor, sampleRss, startChildServer, type Diagnostics } from './child-server.js';
import { productCsv, upload } from './csv.js';
import { figure, type Figure } from './report.js';
import { median, now, round, sleep } from './stats.js';

export interface IngestRun {
  rows: number;
  csvBytes: number;
  ms: number;
  rowsPerSecond: number;
  idleRssMB: number;
  peakHwmMB: number;
  peakSampledMB: number;
  /** wall-clock window of the upload (epoch ms), to line up with a memory probe */
  window: [number, number];
  /** the largest V8 heap left after a full (mark-compact) GC, from --trace-gc: what is really retained */
  maxLiveHeapMB: number | null;
  fullGcs: number;
  oldSpaceCapMB: number | null;
}

/** "Mark-Compact 32.2 (44.1) -> 23.5 (42.9) MB" lines of --trace-gc: heap after each full GC. */
function liveHeapAfterFullGc(log: string): number[] {
  return [...log.matchAll(/Mark-Compact[^\n]*?->\s*([\d.]+)\s*\(/g)].map((m) => Number(m[1]));
}

async function ingestOnce(entry: string, rows: number, threads: number, diag: { execArgv: string[]; env: Record<string, string> }, oldSpaceCapMB: number | null = null): Promise<IngestRun> {
  const dir = mkdtempSync(join(tmpdir(), 'icp-bench-ingest-'));
  // The URLs point at a closed port: after the 202 the runner would start fetching, but the
  // server is stopped as soon as the 202 has been read.
  const csv = productCsv(rows, (i) => [`http://127.0.0.9:9/img/${i}/product-${i}.jpg`]);
  const server = await startChildServer({ entry, dir, env: { DATA_DIR: dir, WORKER_THREADS: String(threads), FETCH_ALLOWLIST: '127.0.0.9/32', ...diag.env },
    execArgv: ['--trace-gc', ...(oldSpaceCapMB ? [`--max-old-space-size=${oldSpaceCapMB}`] : []), ...diag.execArgv] });
  try {
    await sleep(300); // let start-up settle
    const idle = server.memory();
    const sampler = sampleRss(server.pid);
    const wall0 = Date.now();
    const t0 = now();
    const res = await upload(server.base, csv);
    const ms = now() - t0;
    const wall1 = Date.now();
    const hwm = server.memory().hwmMB;
    const sampled = sampler.stop();
    if (res.status !== 202 || res.body.products !== rows) throw new Error(`ingest ${rows}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    const gcs = liveHeapAfterFullGc(readFileSync(join(dir, 'server.log'), 'utf8'));
    return {
      maxLiveHeapMB: gcs.length ? Math.max(...gcs) : null, fullGcs: gcs.length, oldSpaceCapMB, rows, csvBytes: Buffer.byteLength(csv), ms, rowsPerSecond: rows / (ms / 1000), idleRssMB: idle.rssMB, peakHwmMB: hwm, peakSampledMB: sampled, window: [wall0, wall1] };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function ingestBench(entry: string, threads: number, opts: { quick: boolean; log: (s: string) => void; diagnostics?: Diagnostics | null }) {
  // alternate sizes; each run in a fresh server so VmHWM is that run's peak
  const order = opts.quick ? [10_000, 100_000] : [10_000, 100_000, 100_000, 10_000, 10_000, 100_000];
  const runs: IngestRun[] = [];
  for (const [k, rows] of order.entries()) {
    const run = await ingestOnce(entry, rows, threads, diagnosticsFor(opts.diagnostics ?? null, `ingest-${rows}-${k}`));
    opts.log(`ingest ${rows} rows: ${run.ms.toFixed(0)} ms to the 202 (${run.rowsPerSecond.toFixed(0)} rows/s), VmHWM ${run.peakHwmMB.toFixed(1)} MiB (idle ${run.idleRssMB.toFixed(1)})`);
    runs.push(run);
  }
  // What moves peak RSS: the same 100 000 rows with V8's old space capped (full runs only).
  const capped: IngestRun[] = [];
  if (!opts.quick) {
    for (const rows of [10_000, 100_000]) {
      const run = await ingestOnce(entry, rows, threads, { execArgv: [], env: {} }, 32);
      opts.log(`ingest ${rows} rows, --max-old-space-size=32: ${run.ms.toFixed(0)} ms, VmHWM ${run.peakHwmMB.toFixed(1)} MiB, max heap after full GC ${run.maxLiveHeapMB} MB`);
      capped.push(run);
    }
  }
  const of = (rows: number) => runs.filter((r) => r.rows === rows);
  const big = of(100_000);
  const small = of(10_000);
  const rps = median(big.map((r) => r.rowsPerSecond));
  const hwmBig = median(big.map((r) => r.peakHwmMB));
  const hwmSmall = median(small.map((r) => r.peakHwmMB));
  const idle = median(runs.map((r) => r.idleRssMB));
  const growthBig = hwmBig - idle;
  const growthSmall = hwmSmall - idle;
  // "flat": ten times the rows may not cost more than 10% more peak memory
  const flat = hwmBig <= hwmSmall * 1.1;

  const figures: Figure[] = [
    figure('ingest.rows_per_s', 'Ingest 100 000 rows: rows/s to the 202', round(rps, 0), 'rows/s', '>= 20000 rows/s', rps >= 20_000),
    figure('ingest.seconds_100k', 'Ingest 100 000 rows: seconds to the 202', round(median(big.map((r) => r.ms)) / 1000, 2), 's'),
    figure('ingest.rows_per_s_10k', 'Ingest 10 000 rows: rows/s to the 202', round(median(small.map((r) => r.rowsPerSecond)), 0), 'rows/s'),
    figure('ingest.peak_rss_100k', 'Ingest 100 000 rows: server peak RSS (VmHWM)', round(hwmBig, 1), 'MiB', '<= 300 MB', hwmBig * 1.048576 <= 300),
    figure('ingest.peak_rss_10k', 'Ingest 10 000 rows: server peak RSS (VmHWM)', round(hwmSmall, 1), 'MiB'),
    figure('ingest.idle_rss', 'Server RSS before the upload (idle)', round(idle, 1), 'MiB'),
    figure('ingest.flat', 'Peak RSS 100k rows / 10k rows', round(hwmBig / hwmSmall, 3), 'x', '<= 1.10x (flat)', flat,
      `growth over idle: ${growthSmall.toFixed(1)} MiB at 10k rows, ${growthBig.toFixed(1)} MiB at 100k rows`),
  ];
  if (capped.length === 2) {
    const [c10, c100] = capped as [IngestRun, IngestRun];
    figures.push(
      figure('ingest.capped_peak_rss_100k', 'With --max-old-space-size=32: 100k rows peak RSS', round(c100.peakHwmMB, 1), 'MiB', '', null,
        `${round(c100.rowsPerSecond, 0)} rows/s; heap after full GC <= ${c100.maxLiveHeapMB} MB (${c100.fullGcs} full GCs)`),
      figure('ingest.capped_flat', 'With --max-old-space-size=32: peak RSS 100k / 10k', round(c100.peakHwmMB / c10.peakHwmMB, 3), 'x', '(what moves the flat figure)', null,
        `10k rows: ${round(c10.peakHwmMB, 1)} MiB`),
    );
  }
  return { figures, detail: { runs, capped } };
}
