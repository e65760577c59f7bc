// Output conversions against sharp, same images, same run: corpus JPEG photos to WebP and to AVIF,
// a generated 24-megapixel (6000x4000) JPEG resized to 1600 px wide then JPEG (shrunk on load;
// also timed against wasm-vips's thumbnail path when wasm-vips is installed: bench/vips-worker.ts),
// and generated 12-megapixel photos re-encoded as progressive JPEG (sharp's mozjpeg preset is
// progressive). Ours is the
// pipeline itself (CompressPool.compress with { quality, format, max_width }); sharp gets the same
// number of images in flight as the pool has threads, one libvips thread each.
//
// Speed: interleaved rounds (order alternating), one pass = every input once; ratio = median over
// rounds of sharp's pass time / ours (> 1: ours faster). CPU per pass (all threads of this process)
// is recorded too: pool threads run at nice 10 (workers/compress.ts), sharp's at 0, so on a shared
// machine wall time can move with the neighbours' load while CPU time does not.
//
// Renditions: the same 24 MP JPEGs made into three WebP renditions (1600, 800 and 320 px wide) by
// one pool task each (one decode), timed against the 1600 px WebP alone, interleaved rounds in
// this run; ratio = median over rounds of the set's pass time / the single output's.
//
// Bytes at matched quality, as the quality section does (quality.ts): every output decoded by
// sharp (size checked) and scored with SSIMULACRA2 against the decoded source (for the resize: the
// source resized by sharp to the same size, Lanczos3 from full resolution); sharp's quality is
// searched with matchSetting for the lowest setting reaching our score, its bytes interpolated.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { planImage } from '../src/codecs/plan.js';
import { DEFAULT_OUTPUT_OPTIONS, type OutputOptions } from '../src/codecs/output-options.js';
import { parseRenditions, type Rendition } from '../src/codecs/renditions.js';
import { CompressPool, DEFAULT_DECODE_MEMORY_MB } from '../src/pipeline/pool.js';
import { AVIF_OPTIONS, CODECS, resize } from '../workers/codecs.js';
import type { CorpusImage } from './corpus.js';
import { matchSetting, type Match, type Point } from './quality.js';
import type { Quality, QualityTask } from './quality-metric.js';
import { generatedPhoto } from './generated-photo.js';
import { figure, type Figure } from './report.js';
import { mapLimit, median, now, processCpuMs, round, sum } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const Q = DEFAULT_OUTPUT_OPTIONS.quality; // 50, the pipeline's default
const BIG = { width: 6000, height: 4000 };
const RESIZE_WIDTH = 1600;
/** sharp's AVIF effort for our libaom speed: libvips passes 9 - effort to libheif's aom `speed` */
const AVIF_EFFORT = 9 - AVIF_OPTIONS.speed;
const MB = 1024 * 1024;

type PathId = 'webp' | 'avif' | 'resize' | 'progressive';

interface Input {
  name: string;
  bytes: Uint8Array;
  /** what the output must measure */
  width: number;
  height: number;
}

interface Path {
  id: PathId;
  label: string;
  sharpLabel: string;
  inputs: Input[];
  /** each input this many times per timed pass (short passes are noise) */
  reps: number;
  format: 'webp' | 'avif' | 'jpeg';
  ours: { quality: number; format: 'webp' | 'avif' | 'jpeg'; max_width?: number; progressive?: boolean };
  sharp(b: Uint8Array, q: number): Promise<Buffer>;
  /** the decoded reference the outputs are scored against */
  reference(b: Uint8Array): Promise<Buffer>;
  speedTarget: number | null;
  /** bytes at matched SSIMULACRA2, ours / sharp; null: reported only */
  bytesTarget: number | null;
}

/**
 * A 24 MP photo-like JPEG, made here and never stored: a corpus photo upscaled (Lanczos3, cover
 * crop) to 6000x4000 with per-pixel grain like a sensor's (so the downscale has real detail to
 * average), then written by sharp at quality 90.
 */
async function bigPhoto(src: CorpusImage, seed: number): Promise<Uint8Array> {
  const { data, info } = await sharp(src.bytes).rotate().resize(BIG.width, BIG.height, { fit: 'cover', kernel: 'lanczos3' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const v = data[i]! + ((s >>> 24) - 128) / 16; // +-8 levels
    data[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return new Uint8Array(await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer());
}

const rgba = (p: ReturnType<typeof sharp>) => p.ensureAlpha().raw().toBuffer({ resolveWithObject: true });

interface Speed {
  oursMs: number[];
  sharpMs: number[];
  oursCpuMs: number[];
  sharpCpuMs: number[];
  /** median over rounds of sharp time / ours time */
  ratio: number;
  cpuRatio: number;
  /** wasm-vips's thumbnail path (resize only, when installed): its pass times, and the median of vips time / ours */
  vipsMs?: number[];
  vipsRatio?: number;
  /** the 1-minute load average at each round's end (the machine is shared) */
  loadavg1: number[];
  oursImagesPerSecond: number;
  sharpImagesPerSecond: number;
}

/** One input, in this thread, one at a time: where the time goes (ms, median of a few runs). */
interface Steps {
  input: string;
  /** the DCT scale our JPEG decode ran at (1: full size) */
  oursDecodeScale: number;
  oursDecode: number;
  oursResize: number | null;
  oursEncode: number;
  sharpDecodeFull: number;
  sharpPath: number;
  /** the resize only: sharp's path with fastShrinkOnLoad: false (decodes at full size) */
  sharpPathNoShrinkOnLoad: number | null;
}

async function measureSteps(p: Path, i: Input, runs: number): Promise<Steps> {
  const t = async (fn: () => Promise<unknown>) => {
    const ms: number[] = [];
    for (let r = 0; r < runs; r++) {
      const s = now();
      await fn();
      ms.push(now() - s);
    }
    return round(median(ms), 1);
  };
  // the decode the pool's plan makes (shrunk on load for the resize)
  const { decodeScale, encode } = planImage(i.bytes, { ...DEFAULT_OUTPUT_OPTIONS, ...p.ours }, 50_000_000);
  const decoded = await CODECS.jpeg.decode(i.bytes, { scale: decodeScale });
  const resized = p.ours.max_width ? await resize(decoded, i.width, i.height) : decoded;
  const target = CODECS[p.ours.format];
  return {
    input: i.name,
    oursDecodeScale: decodeScale,
    oursDecode: await t(() => CODECS.jpeg.decode(i.bytes, { scale: decodeScale })),
    oursResize: p.ours.max_width ? await t(() => resize(decoded, i.width, i.height)) : null,
    oursEncode: await t(() => target.encode(resized, encode)),
    sharpDecodeFull: await t(() => sharp(i.bytes).raw().toBuffer()),
    sharpPath: await t(() => p.sharp(i.bytes, Q)),
    sharpPathNoShrinkOnLoad: p.ours.max_width
      ? await t(() => sharp(i.bytes).resize({ width: RESIZE_WIDTH, kernel: 'lanczos3', fastShrinkOnLoad: false }).jpeg({ quality: Q, mozjpeg: true }).toBuffer())
      : null,
  };
}

export interface ConvertImageRow {
  name: string;
  ours: Point;
  sharpSame: Point;
  matched: Match;
}

export interface ConvertPathResult {
  id: PathId;
  label: string;
  sharp: string;
  /** inputs of the speed rounds; `rows` (bytes at matched quality) are the first of them */
  images: string[];
  speed: Speed;
  steps: Steps;
  checks: string[];
  rows: ConvertImageRow[];
  oursBytes: number;
  sharpSameBytes: number;
  sharpMatchedBytes: number;
  bytesVsSharpMatched: number;
  meanOursSsimulacra2: number;
  meanSharpMatchedQ: number | null;
  unmatched: string[];
}

export async function convertBench(corpus: CorpusImage[], threads: number, opts: { quick: boolean; log: (s: string) => void }) {
  sharp.concurrency(1);
  sharp.cache(false);
  const rounds = opts.quick ? 3 : 5;
  const photos = corpus.filter((i) => i.format === 'jpeg' && i.width >= 1000).slice(0, opts.quick ? 2 : 3);
  // SSIMULACRA2 is ~5-10 s per pair here and the search takes ~5 settings per image: the bytes are
  // matched on these many inputs of each path (the first ones), the speed measured on all of them
  const scored: Record<PathId, number> = { webp: 1, avif: opts.quick ? 1 : 2, resize: 1, progressive: opts.quick ? 1 : 2 };
  if (photos.length === 0) throw new Error('convert: no corpus JPEG photos (>= 1000 px wide)');
  const bigCount = opts.quick ? 1 : threads;
  const t0 = now();
  const bigs: Input[] = [];
  for (let k = 0; k < bigCount; k++) {
    const src = photos[k % photos.length]!;
    bigs.push({ name: `${BIG.width}x${BIG.height} from ${src.name}`, bytes: await bigPhoto(src, k + 1), width: RESIZE_WIDTH, height: Math.round((BIG.height * RESIZE_WIDTH) / BIG.width) });
  }
  opts.log(`convert: ${bigCount} generated ${BIG.width}x${BIG.height} JPEGs in ${((now() - t0) / 1000).toFixed(1)} s (${bigs.map((b) => `${(b.bytes.length / MB).toFixed(1)} MB`).join(', ')})`);
  const photoInputs: Input[] = photos.map((p) => ({ name: p.name, bytes: p.bytes, width: p.width, height: p.height }));
  // the mp12 section's 12 MP photos (bench/mp12.ts: 4000x3000 q90, gradients + shapes + noise)
  const mp12Inputs: Input[] = [];
  for (let seed = 1; seed <= (opts.quick ? 1 : threads); seed++) {
    mp12Inputs.push({ name: `4000x3000 generated #${seed}`, bytes: new Uint8Array(await generatedPhoto(4000, 3000, seed, { quality: 90, shapes: true })), width: 4000, height: 3000 });
  }
  const fromSource = (b: Uint8Array) => rgba(sharp(b).rotate()).then((r) => r.data);

  const paths: Path[] = [
    {
      id: 'webp', label: `WebP from JPEG (q${Q})`, sharpLabel: 'sharp .webp({quality})', inputs: photoInputs, reps: 2, format: 'webp',
      ours: { quality: Q, format: 'webp' },
      sharp: (b, q) => sharp(b).rotate().webp({ quality: q }).toBuffer(),
      reference: fromSource, speedTarget: 0.9, bytesTarget: 1.05,
    },
    {
      id: 'avif', label: `AVIF from JPEG (q${Q})`, sharpLabel: `sharp .avif({quality, effort: ${AVIF_EFFORT}, chromaSubsampling: '4:2:0'})`, inputs: photoInputs, reps: 1, format: 'avif',
      ours: { quality: Q, format: 'avif' },
      // effort 9 - speed: the same libaom speed as ours (speed ${AVIF_OPTIONS.speed}); 4:2:0 as ours (sharp's default is 4:4:4)
      sharp: (b, q) => sharp(b).rotate().avif({ quality: q, effort: AVIF_EFFORT, chromaSubsampling: '4:2:0' }).toBuffer(),
      reference: fromSource, speedTarget: null, bytesTarget: null,
    },
    {
      id: 'resize', label: `${BIG.width}x${BIG.height} JPEG -> ${RESIZE_WIDTH} px wide JPEG (q${Q})`, sharpLabel: "sharp .resize({width: 1600, kernel: 'lanczos3'}).jpeg({quality, mozjpeg: true})", inputs: bigs, reps: 1, format: 'jpeg',
      ours: { quality: Q, format: 'jpeg', max_width: RESIZE_WIDTH },
      sharp: (b, q) => sharp(b).rotate().resize({ width: RESIZE_WIDTH, kernel: 'lanczos3' }).jpeg({ quality: q, mozjpeg: true }).toBuffer(),
      reference: (b) => rgba(sharp(b).rotate().resize(RESIZE_WIDTH, Math.round((BIG.height * RESIZE_WIDTH) / BIG.width), { fit: 'fill', kernel: 'lanczos3', fastShrinkOnLoad: false })).then((r) => r.data),
      // issue 22: against the WebAssembly ceiling (wasm-vips reached 0.51x), not native sharp's 0.9x
      speedTarget: 0.5, bytesTarget: 1.05,
    },
    {
      id: 'progressive', label: `12 MP JPEG -> progressive JPEG (q${Q})`, sharpLabel: 'sharp .jpeg({quality, mozjpeg: true}) (progressive)', inputs: mp12Inputs, reps: 1, format: 'jpeg',
      ours: { quality: Q, format: 'jpeg', progressive: true },
      sharp: (b, q) => sharp(b).rotate().jpeg({ quality: q, mozjpeg: true }).toBuffer(),
      reference: fromSource, speedTarget: null, bytesTarget: 1.01,
    },
  ];

  // The pool's memory budget fits `threads` of the 24 MP jobs at once, so both sides have the same
  // number of images in flight (the default budget, 1024 MB, would admit one at a time).
  const bigNeed = Math.max(
    planImage(bigs[0]!.bytes, { ...DEFAULT_OUTPUT_OPTIONS, format: 'jpeg', max_width: RESIZE_WIDTH }, 50_000_000).memoryBytes,
    planImage(bigs[0]!.bytes, RENDITION_BASE, 50_000_000, RENDITION_SET).memoryBytes,
  );
  const budgetMb = Math.max(DEFAULT_DECODE_MEMORY_MB, Math.ceil((threads * bigNeed) / MB) + 64);
  const pool = new CompressPool({ threads, maxPixels: 50_000_000, maxDecodeMemoryMb: budgetMb });
  const oursOut = new Map<string, Uint8Array>(); // `${path}:${input}` -> our output (deterministic)
  const results: ConvertPathResult[] = [];
  let renditions: RenditionsSpeed | null = null;
  const vips = hasWasmVips()
    ? new Piscina<{ bytes: Uint8Array; width: number; quality: number }, Uint8Array>({ filename: join(here, 'vips-worker.js'), minThreads: threads, maxThreads: threads, idleTimeout: 60_000 })
    : null;
  if (!vips) opts.log('convert: wasm-vips is not installed (npm i --no-save wasm-vips@0.0.19): the resize is timed against sharp only');
  const metric = new Piscina<QualityTask, Quality>({ filename: join(here, 'quality-worker.js'), minThreads: threads, maxThreads: threads, idleTimeout: 60_000 });
  try {
    await pool.ready();
    // ---- speed, and every output of ours checked (decodes, format, size; same bytes every round)
    const speeds = new Map<PathId, { speed: Speed; checks: string[] }>();
    for (const p of paths) {
      const tasks = Array.from({ length: p.reps }, () => p.inputs).flat();
      const checks: string[] = [];
      const digests = new Map<string, string>();
      const oursPass = async () => {
        const c0 = processCpuMs();
        const s = now();
        const outs = await Promise.all(tasks.map((i) => pool.compress(i.bytes, { options: { ...DEFAULT_OUTPUT_OPTIONS, ...p.ours } }).then((r) => ({ i, r }))));
        const ms = now() - s;
        const cpu = processCpuMs() - c0;
        for (const { i, r } of outs) {
          const key = `${p.id}:${i.name}`;
          const d = createHash('sha1').update(r.bytes).digest('hex');
          if (!digests.has(key)) {
            digests.set(key, d);
            oursOut.set(key, r.bytes);
            const m = await sharp(r.bytes).raw().toBuffer({ resolveWithObject: true }).then((x) => x.info, (e: Error) => e);
            const meta = await sharp(r.bytes).metadata().catch(() => null);
            const want = p.format === 'avif' ? 'heif' : p.format;
            if (m instanceof Error) checks.push(`${i.name}: does not decode (${m.message.split('\n')[0]})`);
            else if (m.width !== i.width || m.height !== i.height) checks.push(`${i.name}: ${m.width}x${m.height}, expected ${i.width}x${i.height}`);
            if (meta?.format !== want || r.format !== p.format) checks.push(`${i.name}: format ${meta?.format}/${r.format}, expected ${want}`);
            if (r.width !== i.width || r.height !== i.height) checks.push(`${i.name}: pool says ${r.width}x${r.height}`);
          } else if (digests.get(key) !== d) checks.push(`${i.name}: output differs between rounds`);
        }
        return { ms, cpu };
      };
      const sharpPass = async () => {
        const c0 = processCpuMs();
        const s = now();
        await mapLimit(tasks, threads, (i) => p.sharp(i.bytes, Q));
        return { ms: now() - s, cpu: processCpuMs() - c0 };
      };
      // wasm-vips: `threads` worker threads, one image each in flight, as our pool
      const withVips = p.id === 'resize' && vips !== null;
      const vipsPass = async () => {
        const s = now();
        const outs = await Promise.all(tasks.map((i) => vips!.run({ bytes: i.bytes, width: RESIZE_WIDTH, quality: Q })));
        for (const [k, out] of outs.entries()) {
          const m = await sharp(out).metadata();
          if (m.width !== tasks[k]!.width || m.height !== tasks[k]!.height) checks.push(`wasm-vips ${tasks[k]!.name}: ${m.width}x${m.height}`);
        }
        return now() - s;
      };
      opts.log(`convert: ${p.id}, ${tasks.length} images per pass x ${rounds} rounds, ${threads} threads each`);
      await oursPass(); // warm-up (codec instances) and the checks
      await sharpPass();
      if (withVips) await vipsPass();
      const o: { ms: number; cpu: number }[] = [];
      const sh: { ms: number; cpu: number }[] = [];
      const vi: number[] = [];
      const loads: number[] = [];
      const sides = withVips ? (['ours', 'sharp', 'vips'] as const) : (['ours', 'sharp'] as const);
      for (let r = 0; r < rounds; r++) {
        // each side first in turn
        for (let k = 0; k < sides.length; k++) {
          const side = sides[(k + r) % sides.length]!;
          if (side === 'ours') o.push(await oursPass());
          else if (side === 'sharp') sh.push(await sharpPass());
          else vi.push(await vipsPass());
        }
        loads.push(round(loadavg()[0]!, 2));
      }
      const speed: Speed = {
        oursMs: o.map((x) => round(x.ms, 1)), sharpMs: sh.map((x) => round(x.ms, 1)),
        oursCpuMs: o.map((x) => round(x.cpu, 0)), sharpCpuMs: sh.map((x) => round(x.cpu, 0)),
        ratio: round(median(o.map((x, i) => sh[i]!.ms / x.ms)), 3),
        cpuRatio: round(median(o.map((x, i) => sh[i]!.cpu / x.cpu)), 3),
        oursImagesPerSecond: round(tasks.length / (median(o.map((x) => x.ms)) / 1000), 2),
        sharpImagesPerSecond: round(tasks.length / (median(sh.map((x) => x.ms)) / 1000), 2),
        ...(withVips ? { vipsMs: vi.map((x) => round(x, 1)), vipsRatio: round(median(o.map((x, i) => vi[i]! / x.ms)), 3) } : {}),
        loadavg1: loads,
      };
      opts.log(`convert: ${p.id}: ours ${speed.oursImagesPerSecond} img/s, sharp ${speed.sharpImagesPerSecond} img/s, ratio ${speed.ratio} (CPU ${speed.cpuRatio})${withVips ? `, vs wasm-vips ${speed.vipsRatio}` : ''}, load ${loads.join('/')}${checks.length ? `; CHECKS: ${checks.join('; ')}` : ''}`);
      speeds.set(p.id, { speed, checks });
    }
    renditions = await renditionsSpeed(pool, bigs, rounds, opts.log);
    await pool.close();
    await vips?.destroy();
    // where the time goes: each step alone, in this thread, on the first input of each path
    const steps = new Map<PathId, Steps>();
    for (const p of paths) steps.set(p.id, await measureSteps(p, p.inputs[0]!, p.id === 'resize' ? 2 : 3));
    opts.log(`convert: steps (ms) ${JSON.stringify(Object.fromEntries(steps))}`);

    // ---- bytes at matched SSIMULACRA2
    const refs = new Map<string, Buffer>();
    const scores = new Map<string, Promise<Quality>>(); // by output digest: identical outputs are scored once
    const score = async (p: Path, i: Input, out: Uint8Array, q: number | null): Promise<Point> => {
      const key = `${p.id}:${i.name}`;
      let ref = refs.get(key);
      if (!ref) refs.set(key, (ref = await p.reference(i.bytes)));
      const digest = `${key}:${createHash('sha1').update(out).digest('hex')}`;
      const known = scores.get(digest);
      if (known) {
        const m = await known;
        return { q, bytes: out.length, ssimulacra2: round(m.ssimulacra2, 3), ssim: round(m.ssim, 5) };
      }
      const { data, info } = await rgba(sharp(out));
      if (info.width !== i.width || info.height !== i.height) throw new Error(`${key}: output ${info.width}x${info.height} (q${q}), expected ${i.width}x${i.height}`);
      const run = metric.run({ ref, dist: data, width: i.width, height: i.height, alpha: false });
      scores.set(digest, run);
      const m = await run;
      return { q, bytes: out.length, ssimulacra2: round(m.ssimulacra2, 3), ssim: round(m.ssim, 5) };
    };
    // the resize (largest output) first, so it does not run alone at the end
    const jobs = [...paths].reverse().flatMap((p) => p.inputs.slice(0, scored[p.id]).map((i) => ({ p, i })));
    opts.log(`convert: scoring ${jobs.length} images at matched SSIMULACRA2, ${threads} metric threads`);
    const rows = await mapLimit(jobs, threads, async ({ p, i }) => {
      const ours = await score(p, i, oursOut.get(`${p.id}:${i.name}`)!, null);
      const sharpAt = async (q: number) => score(p, i, await p.sharp(i.bytes, q), q);
      const sharpSame = await sharpAt(Q);
      const matched = await matchSetting(ours.ssimulacra2, sharpAt, Q, [sharpSame]);
      opts.log(`convert: ${p.id} ${i.name}: ours ${ours.bytes} B at ${ours.ssimulacra2}; sharp ${matched.hi ? `q${matched.hi.q} ${Math.round(matched.bytes!)} B` : 'no setting reaches it'} (${matched.evaluations} settings)`);
      return { p, row: { name: i.name, ours, sharpSame, matched } };
    });
    for (const p of paths) {
      const rs = rows.filter((r) => r.p === p).map((r) => r.row).sort((a, b) => a.name.localeCompare(b.name));
      const matchedBytes = sum(rs.map((r) => r.matched.bytes ?? r.matched.lo!.bytes));
      const oursBytes = sum(rs.map((r) => r.ours.bytes));
      const qs = rs.filter((r) => r.matched.hi).map((r) => r.matched.hi!.q!);
      const { speed, checks } = speeds.get(p.id)!;
      results.push({
        id: p.id, label: p.label, sharp: p.sharpLabel, images: p.inputs.map((i) => i.name), speed, steps: steps.get(p.id)!, checks, rows: rs,
        oursBytes, sharpSameBytes: sum(rs.map((r) => r.sharpSame.bytes)), sharpMatchedBytes: Math.round(matchedBytes),
        bytesVsSharpMatched: round(oursBytes / matchedBytes, 4),
        meanOursSsimulacra2: round(sum(rs.map((r) => r.ours.ssimulacra2)) / rs.length, 2),
        meanSharpMatchedQ: qs.length ? round(sum(qs) / qs.length, 1) : null,
        unmatched: rs.filter((r) => !r.matched.hi).map((r) => r.name),
      });
    }
  } finally {
    await pool.close();
    await vips?.destroy();
    await metric.destroy();
  }

  const figures: Figure[] = [];
  for (const r of results) {
    const p = paths.find((x) => x.id === r.id)!;
    const name = r.id === 'webp' ? 'WebP from JPEG' : r.id === 'avif' ? 'AVIF from JPEG' : r.id === 'progressive' ? '12 MP -> progressive JPEG' : `${BIG.width}x${BIG.height} -> ${RESIZE_WIDTH} px JPEG`;
    const load = `load avg ${r.speed.loadavg1.join('/')} (1 min, per round)`;
    figures.push(
      figure(`convert.${r.id}.speed_vs_sharp`, `${name}: speed ours / sharp (${threads} threads each)`, r.speed.ratio, 'x',
        p.speedTarget === null ? '' : `>= ${p.speedTarget}x`, p.speedTarget === null ? null : r.speed.ratio >= p.speedTarget,
        `${r.speed.oursImagesPerSecond} vs ${r.speed.sharpImagesPerSecond} img/s; by CPU time ${r.speed.cpuRatio}x; ${load}`),
      ...(r.speed.vipsRatio === undefined ? [] : [figure(`convert.${r.id}.speed_vs_wasm_vips`, `${name}: speed ours / wasm-vips thumbnail (${threads} threads each)`, r.speed.vipsRatio, 'x',
        '>= 1.0x', r.speed.vipsRatio >= 1, `wasm-vips 0.0.19 thumbnailBuffer + jpegsave (sharp's mozjpeg settings, sequential), one image per worker thread; ${load}`)]),
      figure(`convert.${r.id}.bytes_vs_sharp_matched`, `${name}: bytes at matched SSIMULACRA2, ours / sharp`, r.bytesVsSharpMatched, 'x',
        p.bytesTarget === null ? '' : `<= ${p.bytesTarget}x`, p.bytesTarget === null ? null : r.bytesVsSharpMatched <= p.bytesTarget,
        `ours ${r.meanOursSsimulacra2} mean SSIMULACRA2; sharp's matching setting q${r.meanSharpMatchedQ ?? 'n/a'} (mean)${r.unmatched.length ? `; not reached for ${r.unmatched.join(', ')}` : ''}`),
    );
  }
  if (renditions) {
    figures.push(figure('convert.renditions.time_vs_one', `${BIG.width}x${BIG.height} JPEG -> WebP at 1600, 800 and 320 px (one decode): time / the 1600 px WebP alone`,
      renditions.ratio, 'x', '<= 1.4x', renditions.ratio <= 1.4,
      `${renditions.images} images per pass, ${rounds} rounds; set ${median(renditions.setMs)} ms, alone ${median(renditions.aloneMs)} ms (median pass)${renditions.checks.length ? `; CHECKS: ${renditions.checks.join('; ')}` : ''}`));
  }
  const allChecks = [...results.flatMap((r) => r.checks.map((c) => `${r.id}: ${c}`)), ...(renditions?.checks ?? []).map((c) => `renditions: ${c}`)];
  figures.push(figure('convert.checked', 'Conversions: our outputs decoded + checked', allChecks.length === 0 ? 1 : 0, '', `all decode, right format and size (${RESIZE_WIDTH} px wide, aspect kept)`, allChecks.length === 0, allChecks.length ? allChecks.join('; ') : undefined));
  return { figures, detail: { threads, rounds, poolMemoryBudgetMb: budgetMb, avifEffort: AVIF_EFFORT, paths: results, renditions } };
}

/** The renditions measurement: the request-level output is the 1600 px WebP, the renditions the 800 and 320 px ones. */
const RENDITION_BASE: OutputOptions = { ...DEFAULT_OUTPUT_OPTIONS, format: 'webp', max_width: RESIZE_WIDTH };
const RENDITION_SET: Rendition[] = parseRenditions([{ name: 'w800', max_width: 800 }, { name: 'w320', max_width: 320 }], RENDITION_BASE);

export interface RenditionsSpeed {
  images: number;
  aloneMs: number[];
  setMs: number[];
  /** median over rounds of the set's pass time / the single output's (<= 1.4 wanted) */
  ratio: number;
  checks: string[];
}

/** Three WebP renditions from one decode against the 1600 px one alone, same inputs, interleaved rounds. */
export async function renditionsSpeed(pool: CompressPool, bigs: Input[], rounds: number, log: (s: string) => void): Promise<RenditionsSpeed> {
  const checks: string[] = [];
  const alonePass = async () => {
    const s = now();
    await Promise.all(bigs.map((i) => pool.compress(i.bytes, { options: RENDITION_BASE })));
    return now() - s;
  };
  const setPass = async (check = false) => {
    const s = now();
    const outs = await Promise.all(bigs.map((i) => pool.compress(i.bytes, { options: RENDITION_BASE, renditions: RENDITION_SET })));
    const ms = now() - s;
    if (check) {
      for (const [k, r] of outs.entries()) {
        const made: Array<[string, Uint8Array, number]> = [['w1600', r.bytes, RESIZE_WIDTH], ...RENDITION_SET.map((x): [string, Uint8Array, number] => [x.name, r.renditions[x.name]!.bytes, x.max_width!])];
        for (const [name, bytes, width] of made) {
          const meta = await sharp(bytes).metadata().catch(() => null);
          const height = Math.round((BIG.height * width) / BIG.width);
          if (meta?.format !== 'webp' || meta.width !== width || meta.height !== height) checks.push(`${bigs[k]!.name} ${name}: ${meta?.format} ${meta?.width}x${meta?.height}, expected webp ${width}x${height}`);
        }
      }
    }
    return ms;
  };
  log(`convert: renditions, ${bigs.length} images per pass x ${rounds} rounds`);
  await alonePass(); // warm-up
  await setPass(true); // warm-up and the checks
  const aloneMs: number[] = [];
  const setMs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      aloneMs.push(await alonePass());
      setMs.push(await setPass());
    } else {
      setMs.push(await setPass());
      aloneMs.push(await alonePass());
    }
  }
  const ratio = round(median(setMs.map((ms, i) => ms / aloneMs[i]!)), 3);
  log(`convert: renditions: set ${round(median(setMs), 0)} ms, alone ${round(median(aloneMs), 0)} ms per pass, ratio ${ratio}${checks.length ? `; CHECKS: ${checks.join('; ')}` : ''}`);
  return { images: bigs.length, aloneMs: aloneMs.map((x) => round(x, 1)), setMs: setMs.map((x) => round(x, 1)), ratio, checks };
}

export function convertTable(paths: ConvertPathResult[]): string {
  const head = '| path | images (speed / bytes) | speed ours / sharp (wall; CPU; ours / wasm-vips) | ours bytes / mean SSIMULACRA2 | sharp q50 bytes | sharp setting at our score (mean) | sharp bytes at our score | **ours / sharp matched** |';
  const lines = paths.map((r) => `| ${r.label} vs ${r.sharp} | ${r.images.length} / ${r.rows.length} | ${r.speed.ratio.toFixed(3)}x; ${r.speed.cpuRatio.toFixed(3)}x${r.speed.vipsRatio === undefined ? '' : `; ${r.speed.vipsRatio.toFixed(3)}x`} | ${r.oursBytes} / ${r.meanOursSsimulacra2} | ${r.sharpSameBytes} | q${r.meanSharpMatchedQ ?? 'n/a'} | ${r.sharpMatchedBytes} | **${r.bytesVsSharpMatched.toFixed(3)}x** |`);
  const stepsHead = '| path (first input, one thread, ms) | ours: JPEG decode (at scale) | resize | encode | sharp: decode alone (full size) | whole path | whole path, fastShrinkOnLoad: false |';
  const stepLines = paths.map((r) => { const s = r.steps; return `| ${r.id} (${s.input}) | ${s.oursDecode} (1/${s.oursDecodeScale}) | ${s.oursResize ?? ''} | ${s.oursEncode} | ${s.sharpDecodeFull} | ${s.sharpPath} | ${s.sharpPathNoShrinkOnLoad ?? ''} |`; });
  return [head, '|---|---|---|---|---|---|---|---|', ...lines, '', stepsHead, '|---|---|---|---|---|---|---|', ...stepLines].join('\n');
}

function hasWasmVips(): boolean {
  try {
    createRequire(import.meta.url).resolve('wasm-vips');
    return true;
  } catch {
    return false;
  }
}
