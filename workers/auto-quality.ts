// quality=auto: the lowest encoder quality whose output still scores at least the target on
// SSIMULACRA2 against the decoded, upright source (issue 24). Independent of the codec plumbing:
// the caller hands in encode(q) and decode(bytes), so the same search serves JPEG and WebP (and
// tests, and the bench's SSIM variant through `score`).
//
// The search: encoder qualities are integers 1..100 and the score rises with them (nearly
// monotonically), so it brackets the target between the highest failing and the lowest passing
// quality tried. Every attempt costs an encode, a decode and a score, so it aims at a window
// rather than at the exact lowest passing quality: it stops at the first attempt that passes by
// at most TOLERANCE points, or when the bracket leaves one untried quality below the lowest
// passing one (a quality step is 1-3 % of bytes; an attempt costs more than it saves). From the
// predicted start it steps by the measured slope (a default one until two points exist) towards
// the middle of the window; inside a bracket it interpolates linearly (regula falsi). It also
// stops when the bracket is one quality wide or after maxEncodes (6) encodes, returning the
// lowest passing quality found; when nothing passes (the target is out of reach even at 100) it
// returns the best scoring attempt with reached: false.
import type { Raster } from '../src/codecs/types.js';
import { ssimulacra2PreparedBytes, ssimulacra2Scorer, ssimulacra2ScorerMemoryBytes } from './metrics/ssimulacra2-wasm.js';

export const MIN_TARGET = 30;
export const MAX_TARGET = 95;
export const MAX_ENCODES = 6;
/**
 * Points added to the target inside the search: our scorer's difference from calc-s2-rust (the
 * reference the results are checked with) is mean 0.2, worst under 1 in
 * bench/diag/ssimulacra2-check.ts, so an output scored at target + MARGIN reaches the target by
 * the reference as well.
 */
export const MARGIN = 1;
/**
 * An attempt scoring at most this many points above target + MARGIN ends the search. Replayed on
 * the corpus's score curves (bench/diag/auto-search-sim.ts: JPEG q20-100, target 70, each search
 * starting from the previous answer): mean encodes 4.3 with 0 (the lowest passing quality), 3.1
 * with 1, 2.4 with 2 (the bracket rule included) at 1.7 % more bytes than the lowest passing
 * qualities, 2.4 with 3 at 4.5 %.
 */
export const TOLERANCE = 2;
/**
 * The scorer prepares the source once per search, while scoring the first candidate (about 48 B
 * per pixel and background; each later candidate's score a third cheaper) while that stays under
 * this; larger images (over about 14 MP opaque, 7 MP with alpha) stream both images through every
 * score instead (15.5 B/px: ssimulacra2ScorerMemoryBytes).
 */
export const REUSE_LIMIT_BYTES = 640 * 2 ** 20;

export interface AutoQualityInput {
  /** the decoded, upright source raster the outputs are judged against */
  source: Raster;
  encode(quality: number): Promise<Uint8Array>;
  decode(bytes: Uint8Array): Promise<Raster>;
  /** SSIMULACRA2 score to reach, MIN_TARGET..MAX_TARGET */
  target: number;
  /** predicted quality to start from (predictQuality) */
  start: number;
  /** judge alpha too (blended on two greys, the worse kept); false for outputs without alpha */
  alpha?: boolean;
  /** at most this many encodes (default and ceiling MAX_ENCODES) */
  maxEncodes?: number;
  /** points added to the target while searching (default MARGIN) */
  margin?: number;
  /** a passing attempt at most this many points above target + margin ends the search (default TOLERANCE; 0: the lowest passing quality) */
  tolerance?: number;
  /** the metric; default SSIMULACRA2 (wasm/ssimulacra2, the port of workers/metrics/ssimulacra2.ts) */
  score?: (source: Raster, output: Raster) => number;
}

export interface AutoQualityResult {
  quality: number;
  score: number;
  bytes: Uint8Array;
  /** encodes spent (<= MAX_ENCODES) */
  encodes: number;
  /** false when no quality tried reached target + margin (the best attempt is returned) */
  reached: boolean;
}

/**
 * The first quality to try. `previous`: the answer for the previous image of the same request
 * with the same target and format (photos of one catalogue tend to need similar settings);
 * otherwise the target itself as a quality: on the corpus, MozJPEG q70 and q90 score about 70 and
 * 90 on average (q50 about 59, q30 about 40; bench/diag/ssimulacra2-check.ts), and the search's
 * slope steps correct the rest within the 6 encodes.
 */
export function predictQuality(target: number, previous?: number | null): number {
  const q = previous ?? target;
  return Math.min(100, Math.max(1, Math.round(q)));
}

/** Score points gained per quality step before any is measured (MozJPEG, q30-90). */
const DEFAULT_SLOPE = 0.6;
/** Slopes measured below this (a flat stretch of the curve) are not trusted for a step. */
const MIN_SLOPE = 0.05;
/** The largest step outside a bracket, in qualities. */
const MAX_STEP = 25;

interface Tried {
  quality: number;
  score: number;
  bytes: Uint8Array;
}

export async function searchQuality(input: AutoQualityInput): Promise<AutoQualityResult> {
  const { source } = input;
  if (!(input.target >= MIN_TARGET && input.target <= MAX_TARGET)) throw new RangeError(`quality target must be ${MIN_TARGET}-${MAX_TARGET}, got ${input.target}`);
  const target = input.target + (input.margin ?? MARGIN);
  const tolerance = Math.max(0, input.tolerance ?? TOLERANCE);
  const max = Math.min(MAX_ENCODES, Math.max(1, Math.floor(input.maxEncodes ?? MAX_ENCODES)));
  const alpha = input.alpha ?? false;
  const scorer = input.score ? null : await ssimulacra2Scorer(source, { alpha, reuse: reuses(source.width, source.height, alpha) });
  try {
    return await search(input, target, tolerance, max, input.score ?? ((_a: Raster, b: Raster) => scorer!.score(b)));
  } finally {
    scorer?.close();
  }
}

async function search(input: AutoQualityInput, target: number, tolerance: number, max: number, score: (source: Raster, output: Raster) => number): Promise<AutoQualityResult> {
  const { source } = input;

  const tried = new Map<number, Tried>();
  let fail: Tried | undefined; // highest failing quality
  let pass: Tried | undefined; // lowest passing quality
  let q = predictQuality(input.start);

  while (tried.size < max) {
    const bytes = await input.encode(q);
    const out = await input.decode(bytes);
    if (out.width !== source.width || out.height !== source.height) throw new Error(`auto quality: decoded output is ${out.width}x${out.height}, source ${source.width}x${source.height}`);
    const t: Tried = { quality: q, score: score(source, out), bytes };
    tried.set(q, t);
    if (t.score >= target) {
      if (!pass || q < pass.quality) pass = t;
      if (t.score <= target + tolerance) break; // close enough: another attempt costs more than it saves
    } else if (!fail || q > fail.quality) fail = t;

    const lo = fail?.quality ?? 0; // quality 0 does not exist: "1 passes" ends the search too
    const hi = pass?.quality ?? 101;
    if (hi - lo <= (pass && tolerance > 0 ? 2 : 1)) break; // (with a tolerance, one untried quality is not worth an attempt)
    if (!pass && q >= 100) break; // out of reach
    q = nextQuality(target + tolerance / 2, fail, pass, t, tried);
    if (tried.has(q)) break; // (cannot happen while lo < q < hi; kept as a guard against loops)
  }

  const best = pass ?? [...tried.values()].reduce((a, b) => (b.score > a.score || (b.score === a.score && b.quality > a.quality) ? b : a));
  return { quality: best.quality, score: best.score, bytes: best.bytes, encodes: tried.size, reached: pass !== undefined };
}

/** The slope between `at` and the attempt nearest it, if it rises. */
function slopeAt(at: Tried, tried: Map<number, Tried>): number | null {
  let other: Tried | undefined;
  for (const t of tried.values()) if (t !== at && (!other || Math.abs(t.quality - at.quality) < Math.abs(other.quality - at.quality))) other = t;
  if (!other) return null;
  const s = (at.score - other.score) / (at.quality - other.quality);
  return s > MIN_SLOPE ? s : null;
}

/** aim: the score to step towards (the middle of the window that ends the search). */
function nextQuality(aim: number, fail: Tried | undefined, pass: Tried | undefined, last: Tried, tried: Map<number, Tried>): number {
  const lo = fail?.quality ?? 0;
  const hi = pass?.quality ?? 101;
  let q: number;
  if (fail && pass) {
    // regula falsi inside the bracket, rounded up (the lowest passing quality is the answer)
    const slope = (pass.score - fail.score) / (pass.quality - fail.quality);
    q = slope > 0 ? Math.ceil(fail.quality + (aim - fail.score) / slope) : Math.round((lo + hi) / 2);
    // safeguarded: the score curve is concave, so plain regula falsi creeps in from one end (q50 ->
    // 44 -> 39 -> 35 ...); kept in the middle half, every step shrinks the bracket by a quarter
    const quarter = Math.ceil((hi - lo) / 4);
    q = Math.min(hi - quarter, Math.max(lo + quarter, q));
  } else {
    // one side known: step by the slope of the two nearest points tried, or the default (the
    // slope of the previous image of the request did no better on the corpus: slopes vary more
    // between images than the default is off)
    const slope = slopeAt(last, tried) ?? DEFAULT_SLOPE;
    // at most MAX_STEP: far from the target the default slope says little (q50 -> q1 for a score 30 above)
    const step = Math.max(-MAX_STEP, Math.min(MAX_STEP, (aim - last.score) / slope));
    q = last.quality + (step > 0 ? Math.max(2, Math.ceil(step)) : Math.min(-2, Math.floor(step)));
  }
  return Math.min(hi - 1, Math.max(lo + 1, Math.min(100, Math.max(1, q))));
}

function reuses(width: number, height: number, alpha: boolean): boolean {
  return (alpha ? 2 : 1) * ssimulacra2PreparedBytes(width, height) <= REUSE_LIMIT_BYTES;
}

/**
 * Bytes the search holds besides the source raster, the encoder and the decoder (which holds the
 * decoded candidate): the scorer's, prepared source included (src/codecs/plan.ts's
 * autoQualityMemory says the same). alpha: the search judges alpha (two prepared sources). The
 * encoded attempts (at most 6 outputs, each far smaller than the raster) are not counted.
 */
export function autoQualityMemoryBytes(width: number, height: number, alpha = false): number {
  return ssimulacra2ScorerMemoryBytes(width, height, { alpha, reuse: reuses(width, height, alpha) });
}
