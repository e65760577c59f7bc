// Preloaded into a child server with `--import <dist>/bench/diag/mem-probe.js` (bench --profile):
// every 20 ms appends process.memoryUsage() as one JSON line to $BENCH_MEM_PROBE, so a peak RSS
// can be split into V8 heap, external/array buffers and native (SQLite, code, thread stacks).
import { appendFileSync } from 'node:fs';

const file = process.env.BENCH_MEM_PROBE;
if (file) {
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    appendFileSync(file, JSON.stringify({ t: Date.now(), rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }) + '\n');
  }, 20);
  timer.unref();
}
