// SSIMULACRA2 (Jon Sneyers, Cloudinary; libjxl tools/ssimulacra2, version 2.0), in plain
// TypeScript so it runs in a pool thread on Node, Bun and Deno. 100 is identical, ~90 visually
// lossless, ~70 high quality, ~50 medium.
//
// The metric: sRGB -> linear RGB -> XYB (libjxl's opsin absorbance, cube root), rescaled to about
// 0..1.1; at 6 scales (1:1 to 1:32, box-downsampled by 2 in linear RGB) and for each of X, Y, B: an
// SSIM error map (without the luminance denominator) and two edge maps (ringing: the distorted
// image has an edge the original lacks; blurring: the reverse), each reduced to its 1-norm and
// 4-norm; a weighted sum of those 108 numbers goes through a linear map and a power to the score.
// The Gaussian (sigma 1.5) is Charalampidis' recursive filter (truncated cosines, 2016) that
// libjxl and the rust-av port use, zero outside the image.
//
// Single precision on purpose: the recursive filter's poles sit on the unit circle, so its float32
// rounding accumulates along every row and column into a small noise in the blurred variances. At
// high qualities that noise is a real part of the score libjxl and calc-s2-rust (the project's
// reference) report (about 5 points at JPEG q90 on a 384x320 crop). So the blur runs over whole
// rows and columns from the image edge in float32 (Math.fround), in the reference's order, and
// the maps are never sampled: a band started mid-image would carry less noise.
//
// Memory: rows stream through (the vertical blur keeps its state per column), so beyond the two
// input rasters it holds scales 2..5 as float planes (2 images x 3 channels x 4 B x (1/16 + 1/64
// + ...) = 2 B per source pixel) and ROW_BYTES_PER_COLUMN per source column; scales 0 and 1 are
// made from the 8-bit pixels 16 rows at a time. ssimulacra2MemoryBytes(w, h) states it.

export interface Rgba {
  /** 8-bit RGBA, row-major */
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export interface Ssimulacra2Options {
  /**
   * Composite alpha on a dark and a light grey and keep the worse score (as libjxl's tool does);
   * false ignores alpha. Default false.
   */
  alpha?: boolean;
}

const CHUNK_ROWS = 32;
const SCALES = 6;
const C2 = 0.0009;

// --- the Gaussian: Charalampidis' recursive filter for sigma 1.5 ------------------------------------

/** Per pole k = 1, 3, 5: the input weight n2 and feedback d1 of o[i] = n2 (x[i-N-1] + x[i+N-1]) - d1 o[i-1] - o[i-2]. */
const { N, N2, D1 } = ((): { N: number; N2: number[]; D1: number[] } => {
  const sigma = 1.5;
  const n = Math.round(3.2795 * sigma + 0.2546); // (57): N = 5
  const w = [1, 3, 5].map((k) => (k * Math.PI) / (2 * n)); // Table I
  const p = [1 / Math.tan(0.5 * w[0]!), -1 / Math.tan(0.5 * w[1]!), 1 / Math.tan(0.5 * w[2]!)]; // (37)
  const r = [(p[0]! * p[0]!) / Math.sin(w[0]!), (-p[1]! * p[1]!) / Math.sin(w[1]!), (p[2]! * p[2]!) / Math.sin(w[2]!)]; // (44)
  const rho = w.map((wk) => Math.exp(-0.5 * sigma * sigma * wk * wk) / n); // (50)
  const d13 = p[0]! * r[1]! - r[0]! * p[1]!;
  const d35 = p[1]! * r[2]! - r[1]! * p[2]!;
  const d51 = p[2]! * r[0]! - r[2]! * p[0]!;
  const z15 = d35 / d13; // (52)
  const z35 = d51 / d13;
  // (53)-(56): A beta = gamma, solved by Cramer's rule
  const a = [
    [p[0]!, p[1]!, p[2]!],
    [r[0]!, r[1]!, r[2]!],
    [z15, z35, 1],
  ];
  const g = [1, n * n - sigma * sigma, z15 * rho[0]! + z35 * rho[1]! + rho[2]!];
  const det3 = (m: number[][]) =>
    m[0]![0]! * (m[1]![1]! * m[2]![2]! - m[1]![2]! * m[2]![1]!) - m[0]![1]! * (m[1]![0]! * m[2]![2]! - m[1]![2]! * m[2]![0]!) + m[0]![2]! * (m[1]![0]! * m[2]![1]! - m[1]![1]! * m[2]![0]!);
  const det = det3(a);
  const beta = [0, 1, 2].map((col) => det3(a.map((row, i) => row.map((v, j) => (j === col ? g[i]! : v)))) / det);
  return { N: n, N2: beta.map((b, k) => -b * Math.cos(w[k]! * (n + 1))), D1: w.map((wk) => -2 * Math.cos(wk)) }; // (33)
})();

// --- colour: sRGB bytes -> linear -> positive XYB --------------------------------------------------

const LINEAR = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  const c = i / 255;
  LINEAR[i] = c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

// libjxl's opsin absorbance matrix and bias
const M00 = 0.3, M01 = 0.622, M02 = 0.078;
const M10 = 0.23, M11 = 0.692, M12 = 0.078;
const M20 = 0.24342268924547819, M21 = 0.20476744424496821, M22 = 1 - M20 - M21;
const BIAS = 0.0037930732552754493;
const CBRT_BIAS = Math.cbrt(BIAS);

/** Linear RGB planes (in place) -> XYB made positive (2.0's offsets): X+0.5, Y+0.05, B-Y+1.1. */
function toPositiveXyb(r: Float32Array, g: Float32Array, b: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const R0 = r[i]!, G0 = g[i]!, B0 = b[i]!;
    const l = Math.cbrt(Math.max(0, M00 * R0 + M01 * G0 + M02 * B0 + BIAS)) - CBRT_BIAS;
    const m = Math.cbrt(Math.max(0, M10 * R0 + M11 * G0 + M12 * B0 + BIAS)) - CBRT_BIAS;
    const s = Math.cbrt(Math.max(0, M20 * R0 + M21 * G0 + M22 * B0 + BIAS)) - CBRT_BIAS;
    const y = 0.5 * (l + m);
    r[i] = 0.5 * (l - m) + 0.5;
    g[i] = y + 0.05;
    b[i] = s - y + 1.1;
  }
}

// --- the pyramid, row by row -------------------------------------------------------------------

type Planes = [Float32Array, Float32Array, Float32Array];

const sizeAt = (n: number, level: number) => {
  for (let l = 0; l < level; l++) n = (n + 1) >> 1;
  return n;
};

/** Linear-RGB rows of one image at any scale: scale 0 from the bytes, coarser ones by 2x2 box
 * averages (edge pixels repeated, as libjxl's Downsample), scales >= 2 kept whole once made. */
class Pyramid {
  private readonly kept: (Planes | undefined)[] = [];
  constructor(
    private readonly img: Rgba,
    /** grey (0..255) to composite alpha on, or null to ignore alpha */
    private readonly background: number | null,
  ) {
    for (let level = 2; level < SCALES; level++) {
      const w = sizeAt(img.width, level);
      const h = sizeAt(img.height, level);
      if (w < 8 || h < 8) break;
      const planes: Planes = [new Float32Array(w * h), new Float32Array(w * h), new Float32Array(w * h)];
      if (level === 2) {
        // made in chunks, so scales 0 and 1 are never whole in memory
        for (let y0 = 0; y0 < h; y0 += CHUNK_ROWS) this.rows(2, y0, Math.min(h, y0 + CHUNK_ROWS), planes, y0 * w);
      } else this.rows(level, 0, h, planes, 0);
      this.kept[level] = planes;
    }
  }

  /** Writes rows [y0, y1) of `level` into out (planar, width of the level) at offset `at`. */
  rows(level: number, y0: number, y1: number, out: Planes, at: number): void {
    const w = sizeAt(this.img.width, level);
    const kept = this.kept[level];
    if (kept) {
      for (let c = 0; c < 3; c++) out[c]!.set(kept[c]!.subarray(y0 * w, y1 * w), at);
      return;
    }
    if (level === 0) return this.bytesRows(y0, y1, out, at);
    const inH = sizeAt(this.img.height, level - 1);
    const inW = sizeAt(this.img.width, level - 1);
    const a0 = 2 * y0;
    const a1 = Math.min(inH, 2 * y1);
    const n = (a1 - a0) * inW;
    const src: Planes = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
    this.rows(level - 1, a0, a1, src, 0);
    for (let c = 0; c < 3; c++) {
      const s = src[c]!;
      const o = out[c]!;
      for (let y = y0; y < y1; y++) {
        const top = (2 * y - a0) * inW;
        const bottom = (Math.min(2 * y + 1, inH - 1) - a0) * inW;
        const row = at + (y - y0) * w;
        for (let x = 0; x < w; x++) {
          const xa = 2 * x;
          const xb = Math.min(xa + 1, inW - 1);
          o[row + x] = (s[top + xa]! + s[top + xb]! + s[bottom + xa]! + s[bottom + xb]!) * 0.25;
        }
      }
    }
  }

  private bytesRows(y0: number, y1: number, out: Planes, at: number): void {
    const { data, width } = this.img;
    const [r, g, b] = out;
    const bg = this.background;
    for (let i = y0 * width * 4, o = at, end = y1 * width * 4; i < end; i += 4, o++) {
      if (bg === null) {
        r[o] = LINEAR[data[i]!]!;
        g[o] = LINEAR[data[i + 1]!]!;
        b[o] = LINEAR[data[i + 2]!]!;
      } else {
        const a = data[i + 3]! / 255;
        r[o] = LINEAR[Math.round(data[i]! * a + bg * (1 - a))]!;
        g[o] = LINEAR[Math.round(data[i + 1]! * a + bg * (1 - a))]!;
        b[o] = LINEAR[Math.round(data[i + 2]! * a + bg * (1 - a))]!;
      }
    }
  }
}

// --- the error maps ------------------------------------------------------------------------------

const f32 = Math.fround;
const NK = [f32(N2[0]!), f32(N2[1]!), f32(N2[2]!)];
const DK = [f32(D1[0]!), f32(D1[1]!), f32(D1[2]!)];
const NEG_DK = [f32(-D1[0]!), f32(-D1[1]!), f32(-D1[2]!)];
const C2F = f32(C2);

/** Sums over one scale, per channel: SSIM error d, d^4; ringing, ^4; blurring, ^4. */
interface ScaleSums {
  s: Float64Array;
  pixels: number;
}

/** One row of the horizontal recursive blur, in single precision like the reference. */
function blurRow(src: Float32Array, from: number, w: number, dst: Float32Array): void {
  let p1 = 0, p3 = 0, p5 = 0, q1 = 0, q3 = 0, q5 = 0; // previous and second-previous outputs per pole
  for (let n = -N + 1; n < w; n++) {
    const l = n - N - 1;
    const r = n + N - 1;
    const sum = f32((l >= 0 ? src[from + l]! : 0) + (r < w ? src[from + r]! : 0));
    let o1 = f32(sum * NK[0]!), o3 = f32(sum * NK[1]!), o5 = f32(sum * NK[2]!);
    o1 = f32(o1 - q1);
    o3 = f32(o3 - q3);
    o5 = f32(o5 - q5);
    q1 = p1; q3 = p3; q5 = p5;
    o1 = f32(NEG_DK[0]! * p1 + o1);
    o3 = f32(NEG_DK[1]! * p3 + o3);
    o5 = f32(NEG_DK[2]! * p5 + o5);
    p1 = o1; p3 = o3; p5 = o5;
    if (n >= 0) dst[n] = f32(f32(o1 + o3) + o5);
  }
}

/**
 * The vertical recursive blur of 5 quantities (a, b, a*a, b*b, a*b) of one channel, column state
 * kept between rows so rows stream through: 3 poles x (previous, second previous) per quantity.
 */
class VerticalState {
  readonly prev: Float32Array[];
  readonly prev2: Float32Array[];
  constructor(w: number) {
    this.prev = Array.from({ length: 15 }, () => new Float32Array(w));
    this.prev2 = Array.from({ length: 15 }, () => new Float32Array(w));
  }
  /** Advances quantity q by one row: sum = top + bottom horizontal rows; writes the output row. */
  step(q: number, top: Float32Array, bottom: Float32Array, w: number, out: Float32Array | null): void {
    const p1 = this.prev[q * 3]!, p3 = this.prev[q * 3 + 1]!, p5 = this.prev[q * 3 + 2]!;
    const r1 = this.prev2[q * 3]!, r3 = this.prev2[q * 3 + 1]!, r5 = this.prev2[q * 3 + 2]!;
    const n1 = NK[0]!, n3 = NK[1]!, n5 = NK[2]!, d1 = DK[0]!, d3 = DK[1]!, d5 = DK[2]!;
    for (let x = 0; x < w; x++) {
      const sum = f32(top[x]! + bottom[x]!);
      const o1 = f32(sum * n1 - f32(p1[x]! * d1 + r1[x]!));
      const o3 = f32(sum * n3 - f32(p3[x]! * d3 + r3[x]!));
      const o5 = f32(sum * n5 - f32(p5[x]! * d5 + r5[x]!));
      r1[x] = p1[x]!;
      r3[x] = p3[x]!;
      r5[x] = p5[x]!;
      p1[x] = o1;
      p3[x] = o3;
      p5[x] = o5;
      if (out) out[x] = f32(f32(o1 + o3) + o5);
    }
  }
}

const RING = 2 * N + 1; // rows from n-N-1 to n+N-1 are in use while output row n is made

/** Error-map sums of one scale, streaming rows: the blur runs over whole rows and columns from
 * the image edge, as the reference's does, so its rounding is reproduced too. */
function scoreLevel(pa: Pyramid, pb: Pyramid, level: number, w: number, h: number): ScaleSums {
  const s = new Float64Array(18);
  const row = () => new Float32Array(w);
  // linear rows come in chunks; converted to XYB and kept for RING rows (the edge map reads row n)
  const xa: Planes[] = Array.from({ length: RING }, () => [row(), row(), row()]);
  const xb: Planes[] = Array.from({ length: RING }, () => [row(), row(), row()]);
  const hor: Float32Array[][] = Array.from({ length: RING }, () => Array.from({ length: 15 }, row)); // [slot][c*5+q]
  const vs = [new VerticalState(w), new VerticalState(w), new VerticalState(w)];
  const mu = Array.from({ length: 5 }, row);
  const zero = row(); // the rows above and below the image
  const prod = row();
  const CHUNK = 16;
  const chunkA: Planes = [new Float32Array(w * CHUNK), new Float32Array(w * CHUNK), new Float32Array(w * CHUNK)];
  const chunkB: Planes = [new Float32Array(w * CHUNK), new Float32Array(w * CHUNK), new Float32Array(w * CHUNK)];
  let chunkStart = -CHUNK;

  const load = (y: number) => {
    if (y >= chunkStart + CHUNK) {
      chunkStart = y;
      const end = Math.min(h, y + CHUNK);
      pa.rows(level, y, end, chunkA, 0);
      pb.rows(level, y, end, chunkB, 0);
      toPositiveXyb(chunkA[0], chunkA[1], chunkA[2], (end - y) * w);
      toPositiveXyb(chunkB[0], chunkB[1], chunkB[2], (end - y) * w);
    }
    const slot = y % RING;
    const off = (y - chunkStart) * w;
    for (let c = 0; c < 3; c++) {
      const A = xa[slot]![c]!, B = xb[slot]![c]!;
      A.set(chunkA[c]!.subarray(off, off + w));
      B.set(chunkB[c]!.subarray(off, off + w));
      const H = hor[slot]!;
      blurRow(A, 0, w, H[c * 5]!);
      blurRow(B, 0, w, H[c * 5 + 1]!);
      for (let x = 0; x < w; x++) prod[x] = A[x]! * A[x]!;
      blurRow(prod, 0, w, H[c * 5 + 2]!);
      for (let x = 0; x < w; x++) prod[x] = B[x]! * B[x]!;
      blurRow(prod, 0, w, H[c * 5 + 3]!);
      for (let x = 0; x < w; x++) prod[x] = A[x]! * B[x]!;
      blurRow(prod, 0, w, H[c * 5 + 4]!);
    }
  };

  for (let n = -N + 1; n < h; n++) {
    const top = n - N - 1;
    const bottom = n + N - 1;
    if (bottom < h) load(bottom);
    for (let c = 0; c < 3; c++) {
      for (let q = 0; q < 5; q++) {
        vs[c]!.step(q, top >= 0 ? hor[top % RING]![c * 5 + q]! : zero, bottom < h ? hor[bottom % RING]![c * 5 + q]! : zero, w, n >= 0 ? mu[q]! : null);
      }
      if (n < 0) continue;
      const [m1, m2, s11, s22, s12] = mu as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
      const a = xa[n % RING]![c]!, b = xb[n % RING]![c]!;
      let ssim1 = 0, ssim4 = 0, ring1 = 0, ring4 = 0, blur1 = 0, blur4 = 0;
      for (let x = 0; x < w; x++) {
        const u1 = m1[x]!, u2 = m2[x]!;
        const md = f32(u1 - u2);
        const numM = f32(1 - md * md);
        const numS = f32(2 * f32(s12[x]! - f32(u1 * u2)) + C2F);
        const denS = f32(f32(f32(s11[x]! - f32(u1 * u1)) + f32(s22[x]! - f32(u2 * u2))) + C2F);
        let e = 1 - f32(f32(numM * numS) / denS);
        if (e < 0) e = 0;
        const e2 = e * e;
        ssim1 += e;
        ssim4 += e2 * e2;
        const d1 = (1 + Math.abs(f32(b[x]! - u2))) / (1 + Math.abs(f32(a[x]! - u1))) - 1;
        if (d1 > 0) {
          const q2 = d1 * d1;
          ring1 += d1;
          ring4 += q2 * q2;
        } else {
          const q2 = d1 * d1;
          blur1 -= d1;
          blur4 += q2 * q2;
        }
      }
      s[c * 6] = s[c * 6]! + ssim1;
      s[c * 6 + 1] = s[c * 6 + 1]! + ssim4;
      s[c * 6 + 2] = s[c * 6 + 2]! + ring1;
      s[c * 6 + 3] = s[c * 6 + 3]! + ring4;
      s[c * 6 + 4] = s[c * 6 + 4]! + blur1;
      s[c * 6 + 5] = s[c * 6 + 5]! + blur4;
    }
  }
  return { s, pixels: w * h };
}

/**
 * Bytes the scorer holds beyond the two input rasters, per source column: the streaming rows
 * (XYB ring 2 x 3 x RING, blur ring 15 x RING, vertical state 3 x 15 x 2, 5 outputs + 1 product,
 * two 16-row linear chunks x 3 channels) of 4 bytes, plus the transient scale-0 rows a scale-1
 * chunk is made from (2 x 3 x 32 x 4 B).
 */
export const ROW_BYTES_PER_COLUMN = (6 * RING + 15 * RING + 90 + 6 + 2 * 3 * 16) * 4 + 2 * 3 * 32 * 4;

// The published weights of SSIMULACRA2 2.0 (libjxl, October 2022), the version calc-s2-rust
// implements (its wasm carries these constants); libjxl's 2.1 (April 2023) retuned them and the
// XYB offsets and scores 1-3 points apart. For each channel X, Y, B; each scale; each norm (1, 4):
// SSIM, ringing, blurring.
// prettier-ignore
const WEIGHTS = [
  0.0, 0.0, 0.0, 1.0035479352512353, 0.00011322061110474735, 0.00040442991823685936,
  0.0018953834105783773, 0.0, 0.0, 8.982542997575905, 0.9899785796045556, 0.0, 0.9748315131207942,
  0.9581575169937973, 0.0, 0.5133611777952946, 1.0423189317331243, 0.000308010928520841,
  12.149584966240063, 0.9565577248115467, 0.0, 1.0406668123136824, 81.51139046057362,
  0.30593391895330946, 1.0752214433626779, 1.1039042369464611, 0.0, 1.021911638819618,
  1.1141823296855722, 0.9730845751441705, 0.0, 0.0, 0.0, 0.9833918426095505, 0.7920385137059867,
  0.9710740411514053, 0.0, 0.0, 0.0, 0.5387077903152638, 0.0, 3.4036945601155804, 0.0, 0.0, 0.0,
  2.337569295661117, 0.0, 5.707946510901609, 37.83086423878157, 0.0, 0.0, 3.8258200594305185, 0.0,
  0.0, 24.073659674271497, 0.0, 0.0, 13.181871265286068, 0.0, 0.0, 0.0, 0.0, 0.0,
  10.00750121262895, 0.0, 0.0, 0.0, 0.0, 0.0, 52.51428385603891, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
  0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9946464267894417, 0.0, 0.0,
  0.0006040447715934816, 0.0, 0.0, 0.9945171491374072, 0.0, 2.8260043809454376,
  1.0052642766534516, 8.201441997546244e-5, 12.154041855876695, 32.292928706201266,
  0.992837130387521, 0.0, 30.71925517844603, 0.00012309907022278743, 0.0, 0.9826260237051734, 0.0,
  0.0, 0.9980928367837651, 0.012142430067163312,
];

function finalScore(scales: ScaleSums[]): number {
  let sum = 0;
  for (let c = 0; c < 3; c++) {
    for (const [scale, sc] of scales.entries()) {
      // each channel and scale has its own 6 weights, whether or not coarser scales exist
      let i = c * 36 + scale * 6;
      const one = 1 / sc.pixels;
      const v = sc.s;
      for (let norm = 0; norm < 2; norm++) {
        const mean = (k: number) => (norm === 0 ? one * v[k]! : Math.sqrt(Math.sqrt(one * v[k + 1]!)));
        sum += WEIGHTS[i++]! * mean(c * 6);
        sum += WEIGHTS[i++]! * mean(c * 6 + 2);
        sum += WEIGHTS[i++]! * mean(c * 6 + 4);
      }
    }
  }
  sum = sum * 17.829717797575952 - 1.634169143917183;
  return sum > 0 ? 100 - 10 * sum ** 0.5453261009510213 : 100;
}

function scoreOn(ref: Rgba, dist: Rgba, background: number | null): number {
  const pa = new Pyramid(ref, background);
  const pb = new Pyramid(dist, background);
  const scales: ScaleSums[] = [];
  for (let level = 0; level < SCALES; level++) {
    const w = sizeAt(ref.width, level);
    const h = sizeAt(ref.height, level);
    if (w < 8 || h < 8) break;
    scales.push(scoreLevel(pa, pb, level, w, h));
  }
  return finalScore(scales);
}

/** SSIMULACRA2 score of `dist` against the reference `ref` (same size, at least 8x8). */
export function ssimulacra2(ref: Rgba, dist: Rgba, opts: Ssimulacra2Options = {}): number {
  const { width, height } = ref;
  if (dist.width !== width || dist.height !== height) throw new RangeError(`ssimulacra2: sizes differ (${width}x${height} vs ${dist.width}x${dist.height})`);
  if (width < 8 || height < 8) throw new RangeError('ssimulacra2: images must be at least 8x8');
  if (ref.data.length !== width * height * 4 || dist.data.length !== ref.data.length) throw new RangeError('ssimulacra2: RGBA buffers of width*height*4 bytes expected');
  if (!opts.alpha) return scoreOn(ref, dist, null);
  // libjxl's tool: blend on dark and light grey, keep the worse (the bench harness does the same)
  return Math.min(scoreOn(ref, dist, 0.1 * 255), scoreOn(ref, dist, 0.9 * 255));
}

/** Bytes the scorer holds for an image beyond its two inputs (for the memory plan). */
export function ssimulacra2MemoryBytes(width: number, height: number): number {
  return 2 * width * height + ROW_BYTES_PER_COLUMN * width;
}
