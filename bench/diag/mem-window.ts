// node dist/bench/diag/mem-window.js PROBE.jsonl FROM TO: memory split (MiB) of a child server
// from its mem-probe file, idle (before FROM) and peak inside [FROM, TO] (epoch ms).
import { readFileSync } from 'node:fs';

interface Sample { t: number; rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number }

export function memWindow(file: string, from: number, to: number) {
  const all = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Sample);
  const before = all.filter((s) => s.t < from);
  const inside = all.filter((s) => s.t >= from && s.t <= to);
  const M = 2 ** 20;
  const split = (s: Sample | undefined) => s && {
    rss: +(s.rss / M).toFixed(1), heapTotal: +(s.heapTotal / M).toFixed(1), heapUsed: +(s.heapUsed / M).toFixed(1),
    external: +(s.external / M).toFixed(1), native: +((s.rss - s.heapTotal - s.external) / M).toFixed(1),
  };
  const peak = inside.reduce<Sample | undefined>((a, b) => (!a || b.rss > a.rss ? b : a), undefined);
  return {
    idle: split(before.at(-1)),
    peak: split(peak),
    maxHeapUsed: +(Math.max(...inside.map((s) => s.heapUsed)) / M).toFixed(1),
    maxHeapTotal: +(Math.max(...inside.map((s) => s.heapTotal)) / M).toFixed(1),
    maxNative: +(Math.max(...inside.map((s) => s.rss - s.heapTotal - s.external)) / M).toFixed(1),
    samples: inside.length,
  };
}

if (process.argv[1]?.endsWith('mem-window.js')) {
  const [file, from, to] = process.argv.slice(2);
  console.log(JSON.stringify(memWindow(file!, Number(from), Number(to)), null, 1));
}
