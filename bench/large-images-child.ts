// Child process of the "large images" bench (bench/large-images.ts): a CompressPool at default
// settings runs the image files named on the command line, all submitted at once, while this
// process samples its own resident set. Prints one JSON line: idle, peak and settled RSS. The third
// argument is JSON: the output options ({} for the defaults) and the pool's shrinkOnLoad switch.
import { readFileSync } from 'node:fs';
import { DEFAULT_OUTPUT_OPTIONS, type OutputOptions } from '../src/codecs/output-options.js';
import { CompressPool } from '../src/pipeline/pool.js';
import { sleep } from './stats.js';

const MiB = 1024 * 1024;
const [threadsArg, settleArg, settingsArg, ...files] = process.argv.slice(2);
const settings = JSON.parse(settingsArg!) as { options: Partial<OutputOptions>; shrinkOnLoad: boolean };
const options = { ...DEFAULT_OUTPUT_OPTIONS, ...settings.options };
const threads = Number(threadsArg);
const settleMs = Number(settleArg);

function status(): { rss: number; hwm: number } {
  const text = readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

const pool = new CompressPool({ threads, maxPixels: 50_000_000, shrinkOnLoad: settings.shrinkOnLoad });
await pool.ready();
// warm every thread with a small image, as a running service would be
await Promise.all(Array.from({ length: threads }, () => pool.compress(readFileSync(new URL('../../test/fixtures/rocket-small.jpg', import.meta.url)))));
await sleep(2000);
const idle = status().rss;

let peak = idle;
const sampler = setInterval(() => (peak = Math.max(peak, status().rss)), 50);
const t0 = Date.now();
// each source is handed over to the pool as the runner hands over a download, and each output is
// held only until it is counted, as the runner holds one until it is stored
const outputs = await Promise.all(files.map((f) => pool.compress(readFileSync(f), { options, handOver: true }).then(
  (r) => ({ width: r.width, height: r.height, bytesIn: r.bytesIn, bytesOut: r.bytesOut, outcome: r.outcome }),
  (err: unknown) => ({ error: String(err) }),
)));
const seconds = (Date.now() - t0) / 1000;
const afterLast = status().rss;
await sleep(settleMs);
clearInterval(sampler);
const settled = status().rss;
const hwm = status().hwm;
const stats = await pool.threadStats();
const main = process.memoryUsage();
await pool.close();
console.log(JSON.stringify({
  idleMB: idle / MiB, peakMB: Math.max(peak, hwm) / MiB, afterLastMB: afterLast / MiB, settledMB: settled / MiB, seconds, outputs,
  liveInstancesMB: Object.fromEntries(Object.entries(stats.live).map(([k, v]) => [k, v / MiB])),
  thread: { heapUsedMB: stats.heapUsed / MiB, arrayBuffersMB: stats.arrayBuffers / MiB },
  main: { heapUsedMB: main.heapUsed / MiB, arrayBuffersMB: main.arrayBuffers / MiB, externalMB: main.external / MiB },
}));
