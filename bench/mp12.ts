// 12-megapixel first imports: generated 4000x3000 photos (JPEG q90, gradients + shapes + noise,
// made here with sharp, never stored) and the corpus JPEGs, each set through our CompressPool and
// through a sharp-mozjpeg pool of the same width (sharp's libuv pool, one libvips thread per
// image, N images in flight; as bench/e2e.ts), quality 50, same bytes, interleaved rounds.
// Throughput ratio = median over rounds of t(sharp) / t(ours) in the same round; sharp also runs
// with its threads at the pool threads' nice value (see reniceThreads), in the same rounds. Every output of
// the first pass is decoded by sharp and its size checked; bytes are compared with sharp's.
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import sharp from 'sharp';
import { CompressPool } from '../src/pipeline/pool.js';
import type { CorpusImage } from './corpus.js';
import { generatedPhoto } from './generated-photo.js';
import { POOL_DEFAULTS } from './pool-scaling.js';
import { DEFAULT_QUALITY } from '../src/codecs/output-options.js';
import { figure, type Figure } from './report.js';
import { mapLimit, median, now, processCpuMs, round, sum } from './stats.js';

interface SetResult {
  name: string;
  tasks: number;
  oursMs: number[];
  sharpMs: number[];
  sharpNiceMs: number[];
  /** median of t(sharp) / t(ours) over rounds: > 1 means ours is faster */
  speedVsSharp: number;
  /** the same against sharp with its threads at the pool threads' nice value */
  speedVsSharpNice: number;
  oursBytes: number;
  sharpBytes: number;
  bytesVsSharp: number;
  cpuPerImageMs: { ours: number; sharp: number; sharpNice: number };
  failures: string[];
}

/** workers/compress.ts runs pool threads at this nice value (the event loop goes first). */
const POOL_NICE = 10;

/**
 * Gives every thread of this process but the main one (sharp's libuv and libvips threads; the
 * pool's threads already run at POOL_NICE) the nice value of the pool threads, and returns a
 * function that puts each back. On a machine shared with other work, a thread at nice 10 gets a
 * smaller share of the CPU than one at 0, so the plain comparison also measures the pool's
 * priority, not only its codecs. Linux only (nice is per thread there); elsewhere a no-op.
 */
function reniceThreads(nice: number): () => void {
  if (process.platform !== 'linux') return () => {};
  const saved: [number, number][] = [];
  for (const name of readdirSync('/proc/self/task')) {
    const tid = Number(name);
    if (tid === process.pid) continue;
    try {
      const prev = getPriority(tid);
      if (prev < nice) {
        setPriority(tid, nice);
        saved.push([tid, prev]);
      }
    } catch {
      // the thread ended meanwhile
    }
  }
  return () => {
    for (const [tid, prev] of saved) {
      try {
        setPriority(tid, prev);
      } catch {
        // ended
      }
    }
  };
}

const sharpEncode = (b: Uint8Array) => sharp(b).rotate().jpeg({ quality: DEFAULT_QUALITY, mozjpeg: true }).toBuffer();

async function measureSet(name: string, tasks: Uint8Array[], pool: CompressPool, threads: number, rounds: number, log: (s: string) => void): Promise<SetResult> {
  // first pass: outputs, bytes and checks (the pool's threads and sharp warm up on it)
  const failures: string[] = [];
  const ours = await Promise.all(tasks.map((b) => pool.compress(b)));
  const theirs = await mapLimit(tasks, threads, sharpEncode);
  for (const [k, b] of tasks.entries()) {
    const want = await sharp(b).rotate().metadata();
    const [w, h] = (want.orientation ?? 1) >= 5 ? [want.height, want.width] : [want.width, want.height];
    for (const [who, out] of [['ours', ours[k]!.bytes], ['sharp', theirs[k]!]] as const) {
      try {
        const { info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
        if (info.width !== w || info.height !== h) failures.push(`${name} #${k} ${who}: ${info.width}x${info.height}, expected ${w}x${h}`);
      } catch (err) {
        failures.push(`${name} #${k} ${who}: does not decode (${(err as Error).message.split('\n')[0]})`);
      }
    }
  }
  const ms = { ours: [] as number[], sharp: [] as number[], sharpNice: [] as number[] };
  const cpu = { ours: [] as number[], sharp: [] as number[], sharpNice: [] as number[] };
  const order = ['ours', 'sharp', 'sharpNice'] as const;
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < order.length; k++) {
      const which = order[(k + r) % order.length]!;
      const restore = which === 'sharpNice' ? reniceThreads(POOL_NICE) : () => {};
      const c0 = processCpuMs();
      const t0 = now();
      try {
        if (which === 'ours') await Promise.all(tasks.map((b) => pool.compress(b)));
        else await mapLimit(tasks, threads, sharpEncode);
      } finally {
        restore();
      }
      ms[which].push(now() - t0);
      cpu[which].push((processCpuMs() - c0) / tasks.length);
    }
    log(`mp12: ${name} round ${r + 1}: ours ${ms.ours.at(-1)!.toFixed(0)} ms, sharp ${ms.sharp.at(-1)!.toFixed(0)} ms, sharp at nice ${POOL_NICE} ${ms.sharpNice.at(-1)!.toFixed(0)} ms`);
  }
  const { ours: oursMs, sharp: sharpMs } = ms;
  const oursBytes = sum(ours.map((o) => o.bytesOut));
  const sharpBytes = sum(theirs.map((b) => b.length));
  return {
    name, tasks: tasks.length, oursMs, sharpMs, sharpNiceMs: ms.sharpNice,
    speedVsSharp: median(oursMs.map((o, i) => sharpMs[i]! / o)),
    speedVsSharpNice: median(oursMs.map((o, i) => ms.sharpNice[i]! / o)),
    oursBytes, sharpBytes, bytesVsSharp: oursBytes / sharpBytes,
    cpuPerImageMs: { ours: round(median(cpu.ours), 1), sharp: round(median(cpu.sharp), 1), sharpNice: round(median(cpu.sharpNice), 1) },
    failures,
  };
}

export async function mp12Bench(jpegs: CorpusImage[], threads: number, opts: { quick: boolean; log: (s: string) => void }) {
  sharp.concurrency(1);
  sharp.cache(false);
  const rounds = opts.quick ? 2 : 4;
  const photos: Uint8Array[] = [];
  for (let seed = 1; seed <= (opts.quick ? 2 : 4); seed++) photos.push(new Uint8Array(await generatedPhoto(4000, 3000, seed, { quality: 90, shapes: true })));
  // each photo twice: several images per thread, so the last one running alone weighs less
  const big = [...photos, ...photos];
  const corpusTasks: Uint8Array[] = [];
  while (corpusTasks.length < (opts.quick ? 22 : 44)) corpusTasks.push(jpegs[corpusTasks.length % jpegs.length]!.bytes);
  opts.log(`mp12: ${big.length} generated 4000x3000 JPEGs (q90, ${(sum(photos.map((p) => p.length)) / photos.length / 1e6).toFixed(1)} MB each) and ${corpusTasks.length} corpus JPEGs, ours (CompressPool, ${threads} threads) vs sharp-mozjpeg (${threads} in flight), ${rounds} rounds`);
  const pool = new CompressPool({ threads, ...POOL_DEFAULTS });
  try {
    await pool.ready();
    const corpus = await measureSet('corpus', corpusTasks, pool, threads, rounds, opts.log);
    const mp12 = await measureSet('12 MP', big, pool, threads, rounds, opts.log);
    const ok = [...corpus.failures, ...mp12.failures].length === 0;
    const figures: Figure[] = [];
    for (const s of [corpus, mp12]) {
      const key = s === corpus ? 'corpus' : '12mp';
      const label = s === corpus ? `corpus JPEGs (${s.tasks})` : `12 MP photos (${s.tasks}: ${photos.length} x 4000x3000 q90, each twice)`;
      figures.push(
        figure(`mp12.${key}.speed_vs_sharp`, `Pool / sharp-mozjpeg pool throughput, ${label}`, round(s.speedVsSharp, 3), 'x', '>= 1.0x', s.speedVsSharp >= 1),
        figure(`mp12.${key}.speed_vs_sharp_nice`, `Pool / sharp-mozjpeg pool throughput, sharp's threads at nice ${POOL_NICE} too, ${label}`, round(s.speedVsSharpNice, 3), 'x', '(same priority)', null),
        figure(`mp12.${key}.bytes_vs_sharp`, `Bytes ours / sharp mozjpeg, ${label}`, round(s.bytesVsSharp, 4), 'x', '<= 1.03x', s.bytesVsSharp <= 1.03),
        // with every thread busy, throughput follows CPU per image; on a shared machine this is the
        // steadier figure (wall time moves with the neighbours' load, CPU time much less)
        figure(`mp12.${key}.cpu_ratio`, `CPU per image, sharp mozjpeg / ours, ${label}`, round(s.cpuPerImageMs.sharp / s.cpuPerImageMs.ours, 3), 'x', '>= 1.0x', s.cpuPerImageMs.sharp >= s.cpuPerImageMs.ours),
        figure(`mp12.${key}.cpu_per_image`, `CPU per image, ours, ${label}`, s.cpuPerImageMs.ours, 'ms'),
        figure(`mp12.${key}.cpu_per_image_sharp`, `CPU per image, sharp mozjpeg, ${label}`, s.cpuPerImageMs.sharp, 'ms'),
      );
    }
    figures.push(figure('mp12.checked', '12 MP section: outputs decoded + checked', ok ? 1 : 0, '', 'all decode, right size', ok));
    return { figures, detail: { threads, rounds, sets: [corpus, mp12] } };
  } finally {
    await pool.close();
  }
}
