import { cpus, loadavg } from 'node:os';
// Pool scaling: the same JPEG tasks through CompressPool with 1 thread and with N threads,
// alternating, several rounds; speed-up = median over rounds of t(1) / t(N) in the same round.
import { CompressPool } from '../src/pipeline/pool.js';
import type { CorpusImage } from './corpus.js';
import { figure, type Figure } from './report.js';
import sharp from 'sharp';
import { mapLimit, median, now, round } from './stats.js';

export const POOL_DEFAULTS = { maxPixels: 50_000_000 } as const;

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
    // Control, in the same rounds: sharp (native, one libvips thread per image) with 1 and with N
    // images in flight. On a machine with N free cores it scales ~N x; when it does not, the
    // machine (other load) is the limit, not the pool.
    sharp.concurrency(1);
    sharp.cache(false);
    const sharpPass = async (lanes: number) => {
      const t0 = now();
      await mapLimit(tasks, lanes, (b) => sharp(b).rotate().jpeg({ quality: 50, mozjpeg: true }).toBuffer());
      return now() - t0;
    };
    await sharpPass(threads);
    const t1: number[] = [];
    const tn: number[] = [];
    const s1: number[] = [];
    const sn: number[] = [];
    const loads: number[] = [];
    for (let r = 0; r < rounds; r++) {
      loads.push(loadavg()[0]!);
      if (r % 2 === 0) {
        t1.push((await poolPass(one, tasks)).ms);
        tn.push((await poolPass(many, tasks)).ms);
        s1.push(await sharpPass(1));
        sn.push(await sharpPass(threads));
      } else {
        sn.push(await sharpPass(threads));
        s1.push(await sharpPass(1));
        tn.push((await poolPass(many, tasks)).ms);
        t1.push((await poolPass(one, tasks)).ms);
      }
    }
    const control = median(s1.map((t, i) => t / sn[i]!));
    const speedups = t1.map((t, i) => t / tn[i]!);
    const speedup = median(speedups);
    const ips1 = tasks.length / (median(t1) / 1000);
    const ipsN = tasks.length / (median(tn) / 1000);
    const figures: Figure[] = [
      figure('pool.ips_1', 'Pool, 1 thread: images/s', round(ips1, 2), 'img/s'),
      figure('pool.ips_n', `Pool, ${threads} threads: images/s`, round(ipsN, 2), 'img/s'),
      figure('pool.speedup', `Pool speed-up ${threads} threads / 1`, round(speedup, 3), 'x', `>= ${round(0.9 * threads, 2)}x (0.9 x N)`, speedup >= 0.9 * threads),
      figure('pool.control_sharp_speedup', `Control: sharp speed-up ${threads} / 1 in flight`, round(control, 3), 'x', '', null,
        `load average during the rounds: ${loads.map((l) => l.toFixed(2)).join(', ')} on ${cpus().length} CPUs`),
    ];
    return { figures, detail: { tasks: tasks.length, threads, t1, tn, speedups, sharp1: s1, sharpN: sn, loadavg: loads } };
  } finally {
    await Promise.all([one.close(), many.close()]);
  }
}
