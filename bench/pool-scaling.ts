// Pool scaling: the same JPEG tasks through CompressPool with 1 thread and with N threads,
// alternating, several rounds; speed-up = median over rounds of t(1) / t(N) in the same round.
import { CompressPool } from '../src/pipeline/pool.js';
import type { CorpusImage } from './corpus.js';
import { figure, type Figure } from './report.js';
import { median, now, round } from './stats.js';

export const POOL_DEFAULTS = { maxPixels: 50_000_000, jpegQuality: 50 } as const;

/** Runs every image through the pool at once (the pool's own bounded queue holds the rest). */
export async function poolPass(pool: CompressPool, images: Uint8Array[]): Promise<{ ms: number; bytesOut: number }> {
  const t0 = now();
  const outs = await Promise.all(images.map((b) => pool.compress(b)));
  return { ms: now() - t0, bytesOut: outs.reduce((a, o) => a + o.bytesOut, 0) };
}

export async function poolScalingBench(jpegs: CorpusImage[], threads: number, opts: { quick: boolean; log: (s: string) => void }) {
  const passes = opts.quick ? 1 : 4;
  const rounds = opts.quick ? 2 : 3;
  const tasks: Uint8Array[] = [];
  for (let p = 0; p < passes; p++) for (const j of jpegs) tasks.push(j.bytes);
  // N tasks at least a few per thread, so the tail (last images on one thread) stays small
  while (tasks.length < threads * 8) tasks.push(jpegs[tasks.length % jpegs.length]!.bytes);
  opts.log(`pool: ${tasks.length} JPEG tasks, 1 vs ${threads} threads, ${rounds} rounds`);

  const one = new CompressPool({ threads: 1, ...POOL_DEFAULTS });
  const many = new CompressPool({ threads, ...POOL_DEFAULTS });
  try {
    await Promise.all([one.ready(), many.ready()]);
    // warm every thread (the first image in a thread instantiates the codec)
    await poolPass(many, tasks.slice(0, threads * 2));
    await poolPass(one, tasks.slice(0, 2));
    const t1: number[] = [];
    const tn: number[] = [];
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        t1.push((await poolPass(one, tasks)).ms);
        tn.push((await poolPass(many, tasks)).ms);
      } else {
        tn.push((await poolPass(many, tasks)).ms);
        t1.push((await poolPass(one, tasks)).ms);
      }
    }
    const speedups = t1.map((t, i) => t / tn[i]!);
    const speedup = median(speedups);
    const ips1 = tasks.length / (median(t1) / 1000);
    const ipsN = tasks.length / (median(tn) / 1000);
    const figures: Figure[] = [
      figure('pool.ips_1', 'Pool, 1 thread: images/s', round(ips1, 2), 'img/s'),
      figure('pool.ips_n', `Pool, ${threads} threads: images/s`, round(ipsN, 2), 'img/s'),
      figure('pool.speedup', `Pool speed-up ${threads} threads / 1`, round(speedup, 3), 'x', `>= ${round(0.9 * threads, 2)}x (0.9 x N)`, speedup >= 0.9 * threads),
    ];
    return { figures, detail: { tasks: tasks.length, threads, t1, tn, speedups } };
  } finally {
    await Promise.all([one.close(), many.close()]);
  }
}
