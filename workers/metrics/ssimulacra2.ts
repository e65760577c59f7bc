// SSIMULACRA2 (Jon Sneyers, Cloudinary; libjxl tools/ssimulacra2, version 2.0), in plain
// TypeScript so it runs in a pool thread on Node, Bun and Deno. 100 is identical, ~90 visually
// lossless, ~70 high quality, ~50 medium.
//
// The metric: sRGB -> linear RGB -> XYB (libjxl's opsin absorbance, cube root), rescaled to about
// 0..1.1; at 6 scales (1:1 to 1:32, box-downsampled by 2 in linear RGB) and for each of X, Y, B: an
// SSIM error map (without the luminance denominator) and two edge maps (ringing: the distorted
// image has an edge the original lacks; blurring: the reverse), each reduced to its 1-norm and
// 4-norm; a weighted sum of those 108 numbers goes through a cubic and a power to the score.
// The Gaussian (sigma 1.5) is Charalampidis' recursive filter (truncated cosines, 2016) that
// libjxl and the rust-av port use; its impulse response is exactly 9 taps with zero padding
// outside the image, so it is applied here as that 9-tap kernel.
//
// Speed: on an image larger than `budget` pixels at some scale, the error maps of that scale are
// evaluated on evenly spaced full-width bands of rows (each band blurred with its 4-row margin, so
// every evaluated pixel has exactly the value the whole image would give it) and the norms are
// taken over those pixels: a sample of the map, not a downscaled image (which would hide the 8x8
// block artefacts the search must see). Coarse scales usually fit the budget and are exact.
// bench/diag/ssimulacra2-check.ts measures the difference from calc-s2-rust at full size.
//
// Memory: scales 2..5 are kept as float planes (2 images x 3 channels x 4 B x (1/16 + 1/64 + ...)
// = 2 B per source pixel); scales 0 and 1 are made band by band from the 8-bit pixels. The band
// buffers add about BAND_BYTES_PER_COLUMN bytes per source column (both are exported for the
// memory plan).

export interface Rgba {
  /** 8-bit RGBA, row-major */
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export interface Ssimulacra2Options {
  /**
   * Pixels evaluated per scale before the error maps are sampled by bands; Infinity scores every
   * pixel (exact). Default DEFAULT_BUDGET.
   */
  budget?: number;
  /**
   * Composite alpha on a dark and a light grey and keep the worse score (as libjxl's tool does);
   * false ignores alpha. Default false.
   */
  alpha?: boolean;
}

/** Pixels per scale scored by default: measured in bench/diag/ssimulacra2-check.ts. */
export const DEFAULT_BUDGET = 400_000;
const BAND_ROWS = 32;
const SCALES = 6;
const C2 = 0.0009;

// --- the Gaussian: Charalampidis' recursive filter for sigma 1.5, as an FIR kernel ---------------

/** Half of the symmetric 9-tap kernel, K[0] the centre (solved once from the paper's equations). */
const K = ((): Float64Array => {
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
  // The recursion o[i] = n2 (x[i-N-1] + x[i+N-1]) - d1 o[i-1] - o[i-2] per pole, summed over the
  // poles, answers an impulse with n2 sin(w (d + N)) / sin(w) at offset d, zero for |d| >= N.
  const half = new Float64Array(n);
  for (let k = 0; k < 3; k++) {
    const n2 = -beta[k]! * Math.cos(w[k]! * (n + 1));
    for (let d = 0; d < n; d++) half[d]! += (n2 * Math.sin(w[k]! * (d + n))) / Math.sin(w[k]!);
  }
  return half;
})();
const R = K.length - 1; // 4: the blur's reach, and the margin a band needs

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
        for (let y0 = 0; y0 < h; y0 += BAND_ROWS) this.rows(2, y0, Math.min(h, y0 + BAND_ROWS), planes, y0 * w);
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

/** Sums over the evaluated pixels of one scale, per channel: SSIM error d, d^4; ringing, ^4; blurring, ^4. */
class ScaleSums {
  readonly s = new Float64Array(18);
  pixels = 0;
}

/** Horizontal 9-tap blur of one row (zero outside), src[from..from+w) -> dst[from..). */
function blurRow(src: Float32Array, dst: Float32Array, from: number, w: number): void {
  const k0 = K[0]!, k1 = K[1]!, k2 = K[2]!, k3 = K[3]!, k4 = K[4]!;
  for (let x = 0; x < w; x++) {
    if (x >= R && x < w - R) {
      const i = from + x;
      dst[i] = k0 * src[i]! + k1 * (src[i - 1]! + src[i + 1]!) + k2 * (src[i - 2]! + src[i + 2]!) + k3 * (src[i - 3]! + src[i + 3]!) + k4 * (src[i - 4]! + src[i + 4]!);
    } else {
      let sum = 0;
      for (let d = -R; d <= R; d++) {
        const xx = x + d;
        if (xx >= 0 && xx < w) sum += K[d < 0 ? -d : d]! * src[from + xx]!;
      }
      dst[from + x] = sum;
    }
  }
}

/** Scratch for one band: rows of both images, their products and the horizontal blurs. */
class Band {
  readonly ref: Planes;
  readonly dist: Planes;
  readonly prod: Float32Array[]; // a*a, b*b, a*b of one channel
  readonly hor: Float32Array[]; // horizontal blurs of a, b, a*a, b*b, a*b
  constructor(readonly capacity: number) {
    const f = () => new Float32Array(capacity);
    this.ref = [f(), f(), f()];
    this.dist = [f(), f(), f()];
    this.prod = [f(), f(), f()];
    this.hor = [f(), f(), f(), f(), f()];
  }
}

/**
 * Float32 buffers a band holds, per column of the scale-0 image: 2 images x 3 channels, 3 products,
 * 5 blurs, each (BAND_ROWS + 2R) rows of 4 bytes, plus the scale-0 rows a scale-1 band is made from
 * (2 x 3 x 2(BAND_ROWS + 2R) x 4 B, transient).
 */
export const BAND_BYTES_PER_COLUMN = (6 + 3 + 5) * (BAND_ROWS + 2 * R) * 4 + 6 * 2 * (BAND_ROWS + 2 * R) * 4;

/** Adds the error maps of rows [y0, y1) of one scale to sums. */
function scoreBand(pa: Pyramid, pb: Pyramid, level: number, w: number, h: number, y0: number, y1: number, band: Band, sums: ScaleSums): void {
  const e0 = Math.max(0, y0 - R);
  const e1 = Math.min(h, y1 + R);
  const n = (e1 - e0) * w;
  pa.rows(level, e0, e1, band.ref, 0);
  pb.rows(level, e0, e1, band.dist, 0);
  toPositiveXyb(band.ref[0], band.ref[1], band.ref[2], n);
  toPositiveXyb(band.dist[0], band.dist[1], band.dist[2], n);
  const [haa, hbb, hab] = band.prod as [Float32Array, Float32Array, Float32Array];
  const [ha, hb, h11, h22, h12] = band.hor as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  const s = sums.s;
  for (let c = 0; c < 3; c++) {
    const a = band.ref[c]!;
    const b = band.dist[c]!;
    for (let i = 0; i < n; i++) {
      const av = a[i]!, bv = b[i]!;
      haa[i] = av * av;
      hbb[i] = bv * bv;
      hab[i] = av * bv;
    }
    for (let row = 0; row < e1 - e0; row++) {
      const from = row * w;
      blurRow(a, ha, from, w);
      blurRow(b, hb, from, w);
      blurRow(haa, h11, from, w);
      blurRow(hbb, h22, from, w);
      blurRow(hab, h12, from, w);
    }
    let ssim1 = 0, ssim4 = 0, ring1 = 0, ring4 = 0, blur1 = 0, blur4 = 0;
    for (let y = y0; y < y1; y++) {
      const lo = Math.max(-R, -y);
      const hi = Math.min(R, h - 1 - y);
      const base = (y - e0) * w;
      for (let x = 0; x < w; x++) {
        let m1 = 0, m2 = 0, s11 = 0, s22 = 0, s12 = 0;
        for (let d = lo; d <= hi; d++) {
          const k = K[d < 0 ? -d : d]!;
          const i = base + d * w + x;
          m1 += k * ha[i]!;
          m2 += k * hb[i]!;
          s11 += k * h11[i]!;
          s22 += k * h22[i]!;
          s12 += k * h12[i]!;
        }
        const md = m1 - m2;
        const numM = 1 - md * md;
        const numS = 2 * (s12 - m1 * m2) + C2;
        const denS = s11 - m1 * m1 + (s22 - m2 * m2) + C2;
        let e = 1 - (numM * numS) / denS;
        if (e < 0) e = 0;
        const e2 = e * e;
        ssim1 += e;
        ssim4 += e2 * e2;
        const i = base + x;
        const d1 = (1 + Math.abs(b[i]! - m2)) / (1 + Math.abs(a[i]! - m1)) - 1;
        if (d1 > 0) {
          const q = d1 * d1;
          ring1 += d1;
          ring4 += q * q;
        } else {
          const q = d1 * d1;
          blur1 -= d1;
          blur4 += q * q;
        }
      }
    }
    s[c * 6] += ssim1;
    s[c * 6 + 1] += ssim4;
    s[c * 6 + 2] += ring1;
    s[c * 6 + 3] += ring4;
    s[c * 6 + 4] += blur1;
    s[c * 6 + 5] += blur4;
  }
  sums.pixels += (y1 - y0) * w;
}

/** Bands [y0, y1) to evaluate at a scale: all rows, or `count` evenly spaced bands. */
export function bandsOf(h: number, w: number, budget: number): [number, number][] {
  const out: [number, number][] = [];
  if (w * h <= budget) {
    for (let y = 0; y < h; y += BAND_ROWS) out.push([y, Math.min(h, y + BAND_ROWS)]);
    return out;
  }
  const count = Math.max(1, Math.round(budget / (w * BAND_ROWS)));
  if (count * BAND_ROWS >= h) return bandsOf(h, w, Infinity);
  for (let i = 0; i < count; i++) {
    const y0 = Math.max(0, Math.min(h - BAND_ROWS, Math.round(((i + 0.5) * h) / count - BAND_ROWS / 2)));
    out.push([y0, Math.min(h, y0 + BAND_ROWS)]);
  }
  return out;
}

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
  let i = 0;
  for (let c = 0; c < 3; c++) {
    for (const sc of scales) {
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

function scoreOn(ref: Rgba, dist: Rgba, background: number | null, budget: number): number {
  const pa = new Pyramid(ref, background);
  const pb = new Pyramid(dist, background);
  const band = new Band((BAND_ROWS + 2 * R) * ref.width);
  const scales: ScaleSums[] = [];
  for (let level = 0; level < SCALES; level++) {
    const w = sizeAt(ref.width, level);
    const h = sizeAt(ref.height, level);
    if (w < 8 || h < 8) break;
    const sums = new ScaleSums();
    for (const [y0, y1] of bandsOf(h, w, budget)) scoreBand(pa, pb, level, w, h, y0, y1, band, sums);
    scales.push(sums);
  }
  return finalScore(scales);
}

/** SSIMULACRA2 score of `dist` against the reference `ref` (same size, at least 8x8). */
export function ssimulacra2(ref: Rgba, dist: Rgba, opts: Ssimulacra2Options = {}): number {
  const { width, height } = ref;
  if (dist.width !== width || dist.height !== height) throw new RangeError(`ssimulacra2: sizes differ (${width}x${height} vs ${dist.width}x${dist.height})`);
  if (width < 8 || height < 8) throw new RangeError('ssimulacra2: images must be at least 8x8');
  if (ref.data.length !== width * height * 4 || dist.data.length !== ref.data.length) throw new RangeError('ssimulacra2: RGBA buffers of width*height*4 bytes expected');
  const budget = opts.budget ?? DEFAULT_BUDGET;
  if (!opts.alpha) return scoreOn(ref, dist, null, budget);
  // libjxl's tool: blend on dark and light grey, keep the worse (the bench harness does the same)
  return Math.min(scoreOn(ref, dist, 0.1 * 255, budget), scoreOn(ref, dist, 0.9 * 255, budget));
}

/** Bytes the scorer holds for an image (for the memory plan): kept scales plus band scratch. */
export function ssimulacra2MemoryBytes(width: number, height: number): number {
  return 2 * width * height + BAND_BYTES_PER_COLUMN * width;
}
