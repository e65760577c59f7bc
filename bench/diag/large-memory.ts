// node --expose-gc dist/bench/diag/large-memory.js FILE...: where the resident memory of a pool
// run on large images goes. Runs the files one after another through a 2-thread CompressPool at
// the defaults (as the bench large section does, but one at a time), and after each image, and
// again after a settle, prints the peak RSS while it ran, the main thread's memoryUsage() and
// /proc/self/smaps split into the main heap ([heap]), anonymous memory and files, with every
// region holding more than 16 MiB listed as kind:size/resident MiB (a grown WASM memory or a
// large ArrayBuffer is a region of its own; a thread's malloc arena is at most 64 MiB).
import { readFileSync } from 'node:fs';
import { DEFAULT_OUTPUT_OPTIONS } from '../../src/codecs/output-options.js';
import { CompressPool } from '../../src/pipeline/pool.js';
import { sleep } from '../stats.js';

const MiB = 1024 * 1024;
const files = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const together = process.argv.includes('--together');

function smaps(): Record<string, number | string> {
  const out: Record<string, number> = { heap: 0, anon: 0, files: 0 };
  let kind = '';
  let size = 0;
  const big: string[] = [];
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      size = Number(BigInt(`0x${head[2]}`) - BigInt(`0x${head[1]}`));
      const name = head[3]!;
      kind = name === '[heap]' ? 'heap' : name.startsWith('/') ? 'files' : 'anon';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      out[kind]! += Number(rss[1]) * 1024;
      if (Number(rss[1]) > 16 * 1024) big.push(`${kind}:${Math.round(size / MiB)}/${Math.round(Number(rss[1]) / 1024)}`);
    }
  }
  return { ...Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Math.round(v / MiB)])), big: big.join(' ') };
}
const rss = () => Math.round(process.memoryUsage().rss / MiB);
const main = () => {
  const m = process.memoryUsage();
  return { heapUsed: Math.round(m.heapUsed / MiB), arrayBuffers: Math.round(m.arrayBuffers / MiB), external: Math.round(m.external / MiB) };
};

const pool = new CompressPool({ threads: 2, maxPixels: 50_000_000 });
await pool.ready();
await Promise.all([0, 1].map(() => pool.compress(readFileSync(new URL('../../../test/fixtures/rocket-small.jpg', import.meta.url)))));
await sleep(2000);
console.log(JSON.stringify({ at: 'idle', rss: rss(), main: main(), smaps: smaps() }));
let peak = 0;
let peakSmaps: Record<string, number | string> = {};
const sampler = setInterval(() => {
  const r = rss();
  if (r > peak + 20) {
    peak = r;
    peakSmaps = smaps();
  }
}, 100);
const run = async (file: string) => {
  const r = await pool.compress(new Uint8Array(readFileSync(file)), { options: DEFAULT_OUTPUT_OPTIONS });
  return `${file.split('/').at(-1)} ${r.outcome} ${r.width}x${r.height}`;
};
if (together) {
  const done = await Promise.all(files.map(run));
  (globalThis as { gc?: () => void }).gc?.();
  console.log(JSON.stringify({ at: done.join(', '), peak, peakSmaps, rss: rss(), main: main(), smaps: smaps(), stats: pool.stats().memoryRetained }));
} else {
  for (const file of files) {
    peak = rss();
    const done = await run(file);
    (globalThis as { gc?: () => void }).gc?.();
    console.log(JSON.stringify({ at: done, peak, peakSmaps, rss: rss(), main: main(), smaps: smaps() }));
  }
}
await sleep(Number(process.env.SETTLE_MS ?? 5000));
clearInterval(sampler);
console.log(JSON.stringify({ at: 'settled', rss: rss(), main: main(), smaps: smaps(), thread: await pool.threadStats() }));
await pool.close();
