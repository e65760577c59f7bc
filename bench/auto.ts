// quality=auto (issue 24), `npm run bench -- --only auto`: on the corpus and on generated 12 MP
// photos, JPEG output (MozJPEG, the pipeline's codec), each source decoded upright (sharp) and
// flattened on white where it has alpha, as the pool does for JPEG:
// - bytes of auto at target 70 against the single fixed quality a careful shop would set: the
//   lowest quality at which EVERY image scores >= 70 (bisection over the whole set, scored with the
//   search's own scorer, then checked with calc-s2-rust);
// - every auto output scored by calc-s2-rust at full size: how many fall under 70;
// - time per image, one at a time: the search (encodes + decodes + scores) against one encode at
//   the fixed quality; and the same with the source's decode added (what an image costs in the
//   pool). Target <= 5x at corpus size; 12 MP reported. Both sides warm, as in a long-running pool
//   thread: one untimed search first (the fixed encodes are timed after each search anyway). Both
//   sides in this process's CPU time (everything runs on this thread), each the median of 3 runs
//   at corpus size (one at 12 MP): a single wall-clock encode of 60-270 ms read up to twice its
//   median on this shared machine, in either direction; the wall-clock ratio of the same runs is
//   reported beside. The
//   scorer build used (ssimulacra2Build) is in the figure's note: on Node 20 relaxed SIMD is turned
//   on here, as Node 22 and newer (the container's Node 24) have it by default, unless
//   BENCH_ENGINE_DEFAULTS=1;
// - the same searches started at their own answers: what a perfect first guess would cost, the
//   floor of any predictor with this search and scorer;
// - jpeg-recompress's approach side by side: the same search scoring with SSIM (ssim.js) against
//   an SSIM target, that target set to the median SSIM of the SSIMULACRA2-searched outputs (the
//   same typical quality): its bytes, and how many of its outputs fall under 70 on SSIMULACRA2.
import sharp from 'sharp';
import ssimJs from 'ssim.js';
import type { Raster } from '../src/codecs/types.js';
import { jpeg } from '../workers/codecs/jpeg.js';
import { predictQuality, searchQuality } from '../workers/auto-quality.js';
import { ssimulacra2Build, ssimulacra2Scorer } from '../workers/metrics/ssimulacra2-wasm.js';
import type { CorpusImage } from './corpus.js';
import { generatedPhoto } from './generated-photo.js';
import { referenceSsimulacra2 } from './quality-metric.js';
import { enableRelaxedSimd } from './relaxed-simd.js';
import { figure, type Figure } from './report.js';
import { median, round, sum, timedRuns } from './stats.js';

const TARGET = 70;

interface Source {
  name: string;
  img: Raster;
  bytes: Uint8Array;
  mp: number;
}

async function upright(bytes: Uint8Array, name: string): Promise<Source> {
  const { data, info } = await sharp(bytes).rotate().flatten({ background: '#ffffff' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { name, bytes, img: { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height }, mp: (info.width * info.height) / 1e6 };
}

const view = (r: Raster) => new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.length);
const reference = async (a: Raster, b: Raster) => referenceSsimulacra2({ ref: view(a), dist: view(b), width: a.width, height: a.height, alpha: false });
const ssimOf = (a: Raster, b: Raster) => ssimJs.ssim({ data: a.data, width: a.width, height: a.height }, { data: b.data, width: b.width, height: b.height }).mssim;

interface Row {
  name: string;
  mp: number;
  /** ms: CPU time (median of the runs), wallMs: wall clock (median) */
  auto: { quality: number; score: number; bytes: number; encodes: number; ms: number; wallMs: number; reference: number };
  ssim: { quality: number; ssim: number; bytes: number; reference: number } | null;
  /** the same search started at its own answer: what a perfect first guess would cost */
  oracle: { encodes: number; ms: number } | null;
  fixedEncodeMs: number;
  fixedEncodeWallMs: number;
  decodeMs: number;
}

export async function autoBench(corpus: CorpusImage[], opts: { quick: boolean; log: (s: string) => void; mp12?: number }) {
  const { log } = opts;
  const sources: Source[] = [];
  for (const c of opts.quick ? corpus.slice(0, 5) : corpus) sources.push(await upright(c.bytes, c.name));
  for (let seed = 1; seed <= (opts.mp12 ?? (opts.quick ? 0 : 1)); seed++) {
    sources.push(await upright(new Uint8Array(await generatedPhoto(4000, 3000, seed, { quality: 90, shapes: true })), `generated-12mp-${seed}`));
  }
  const corpusSet = (rows: Row[]) => rows.filter((r) => !r.name.startsWith('generated-'));

  if (process.env.BENCH_ENGINE_DEFAULTS !== '1') enableRelaxedSimd();
  const build = ssimulacra2Build();
  log(`auto: scorer build ${build}`);

  const searchOf = (s: Source, start: number) => searchQuality({ source: s.img, encode: (q) => jpeg.encode(s.img, { quality: q }), decode: (b) => jpeg.decode(b), target: TARGET, start });
  await searchOf(sources[0]!, TARGET); // warm-up, untimed

  // auto, one image after the other as a request would go (each starts from the previous answer);
  // the same search (same start, so the same attempts) and the fixed encode run `runs` times
  const rows: Row[] = [];
  let previous: number | undefined;
  for (const s of sources) {
    const start = predictQuality(TARGET, previous);
    const runs = s.mp > 4 ? 1 : 3;
    const search = await timedRuns(runs, () => searchOf(s, start));
    const found = search.value;
    previous = found.quality;
    const fixed = await timedRuns(runs, () => jpeg.encode(s.img, { quality: found.quality }));
    // the source's decode, for the whole-image ratio (sharp: near our libjpeg's speed)
    const decode = await timedRuns(runs, () => sharp(s.bytes).raw().toBuffer());
    const ref = await reference(s.img, await jpeg.decode(found.bytes));
    rows.push({ name: s.name, mp: s.mp, auto: { quality: found.quality, score: found.score, bytes: found.bytes.length, encodes: found.encodes, ms: search.cpuMs, wallMs: search.wallMs, reference: ref }, ssim: null, oracle: null, fixedEncodeMs: fixed.cpuMs, fixedEncodeWallMs: fixed.wallMs, decodeMs: decode.cpuMs });
    log(`auto: ${s.name} q${found.quality} score ${found.score.toFixed(2)} (calc-s2 ${ref.toFixed(2)}) ${found.bytes.length} B, ${found.encodes} encodes, ${Math.round(search.cpuMs)} ms CPU (one encode ${Math.round(fixed.cpuMs)} ms; wall clock ${Math.round(search.wallMs)} and ${Math.round(fixed.wallMs)} ms)`);
  }

  // the floor of any first guess: each search again, started at the answer it found (it may still
  // take more than one encode: when that quality scores above the window, the search checks below)
  for (const [i, s] of sources.entries()) {
    const again = await timedRuns(s.mp > 4 ? 1 : 3, () => searchOf(s, rows[i]!.auto.quality));
    rows[i]!.oracle = { encodes: again.value.encodes, ms: again.cpuMs };
  }

  // the fixed quality that gives every image >= 70 (bisection over 1..100 on the search's scorer)
  const scorers = await Promise.all(sources.map((s) => ssimulacra2Scorer(s.img)));
  const allReach = async (q: number) => {
    for (const [i, s] of sources.entries()) if (scorers[i]!.score(await jpeg.decode(await jpeg.encode(s.img, { quality: q }))) < TARGET + 1) return false;
    return true;
  };
  let lo = 0;
  let hi = 100;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (await allReach(mid)) hi = mid;
    else lo = mid;
  }
  for (const s of scorers) s.close();
  const fixedQ = hi;
  const fixed = await Promise.all(sources.map(async (s) => {
    const bytes = await jpeg.encode(s.img, { quality: fixedQ });
    return { bytes: bytes.length, reference: await reference(s.img, await jpeg.decode(bytes)) };
  }));
  log(`auto: fixed quality for every image >= ${TARGET}: q${fixedQ}`);

  // jpeg-recompress's approach: the same search on SSIM, target = median SSIM of the auto outputs
  const autoSsims: number[] = [];
  for (const s of sources) autoSsims.push(ssimOf(s.img, await jpeg.decode(await jpeg.encode(s.img, { quality: rows.find((r) => r.name === s.name)!.auto.quality }))));
  const ssimTarget = median(autoSsims);
  // SSIM mapped onto the search's point scale: 50 at the target, 1 point per 1e-4 of SSIM
  const points = (ssim: number) => 50 + (ssim - ssimTarget) * 1e4;
  previous = undefined;
  for (const [i, s] of sources.entries()) {
    const found = await searchQuality({
      source: s.img, encode: (q) => jpeg.encode(s.img, { quality: q }), decode: (b) => jpeg.decode(b), target: 50, margin: 0,
      start: predictQuality(TARGET, previous), score: (a, b) => points(ssimOf(a, b)),
    });
    previous = found.quality;
    rows[i]!.ssim = { quality: found.quality, ssim: (found.score - 50) / 1e4 + ssimTarget, bytes: found.bytes.length, reference: await reference(s.img, await jpeg.decode(found.bytes)) };
  }

  const figures: Figure[] = [];
  for (const [label, set] of [['corpus', corpusSet(rows)], ['12mp', rows.filter((r) => r.name.startsWith('generated-'))]] as const) {
    if (set.length === 0) continue;
    const idx = set.map((r) => rows.indexOf(r));
    const autoBytes = sum(set.map((r) => r.auto.bytes));
    const fixedBytes = sum(idx.map((i) => fixed[i]!.bytes));
    const ssimBytes = sum(set.map((r) => r.ssim!.bytes));
    const under = set.filter((r) => r.auto.reference < TARGET).length;
    const timeRatio = sum(set.map((r) => r.auto.ms)) / sum(set.map((r) => r.fixedEncodeMs));
    const wholeRatio = sum(set.map((r) => r.auto.ms + r.decodeMs)) / sum(set.map((r) => r.fixedEncodeMs + r.decodeMs));
    const id = `auto.${label}`;
    figures.push(
      figure(`${id}.bytes_vs_fixed`, `quality=auto @70 bytes / fixed q${fixedQ} (every image >= 70), ${label}`, round(autoBytes / fixedBytes, 3), 'x', label === 'corpus' ? '<= 0.80' : '', label === 'corpus' ? autoBytes / fixedBytes <= 0.8 : null),
      figure(`${id}.under_target`, `quality=auto outputs under 70 by calc-s2-rust, ${label}`, under, `of ${set.length}`, '0', under === 0),
      figure(`${id}.time_vs_fixed`, `quality=auto time / one fixed-quality encode, ${label}`, round(timeRatio, 2), 'x', label === 'corpus' ? '<= 5' : '', label === 'corpus' ? timeRatio <= 5 : null,
        `per image ${Math.round(sum(set.map((r) => r.auto.ms)) / set.length)} ms vs ${Math.round(sum(set.map((r) => r.fixedEncodeMs)) / set.length)} ms; mean ${round(sum(set.map((r) => r.auto.encodes)) / set.length, 1)} encodes; scorer build ${build}`),
      figure(`${id}.time_vs_fixed_with_decode`, `quality=auto / fixed, source decode included, ${label}`, round(wholeRatio, 2), 'x'),
      figure(`${id}.time_vs_fixed_wall`, `the first ratio in wall-clock time (the same runs' medians), ${label}`, round(sum(set.map((r) => r.auto.wallMs)) / sum(set.map((r) => r.fixedEncodeWallMs)), 2), 'x'),
      figure(`${id}.oracle_time_vs_fixed`, `the same, first guess = the answer (a perfect predictor) / one encode, ${label}`, round(sum(set.map((r) => r.oracle!.ms)) / sum(set.map((r) => r.fixedEncodeMs)), 2), 'x', '', null,
        `mean ${round(sum(set.map((r) => r.oracle!.encodes)) / set.length, 2)} encodes; with the source decode ${round(sum(set.map((r) => r.oracle!.ms + r.decodeMs)) / sum(set.map((r) => r.fixedEncodeMs + r.decodeMs)), 2)}x`),
      figure(`${id}.ssim_bytes_vs_fixed`, `SSIM search (jpeg-recompress's approach) bytes / fixed q${fixedQ}, ${label}`, round(ssimBytes / fixedBytes, 3), 'x', '', null,
        `SSIM target ${ssimTarget.toFixed(5)} (median of the auto outputs)`),
      figure(`${id}.ssim_under_target`, `SSIM search outputs under 70 by calc-s2-rust, ${label}`, set.filter((r) => r.ssim!.reference < TARGET).length, `of ${set.length}`),
    );
  }
  return { figures, detail: { target: TARGET, scorerBuild: build, fixedQuality: fixedQ, fixedUnderTarget: fixed.filter((f) => f.reference < TARGET).length, ssimTarget, rows, fixed } };
}
