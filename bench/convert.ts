// Output conversions against sharp, same images, same run: corpus JPEG photos to WebP and to AVIF,
// and a generated 24-megapixel (6000x4000) JPEG resized to 1600 px wide then JPEG. Ours is the
// pipeline itself (CompressPool.compress with { quality, format, max_width }); sharp gets the same
// number of images in flight as the pool has threads, one libvips thread each.
//
// Speed: interleaved rounds (order alternating), one pass = every input once; ratio = median over
// rounds of sharp's pass time / ours (> 1: ours faster). CPU per pass (all threads of this process)
// is recorded too: pool threads run at nice 10 (workers/compress.ts), sharp's at 0, so on a shared
// machine wall time can move with the neighbours' load while CPU time does not.
//
// Bytes at matched quality, as the quality section does (quality.ts): every output decoded by
// sharp (size checked) and scored with SSIMULACRA2 against the decoded source (for the resize: the
// source resized by sharp to the same size, Lanczos3 from full resolution); sharp's quality is
// searched with matchSetting for the lowest setting reaching our score, its bytes interpolated.
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { planImage } from '../src/codecs/plan.js';
import { DEFAULT_OUTPUT_OPTIONS, DEFAULT_QUALITY } from '../src/codecs/output-options.js';
import { CompressPool, DEFAULT_DECODE_MEMORY_MB } from '../src/pipeline/pool.js';
import { AVIF_OPTIONS, CODECS, resize } from '../workers/codecs.js';
import type { CorpusImage } from './corpus.js';
import { matchSetting, type Match, type Point } from './quality.js';
import type { Quality, QualityTask } from './quality-metric.js';
import { figure, type Figure } from './report.js';
import { mapLimit, median, now, processCpuMs, round, sum } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const Q = DEFAULT_QUALITY; // 50, the pipeline's default
const BIG = { width: 6000, height: 4000 };
const RESIZE_WIDTH = 1600;
/** sharp's AVIF effort for our libaom speed: libvips passes 9 - effort to libheif's aom `speed` */
const AVIF_EFFORT = 9 - AVIF_OPTIONS.speed;
const MB = 1024 * 1024;

type PathId = 'webp' | 'avif' | 'resize';

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
  ours: { quality: number; format: 'webp' | 'avif' | 'jpeg'; max_width?: number };
  sharp(b: Uint8Array, q: number): Promise<Buffer>;
  /** the decoded reference the outputs are scored against */
  reference(b: Uint8Array): Promise<Buffer>;
  speedTarget: number | null;
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
  oursImagesPerSecond: number;
  sharpImagesPerSecond: number;
}

/** One input, in this thread, one at a time: where the time goes (ms, median of a few runs). */
interface Steps {
  input: string;
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
  const decoded = await CODECS.jpeg.decode(i.bytes);
  const resized = p.ours.max_width ? await resize(decoded, i.width, i.height) : decoded;
  const target = CODECS[p.ours.format];
  return {
    input: i.name,
    oursDecode: await t(() => CODECS.jpeg.decode(i.bytes)),
    oursResize: p.ours.max_width ? await t(() => resize(decoded, i.width, i.height)) : null,
    oursEncode: await t(() => target.encode(resized, { quality: Q })),
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
  const scored: Record<PathId, number> = { webp: 1, avif: opts.quick ? 1 : 2, resize: 1 };
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
  const fromSource = (b: Uint8Array) => rgba(sharp(b).rotate()).then((r) => r.data);

  const paths: Path[] = [
    {
      id: 'webp', label: `WebP from JPEG (q${Q})`, sharpLabel: 'sharp .webp({quality})', inputs: photoInputs, reps: 2, format: 'webp',
      ours: { quality: Q, format: 'webp' },
      sharp: (b, q) => sharp(b).rotate().webp({ quality: q }).toBuffer(),
      reference: fromSource, speedTarget: 0.9,
    },
    {
      id: 'avif', label: `AVIF from JPEG (q${Q})`, sharpLabel: `sharp .avif({quality, effort: ${AVIF_EFFORT}, chromaSubsampling: '4:2:0'})`, inputs: photoInputs, reps: 1, format: 'avif',
      ours: { quality: Q, format: 'avif' },
      // effort 9 - speed: the same libaom speed as ours (speed ${AVIF_OPTIONS.speed}); 4:2:0 as ours (sharp's default is 4:4:4)
      sharp: (b, q) => sharp(b).rotate().avif({ quality: q, effort: AVIF_EFFORT, chromaSubsampling: '4:2:0' }).toBuffer(),
      reference: fromSource, speedTarget: null,
    },
    {
      id: 'resize', label: `${BIG.width}x${BIG.height} JPEG -> ${RESIZE_WIDTH} px wide JPEG (q${Q})`, sharpLabel: "sharp .resize({width: 1600, kernel: 'lanczos3'}).jpeg({quality, mozjpeg: true})", inputs: bigs, reps: 1, format: 'jpeg',
      ours: { quality: Q, format: 'jpeg', max_width: RESIZE_WIDTH },
      sharp: (b, q) => sharp(b).rotate().resize({ width: RESIZE_WIDTH, kernel: 'lanczos3' }).jpeg({ quality: q, mozjpeg: true }).toBuffer(),
      reference: (b) => rgba(sharp(b).rotate().resize(RESIZE_WIDTH, Math.round((BIG.height * RESIZE_WIDTH) / BIG.width), { fit: 'fill', kernel: 'lanczos3', fastShrinkOnLoad: false })).then((r) => r.data),
      speedTarget: 0.9,
    },
  ];

  // The pool's memory budget fits `threads` of the 24 MP jobs at once, so both sides have the same
  // number of images in flight (the default budget, 1024 MB, would admit one at a time).
  const bigNeed = planImage(bigs[0]!.bytes, { ...DEFAULT_OUTPUT_OPTIONS, format: 'jpeg', max_width: RESIZE_WIDTH }, 50_000_000).memoryBytes;
  const budgetMb = Math.max(DEFAULT_DECODE_MEMORY_MB, Math.ceil((threads * bigNeed) / MB) + 64);
  const pool = new CompressPool({ threads, maxPixels: 50_000_000, maxDecodeMemoryMb: budgetMb });
  const oursOut = new Map<string, Uint8Array>(); // `${path}:${input}` -> our output (deterministic)
  const results: ConvertPathResult[] = [];
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
      opts.log(`convert: ${p.id}, ${tasks.length} images per pass x ${rounds} rounds, ${threads} threads each`);
      await oursPass(); // warm-up (codec instances) and the checks
      await sharpPass();
      const o: { ms: number; cpu: number }[] = [];
      const sh: { ms: number; cpu: number }[] = [];
      for (let r = 0; r < rounds; r++) {
        if (r % 2 === 0) {
          o.push(await oursPass());
          sh.push(await sharpPass());
        } else {
          sh.push(await sharpPass());
          o.push(await oursPass());
        }
      }
      const speed: Speed = {
        oursMs: o.map((x) => round(x.ms, 1)), sharpMs: sh.map((x) => round(x.ms, 1)),
        oursCpuMs: o.map((x) => round(x.cpu, 0)), sharpCpuMs: sh.map((x) => round(x.cpu, 0)),
        ratio: round(median(o.map((x, i) => sh[i]!.ms / x.ms)), 3),
        cpuRatio: round(median(o.map((x, i) => sh[i]!.cpu / x.cpu)), 3),
        oursImagesPerSecond: round(tasks.length / (median(o.map((x) => x.ms)) / 1000), 2),
        sharpImagesPerSecond: round(tasks.length / (median(sh.map((x) => x.ms)) / 1000), 2),
      };
      opts.log(`convert: ${p.id}: ours ${speed.oursImagesPerSecond} img/s, sharp ${speed.sharpImagesPerSecond} img/s, ratio ${speed.ratio} (CPU ${speed.cpuRatio})${checks.length ? `; CHECKS: ${checks.join('; ')}` : ''}`);
      speeds.set(p.id, { speed, checks });
    }
    await pool.close();
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
    await metric.destroy();
  }

  const figures: Figure[] = [];
  for (const r of results) {
    const p = paths.find((x) => x.id === r.id)!;
    const name = r.id === 'webp' ? 'WebP from JPEG' : r.id === 'avif' ? 'AVIF from JPEG' : `${BIG.width}x${BIG.height} -> ${RESIZE_WIDTH} px JPEG`;
    const bytesTarget = r.id === 'avif' ? '' : '<= 1.05x';
    figures.push(
      figure(`convert.${r.id}.speed_vs_sharp`, `${name}: speed ours / sharp (${threads} threads each)`, r.speed.ratio, 'x',
        p.speedTarget === null ? '' : `>= ${p.speedTarget}x`, p.speedTarget === null ? null : r.speed.ratio >= p.speedTarget,
        `${r.speed.oursImagesPerSecond} vs ${r.speed.sharpImagesPerSecond} img/s; by CPU time ${r.speed.cpuRatio}x`),
      figure(`convert.${r.id}.bytes_vs_sharp_matched`, `${name}: bytes at matched SSIMULACRA2, ours / sharp`, r.bytesVsSharpMatched, 'x',
        bytesTarget, bytesTarget ? r.bytesVsSharpMatched <= 1.05 : null,
        `ours ${r.meanOursSsimulacra2} mean SSIMULACRA2; sharp's matching setting q${r.meanSharpMatchedQ ?? 'n/a'} (mean)${r.unmatched.length ? `; not reached for ${r.unmatched.join(', ')}` : ''}`),
    );
  }
  const allChecks = results.flatMap((r) => r.checks.map((c) => `${r.id}: ${c}`));
  figures.push(figure('convert.checked', 'Conversions: our outputs decoded + checked', allChecks.length === 0 ? 1 : 0, '', `all decode, right format and size (${RESIZE_WIDTH} px wide, aspect kept)`, allChecks.length === 0, allChecks.length ? allChecks.join('; ') : undefined));
  return { figures, detail: { threads, rounds, poolMemoryBudgetMb: budgetMb, avifEffort: AVIF_EFFORT, paths: results } };
}

export function convertTable(paths: ConvertPathResult[]): string {
  const head = '| path | images (speed / bytes) | speed ours / sharp (wall; CPU) | ours bytes / mean SSIMULACRA2 | sharp q50 bytes | sharp setting at our score (mean) | sharp bytes at our score | **ours / sharp matched** |';
  const lines = paths.map((r) => `| ${r.label} vs ${r.sharp} | ${r.images.length} / ${r.rows.length} | ${r.speed.ratio.toFixed(3)}x; ${r.speed.cpuRatio.toFixed(3)}x | ${r.oursBytes} / ${r.meanOursSsimulacra2} | ${r.sharpSameBytes} | q${r.meanSharpMatchedQ ?? 'n/a'} | ${r.sharpMatchedBytes} | **${r.bytesVsSharpMatched.toFixed(3)}x** |`);
  const stepsHead = '| path (first input, one thread, ms) | ours: JPEG decode | resize | encode | sharp: decode alone (full size) | whole path | whole path, fastShrinkOnLoad: false |';
  const stepLines = paths.map((r) => { const s = r.steps; return `| ${r.id} (${s.input}) | ${s.oursDecode} | ${s.oursResize ?? ''} | ${s.oursEncode} | ${s.sharpDecodeFull} | ${s.sharpPath} | ${s.sharpPathNoShrinkOnLoad ?? ''} |`; });
  return [head, '|---|---|---|---|---|---|---|---|', ...lines, '', stepsHead, '|---|---|---|---|---|---|---|', ...stepLines].join('\n');
}
