// The SSIMULACRA2 scorer the quality=auto search uses: wasm/ssimulacra2/ssimulacra2.c (a port of
// ssimulacra2.ts rounding where it rounds, vectorised with wasm SIMD) built to WebAssembly, in one
// of its two builds (ssimulacra2Build).
// One instance per thread, made on first use (wasm.ts's Lazy: dropped after the step once it grew
// past the keep limit). A search scores several candidates against one source, so a scorer can
// prepare the source once (its XYB, blurred mean and variance at every scale, about 48 B per
// pixel; `reuse`), which makes each candidate's score about a third cheaper; it does so while
// scoring the first candidate (s2_prepare_scoring: one pass, so a search that stops at its first
// attempt pays no more than one plain score). Without it, every score streams both images through
// and the scorer holds little more than the pixels.
import type { Raster } from '../../src/codecs/types.js';
import { instantiateReactor, Lazy, type ReactorExports } from '../codecs/wasm.js';

/** build.mjs copies wasm/ to dist/wasm/, so the paths are the same from source and from dist. */
const EXACT_FILE = new URL('../../wasm/ssimulacra2/ssimulacra2.wasm', import.meta.url);
/** The same scorer with its blurs' fused steps as relaxed SIMD's relaxed_madd (ssimulacra2.c). */
const FMA_FILE = new URL('../../wasm/ssimulacra2/ssimulacra2-fma.wasm', import.meta.url);

/** What both builds export (the relaxed-madd build also its probe). */
export interface Ssimulacra2Exports extends ReactorExports {
  s2_malloc(size: number): number;
  s2_free(ptr: number): void;
  s2_score(ref: number, dist: number, width: number, height: number, background: number): number;
  s2_prepare(ref: number, width: number, height: number, background: number): number;
  s2_prepare_scoring(ref: number, dist: number, width: number, height: number, background: number, score: number): number;
  s2_score_prepared(prepared: number, dist: number): number;
  s2_prepared_free(prepared: number): void;
  /** ssimulacra2-fma.wasm only: 1 when this engine's relaxed_madd rounds once */
  s2_fused_madd?(): number;
}

export type Ssimulacra2Build = 'fma' | 'exact';
let build: Ssimulacra2Build | undefined;

/**
 * The build this thread scores with, chosen once: 'fma' (ssimulacra2-fma.wasm, each blur step one
 * four-lane relaxed_madd; about 1.6x faster per prepared score) where the engine compiles relaxed
 * SIMD and its relaxed_madd rounds once, as on x86-64 with FMA and on arm64 in V8 (Node 22 and
 * newer, the container's Node 24, Deno); else 'exact' (ssimulacra2.wasm, those steps in double
 * halves): Node 20 refuses relaxed SIMD without a flag, and Bun's engine multiplies and adds. The
 * two give the same scores (test/ssimulacra2-builds.test.ts).
 */
export function ssimulacra2Build(): Ssimulacra2Build {
  build ??= fusedMaddWorks() ? 'fma' : 'exact';
  return build;
}

/** A fresh instance of one build, for comparing the two (tests, bench/diag); scoring goes through ssimulacra2Scorer. */
export function ssimulacra2Instance(which: Ssimulacra2Build): Ssimulacra2Exports {
  return instantiateReactor<Ssimulacra2Exports>(which === 'fma' ? FMA_FILE : EXACT_FILE).module;
}

function fusedMaddWorks(): boolean {
  try {
    return ssimulacra2Instance('fma').s2_fused_madd?.() === 1;
  } catch {
    return false; // (an engine without relaxed SIMD refuses to compile the module)
  }
}

// The modules import nothing (no WASI call is linked), so they load the same on Node, Bun and Deno.
const module = new Lazy('ssimulacra2', async () => instantiateReactor<Ssimulacra2Exports>(ssimulacra2Build() === 'fma' ? FMA_FILE : EXACT_FILE));

export interface ScorerOptions {
  /** composite alpha on a dark and a light grey and keep the worse score, as libjxl's tool does; false ignores alpha */
  alpha?: boolean;
  /** prepare the source once for many scores (ssimulacra2PreparedBytes per background); default true */
  reuse?: boolean;
}

export interface Scorer {
  /** SSIMULACRA2 of `output` (same size as the source) against the source. */
  score(output: Raster): number;
  /** frees the module memory the scorer holds (the instance stays for the next one) */
  close(): void;
}

/** libjxl's tool blends alpha on these greys and keeps the worse score; -1: alpha ignored. */
const backgrounds = (alpha: boolean) => (alpha ? [0.1 * 255, 0.9 * 255] : [-1]);

/** A scorer against `source` (8-bit RGBA, at least 8x8). */
export async function ssimulacra2Scorer(source: Raster, opts: ScorerOptions = {}): Promise<Scorer> {
  const { width, height } = source;
  if (width < 8 || height < 8) throw new RangeError('ssimulacra2: images must be at least 8x8');
  const n = width * height * 4;
  if (source.data.length !== n) throw new RangeError('ssimulacra2: RGBA buffers of width*height*4 bytes expected');
  const m = await module.get();
  const outOfMemory = (what: string): never => {
    // the instance's memory may be left full: drop it (wasm memory never shrinks)
    module.reset();
    throw new RangeError(`ssimulacra2: out of memory ${what} ${width}x${height}`);
  };
  const reuse = opts.reuse ?? true;
  const bgs = backgrounds(opts.alpha ?? false);
  // the source's copy: with reuse, only until the first score has prepared it
  let ref = m.s2_malloc(n);
  if (ref === 0) outOfMemory('for');
  new Uint8Array(m.memory.buffer, ref, n).set(source.data);
  const dist = m.s2_malloc(n + 8); // the candidate, then the score s2_prepare_scoring writes
  if (dist === 0) {
    m.s2_free(ref);
    outOfMemory('for');
  }
  const prepared: number[] = []; // one state per background, made by the first score
  let open = true;
  const checked = (s: number) => (Number.isNaN(s) ? outOfMemory('scoring') : s);
  const freeAll = () => {
    for (const p of prepared) m.s2_prepared_free(p);
    prepared.length = 0;
    if (ref !== 0) m.s2_free(ref);
    ref = 0;
    m.s2_free(dist);
  };
  const prepareScoring = (bg: number): number => {
    const p = m.s2_prepare_scoring(ref, dist, width, height, bg, dist + n);
    if (p === 0) {
      freeAll();
      open = false;
      outOfMemory('preparing');
    }
    prepared.push(p);
    return checked(new DataView(m.memory.buffer).getFloat64(dist + n, true));
  };
  return {
    score(output: Raster): number {
      if (!open) throw new Error('ssimulacra2: scorer closed');
      if (output.width !== width || output.height !== height || output.data.length !== n) throw new RangeError(`ssimulacra2: sizes differ (${width}x${height} vs ${output.width}x${output.height})`);
      new Uint8Array(m.memory.buffer, dist, n).set(output.data);
      let scores: number[];
      if (!reuse) scores = bgs.map((bg) => checked(m.s2_score(ref, dist, width, height, bg)));
      else if (prepared.length === 0) {
        scores = bgs.map(prepareScoring);
        m.s2_free(ref);
        ref = 0;
      } else scores = prepared.map((p) => checked(m.s2_score_prepared(p, dist)));
      return Math.min(...scores);
    },
    close(): void {
      if (!open) return;
      open = false;
      // after a reset the memory belongs to a dropped instance: nothing to free
      if (module.live) freeAll();
    },
  };
}

/** SSIMULACRA2 of `dist` against `ref` in one call (nothing prepared). */
export async function ssimulacra2Wasm(ref: Raster, dist: Raster, opts: { alpha?: boolean } = {}): Promise<number> {
  const scorer = await ssimulacra2Scorer(ref, { ...opts, reuse: false });
  try {
    return scorer.score(dist);
  } finally {
    scorer.close();
  }
}

const SCALES = 6;
/**
 * ssimulacra2.c's level_pass: PASS_ROWS rows of floats (rings of RING = 14 rows, vertical state,
 * products of BATCH = 4 rows, load chunks, interleaved rows).
 */
const PASS_ROWS = 6 * 14 + 15 * 14 + 90 + 5 + 9 * 4 + 2 + 6 * 16 + 8 * 4;
export const S2_BYTES_PER_COLUMN = PASS_ROWS * 4;

/** Bytes of one prepared source (s2_prepare): 9 float planes (XYB, mean, variance) per scale, rows padded to 4. */
export function ssimulacra2PreparedBytes(width: number, height: number): number {
  let bytes = 0;
  for (let level = 0, w = width, h = height; level < SCALES && w >= 8 && h >= 8; level++, w = (w + 1) >> 1, h = (h + 1) >> 1) {
    bytes += 9 * 4 * (Math.ceil(w / 4) * 4) * h;
  }
  return bytes;
}

/**
 * Bytes a scorer holds at its peak beyond the caller's rasters: 8-bit copies of the source and the
 * candidate (4 B/px each) and, for each, the linear planes of two half-size scales (ssimulacra2.c's
 * Pyramid: scales 1 and 2 while scale 1 is scored, 3.75 B/px), all alive while the first score
 * prepares the source; with reuse the prepared source too (one per background); and the
 * streaming rows.
 */
export function ssimulacra2ScorerMemoryBytes(width: number, height: number, opts: ScorerOptions = {}): number {
  const kept = (opts.reuse ?? true) ? backgrounds(opts.alpha ?? false).length * ssimulacra2PreparedBytes(width, height) : 0;
  const pyramid = 12 * (Math.ceil(width / 2) * Math.ceil(height / 2) + Math.ceil(width / 4) * Math.ceil(height / 4));
  return kept + 8 * width * height + 2 * pyramid + S2_BYTES_PER_COLUMN * width;
}
