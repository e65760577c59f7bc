/*
 * SSIMULACRA2 2.0 (Jon Sneyers, Cloudinary; libjxl tools/ssimulacra2) for the pool threads, built
 * to wasm32-wasi by build.sh beside this file and loaded by workers/metrics/ssimulacra2-wasm.ts.
 * Written for this repository as a port of workers/metrics/ssimulacra2.ts (which explains the
 * metric and why the blur runs in single precision over whole rows and columns), vectorised with
 * wasm SIMD (128-bit: 4 floats or 2 doubles).
 *
 * The scores are sensitive to rounding well below a float's precision (the recursive blur's
 * poles sit on the unit circle, so rounding differences accumulate in the variances): measured,
 * rounding the blur's products to float before adding moved scores by 3 points, float cube roots
 * by 0.35, float sums in the downsampling by 0.15. So every step rounds where the TypeScript
 * rounds: where it rounds a double expression to float32 (Math.fround, or a store into a
 * Float32Array), this computes that expression in double (f64x2 halves) and rounds it once. Only
 * the error maps (plain float expressions summed per row) run in float, and the cube root is a
 * Halley iteration to double precision instead of libm's cbrt: scores stay within 1e-6 of the
 * TypeScript's. Compiled with -ffp-contract=off so clang fuses nothing the TypeScript does not.
 *
 * Built twice (build.sh): ssimulacra2.wasm as above, and with S2_RELAXED_MADD defined,
 * ssimulacra2-fma.wasm, whose blurs take each fused step as one f32x4.relaxed_madd (4 lanes, one
 * rounding) instead of two f64x2 halves. Relaxed SIMD lets an engine compute relaxed_madd with or
 * without the fusion; where it fuses (s2_fused_madd says so), the two builds give the same scores
 * (bit for bit on 128 corpus pairs), and ssimulacra2-wasm.ts loads this one.
 *
 * A search scores several candidates against one source: s2_prepare keeps the source's side
 * (XYB, blurred mean and variance per scale, 9 float planes: about 48 B per source pixel) and
 * s2_score_prepared streams only the candidate; s2_prepare_scoring prepares while scoring the
 * first candidate, in one pass. s2_score streams both and keeps nothing.
 *
 * Memory: rows stream through (the vertical blur keeps its state per column, the horizontal one
 * runs 4 rows at once, up to 16 in the exact build, one per SIMD lane); scale 0 is read from the
 * 8-bit image, and each later scale is made whole by the pass over the scale before it (at most
 * scales 1 and 2 at once: 3.75 B per source pixel and image), plus PASS_ROWS rows per scale.
 * ssimulacra2-wasm.ts states it for the memory plan.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wasm_simd128.h>

#ifdef S2_RELAXED_MADD
/* a * b + c. clang 14 knows this instruction by its prototype name and opcode (f32x4.fma,
   c + a * b, 0xfd 0xaf 0x01): build.sh rewrites each to the standard f32x4.relaxed_madd
   (0xfd 0x85 0x02), which takes its operands as a * b + c, hence the order here. */
typedef float s2_f32x4 __attribute__((vector_size(16)));
#define MADD(a, b, c) ((v128_t)__builtin_wasm_fma_f32x4((s2_f32x4)(a), (s2_f32x4)(b), (s2_f32x4)(c)))
#endif

/* f32x4 <-> two f64x2 halves */
#define LO(v) wasm_f64x2_promote_low_f32x4(v)
#define HI(v) wasm_f64x2_promote_low_f32x4(wasm_i64x2_shuffle(v, v, 1, 0))
#define JOIN(lo, hi) wasm_i64x2_shuffle(lo, hi, 0, 2) /* the low floats of two demoted halves */
#define EXPORT(name) __attribute__((export_name(#name)))

/* BATCH rows enter the blurs together (their horizontal blurs fill the SIMD lanes); the rings
   hold the 2N + 1 rows the vertical blur reads plus the rest of a batch. */
enum { SCALES = 6, LOAD_ROWS = 16, NPOLE = 5, BATCH = 4, RING = 2 * NPOLE + 1 + BATCH - 1 };
static const double C2 = 0.0009;

/* Charalampidis' recursive Gaussian, sigma 1.5: computed at start-up as ssimulacra2.ts does. */
static float NK[3], DK[3], NEG_DK[3];
static float LINEAR[256];

static double det3(double m[3][3]) {
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
         m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

static int ready;
static void init(void) {
  if (ready) return;
  ready = 1;
  const double sigma = 1.5, pi = 3.14159265358979323846;
  const double n = NPOLE; /* round(3.2795 sigma + 0.2546) */
  double w[3], p[3], r[3], rho[3];
  for (int k = 0; k < 3; k++) w[k] = (2 * k + 1) * pi / (2 * n);
  p[0] = 1 / tan(0.5 * w[0]);
  p[1] = -1 / tan(0.5 * w[1]);
  p[2] = 1 / tan(0.5 * w[2]);
  r[0] = p[0] * p[0] / sin(w[0]);
  r[1] = -p[1] * p[1] / sin(w[1]);
  r[2] = p[2] * p[2] / sin(w[2]);
  for (int k = 0; k < 3; k++) rho[k] = exp(-0.5 * sigma * sigma * w[k] * w[k]) / n;
  double d13 = p[0] * r[1] - r[0] * p[1];
  double d35 = p[1] * r[2] - r[1] * p[2];
  double d51 = p[2] * r[0] - r[2] * p[0];
  double z15 = d35 / d13, z35 = d51 / d13;
  double a[3][3] = {{p[0], p[1], p[2]}, {r[0], r[1], r[2]}, {z15, z35, 1}};
  double g[3] = {1, n * n - sigma * sigma, z15 * rho[0] + z35 * rho[1] + rho[2]};
  double det = det3(a);
  for (int col = 0; col < 3; col++) {
    double m[3][3];
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) m[i][j] = j == col ? g[i] : a[i][j];
    double beta = det3(m) / det;
    double n2 = -beta * cos(w[col] * (n + 1));
    double d1 = -2 * cos(w[col]);
    NK[col] = (float)n2;
    DK[col] = (float)d1;
    NEG_DK[col] = (float)-d1;
  }
  for (int i = 0; i < 256; i++) {
    double c = i / 255.0;
    LINEAR[i] = (float)(c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4));
  }
}

/* --- colour ------------------------------------------------------------------------------------- */

static const double M00 = 0.3, M01 = 0.622, M02 = 0.078;
static const double M10 = 0.23, M11 = 0.692, M12 = 0.078;
static const double M20 = 0.24342268924547819, M21 = 0.20476744424496821, M22 = 1 - M20 - M21;
static const double BIAS = 0.0037930732552754493;

/* One Halley step for y ~ cbrt(x), error e -> about e^3. */
#define HALLEY(T, y, x) \
  do { \
    v128_t y3_ = wasm_##T##_mul(wasm_##T##_mul(y, y), y); \
    y = wasm_##T##_div(wasm_##T##_mul(y, wasm_##T##_add(y3_, wasm_##T##_add(x, x))), wasm_##T##_add(wasm_##T##_add(y3_, y3_), x)); \
  } while (0)

/*
 * Cube roots of 4 doubles x in [BIAS, 1.01] (opsin mixes of linear RGB plus the bias), in two
 * f64x2 halves: a float bit-trick start (about 4 % off), a Halley step in float (cubic
 * convergence: 1e-4) and one in double (1e-12: the float results round as from libm's cbrt).
 * cbrt itself does not vectorise; float-precision roots moved scores by 0.35.
 */
static inline void cbrt4(v128_t *lo, v128_t *hi) {
  v128_t xf = wasm_i64x2_shuffle(wasm_f32x4_demote_f64x2_zero(*lo), wasm_f32x4_demote_f64x2_zero(*hi), 0, 2);
  /* bits / 3 + magic, the division in float on bits >> 8 (exact below 2^24), rounded to an
     integer by adding 2^23: that float holds the integer in its low 23 bits, and the shift by 8
     drops its exponent (no trunc_sat, which V8 guards against NaN and overflow in several
     instructions) */
  v128_t third = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_u32x4_shr(xf, 8)), wasm_f32x4_splat(1.0f / 3)), wasm_f32x4_splat(0x1p23f));
  v128_t y = wasm_i32x4_add(wasm_i32x4_shl(third, 8), wasm_i32x4_splat(709921077));
  HALLEY(f32x4, y, xf);
  v128_t ylo = wasm_f64x2_promote_low_f32x4(y), yhi = wasm_f64x2_promote_low_f32x4(wasm_i64x2_shuffle(y, y, 1, 0));
  HALLEY(f64x2, ylo, *lo);
  HALLEY(f64x2, yhi, *hi);
  *lo = ylo;
  *hi = yhi;
}

/* Pixels converted per block: their opsin mixes in double (6 KiB) stay in the L1 cache. */
enum { XYB_BLOCK = 256 };

/* Linear RGB planes to the positive XYB the metric compares, in place, in double as the
   TypeScript does; n rounded up to 4 (the planes are padded). Three loops per block (mixes, cube
   roots, XYB) rather than one: each keeps its constants and temporaries in registers, and the cube
   roots' long dependency chains overlap across iterations (about 1.2x faster than one loop doing
   all, which spilled). */
static void to_positive_xyb(float *r, float *g, float *b, size_t n) {
  const v128_t half = wasm_f64x2_splat(0.5), zero = wasm_f64x2_splat(0), bias = wasm_f64x2_splat(BIAS), cb = wasm_f64x2_splat(cbrt(BIAS));
  v128_t lms[3][XYB_BLOCK / 2]; /* per mix, two doubles per vector */
#define MIX(a, b_, c) wasm_f64x2_pmax(zero, wasm_f64x2_add(wasm_f64x2_add(wasm_f64x2_add(wasm_f64x2_mul(wasm_f64x2_splat(a), R[k]), wasm_f64x2_mul(wasm_f64x2_splat(b_), G[k])), wasm_f64x2_mul(wasm_f64x2_splat(c), B[k])), bias))
  for (size_t i0 = 0; i0 < n; i0 += XYB_BLOCK) {
    size_t len = n - i0 < XYB_BLOCK ? (n - i0 + 3) & ~(size_t)3 : XYB_BLOCK;
    for (size_t i = 0; i < len; i += 4) {
      v128_t r4 = wasm_v128_load(r + i0 + i), g4 = wasm_v128_load(g + i0 + i), b4 = wasm_v128_load(b + i0 + i);
      v128_t R[2] = {wasm_f64x2_promote_low_f32x4(r4), wasm_f64x2_promote_low_f32x4(wasm_i64x2_shuffle(r4, r4, 1, 0))};
      v128_t G[2] = {wasm_f64x2_promote_low_f32x4(g4), wasm_f64x2_promote_low_f32x4(wasm_i64x2_shuffle(g4, g4, 1, 0))};
      v128_t B[2] = {wasm_f64x2_promote_low_f32x4(b4), wasm_f64x2_promote_low_f32x4(wasm_i64x2_shuffle(b4, b4, 1, 0))};
      for (int k = 0; k < 2; k++) {
        lms[0][i / 2 + k] = MIX(M00, M01, M02);
        lms[1][i / 2 + k] = MIX(M10, M11, M12);
        lms[2][i / 2 + k] = MIX(M20, M21, M22);
      }
    }
    for (int c = 0; c < 3; c++)
      for (size_t j = 0; j < len / 2; j += 2) cbrt4(&lms[c][j], &lms[c][j + 1]); /* (len: a multiple of 4) */
    for (size_t i = 0; i < len; i += 4) {
      v128_t out[3][2];
      for (int k = 0; k < 2; k++) {
        v128_t L = wasm_f64x2_sub(lms[0][i / 2 + k], cb), M = wasm_f64x2_sub(lms[1][i / 2 + k], cb), S = wasm_f64x2_sub(lms[2][i / 2 + k], cb);
        v128_t y = wasm_f64x2_mul(half, wasm_f64x2_add(L, M));
        out[0][k] = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_add(wasm_f64x2_mul(half, wasm_f64x2_sub(L, M)), half));
        out[1][k] = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_add(y, wasm_f64x2_splat(0.05)));
        out[2][k] = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_add(wasm_f64x2_sub(S, y), wasm_f64x2_splat(1.1)));
      }
      wasm_v128_store(r + i0 + i, wasm_i64x2_shuffle(out[0][0], out[0][1], 0, 2));
      wasm_v128_store(g + i0 + i, wasm_i64x2_shuffle(out[1][0], out[1][1], 0, 2));
      wasm_v128_store(b + i0 + i, wasm_i64x2_shuffle(out[2][0], out[2][1], 0, 2));
    }
  }
#undef MIX
}

/* --- the pyramid of linear RGB, scale by scale ------------------------------------------------- */

static int size_at(int n, int level) {
  for (int l = 0; l < level; l++) n = (n + 1) >> 1;
  return n;
}

/* Rows are padded to a multiple of 4 floats so every row loop runs whole vectors. */
static int stride_of(int w) { return (w + 3) & ~3; }

/*
 * One image's linear RGB at the scale being scored: scale 0 straight from the 8-bit pixels, each
 * later scale whole, made by the pass over the scale before it as its rows went by (each pixel
 * converted and each scale downsampled once). Alive at once: this scale's planes and the next's.
 */
typedef struct {
  const uint8_t *data;
  int width, height, scales;
  int has_background;
  double background;
  int level;          /* the scale pyramid_rows hands out */
  float *rows[3];     /* that scale whole (width w, unpadded); level 0 reads data instead */
  float *next[3];     /* the next scale, filled while this one streams; NULL at the last */
} Pyramid;

static void bytes_rows(const Pyramid *p, int y0, int y1, float *out[3]) {
  const uint8_t *d = p->data;
  size_t end = (size_t)y1 * p->width * 4;
  float *r = out[0], *g = out[1], *b = out[2];
  size_t o = 0;
  if (!p->has_background) {
    for (size_t i = (size_t)y0 * p->width * 4; i < end; i += 4, o++) {
      r[o] = LINEAR[d[i]];
      g[o] = LINEAR[d[i + 1]];
      b[o] = LINEAR[d[i + 2]];
    }
  } else {
    double bg = p->background;
    for (size_t i = (size_t)y0 * p->width * 4; i < end; i += 4, o++) {
      double a = d[i + 3] / 255.0;
      /* Math.round: halves go up */
      r[o] = LINEAR[(int)floor(d[i] * a + bg * (1 - a) + 0.5)];
      g[o] = LINEAR[(int)floor(d[i + 1] * a + bg * (1 - a) + 0.5)];
      b[o] = LINEAR[(int)floor(d[i + 2] * a + bg * (1 - a) + 0.5)];
    }
  }
}

/* Rows [oy0, oy1) of the half-size plane `out` (width w) from the rows of `in` (width in_w,
   in_h rows in all) that start at row a0: each the mean of a 2x2 block, the last row and
   column repeated where the size is odd. */
static void downsample_rows(const float *in, int a0, int in_w, int in_h, float *out, int w, int oy0, int oy1) {
  int pairs = in_w / 2; /* columns made of two inputs; an odd last one repeats its input */
  for (int y = oy0; y < oy1; y++) {
    const float *top = in + (size_t)(2 * y - a0) * in_w;
    int yb = 2 * y + 1 < in_h - 1 ? 2 * y + 1 : in_h - 1;
    const float *bottom = in + (size_t)(yb - a0) * in_w;
    float *row = out + (size_t)y * w;
    /* in double, as the TypeScript: float sums moved scores by 0.15 */
    int x = 0;
    for (; x + 4 <= pairs; x += 4) {
      v128_t t0 = wasm_v128_load(top + 2 * x), t1 = wasm_v128_load(top + 2 * x + 4);
      v128_t b0 = wasm_v128_load(bottom + 2 * x), b1 = wasm_v128_load(bottom + 2 * x + 4);
      v128_t te = wasm_i32x4_shuffle(t0, t1, 0, 2, 4, 6), to = wasm_i32x4_shuffle(t0, t1, 1, 3, 5, 7);
      v128_t be = wasm_i32x4_shuffle(b0, b1, 0, 2, 4, 6), bo = wasm_i32x4_shuffle(b0, b1, 1, 3, 5, 7);
      const v128_t quarter = wasm_f64x2_splat(0.25);
      v128_t lo = wasm_f64x2_mul(wasm_f64x2_add(wasm_f64x2_add(wasm_f64x2_add(LO(te), LO(to)), LO(be)), LO(bo)), quarter);
      v128_t hi = wasm_f64x2_mul(wasm_f64x2_add(wasm_f64x2_add(wasm_f64x2_add(HI(te), HI(to)), HI(be)), HI(bo)), quarter);
      wasm_v128_store(row + x, JOIN(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi)));
    }
    for (; x < pairs; x++) row[x] = (float)(((double)top[2 * x] + top[2 * x + 1] + bottom[2 * x] + bottom[2 * x + 1]) * 0.25);
    if (pairs < w) row[pairs] = (float)(((double)top[in_w - 1] + top[in_w - 1] + bottom[in_w - 1] + bottom[in_w - 1]) * 0.25);
  }
}

static void pyramid_init(Pyramid *p, const uint8_t *data, int width, int height, int scales, int has_background, double background) {
  memset(p, 0, sizeof *p);
  p->data = data;
  p->width = width;
  p->height = height;
  p->scales = scales;
  p->has_background = has_background;
  p->background = background;
  p->level = -1;
}

static void planes_free(float *planes[3]) {
  free(planes[0]);
  for (int c = 0; c < 3; c++) planes[c] = 0;
}

static void pyramid_free(Pyramid *p) {
  planes_free(p->rows);
  planes_free(p->next);
}

/* Moves on to scale `level` (the next one): what the last pass made becomes the rows, and the
   scale after it gets its planes. 0 when memory ran out. */
static int pyramid_enter(Pyramid *p, int level) {
  planes_free(p->rows);
  memcpy(p->rows, p->next, sizeof p->rows);
  for (int c = 0; c < 3; c++) p->next[c] = 0;
  p->level = level;
  if (level + 1 >= p->scales) return 1;
  size_t n = (size_t)size_at(p->width, level + 1) * size_at(p->height, level + 1);
  float *block = malloc(3 * n * sizeof(float));
  if (!block) return 0;
  for (int c = 0; c < 3; c++) p->next[c] = block + c * n;
  return 1;
}

/* Rows [y0, y1) of the current scale into out (planar, the scale's width, unpadded), and, when
   y0 is even, the rows of the next scale they make (the passes load even-aligned chunks). */
static void pyramid_rows(Pyramid *p, int y0, int y1, float *out[3]) {
  int w = size_at(p->width, p->level), h = size_at(p->height, p->level);
  if (p->level == 0) {
    bytes_rows(p, y0, y1, out);
  } else {
    for (int c = 0; c < 3; c++) memcpy(out[c], p->rows[c] + (size_t)y0 * w, (size_t)(y1 - y0) * w * sizeof(float));
  }
  if (!p->next[0]) return;
  int nw = size_at(p->width, p->level + 1);
  for (int c = 0; c < 3; c++) downsample_rows(out[c], y0, w, h, p->next[c], nw, y0 / 2, (y1 + 1) / 2);
}

/* --- the prepared source ------------------------------------------------------------------------ */

/* What a candidate is compared with, per scale and channel: the source's XYB, its blurred mean
   mu1 and its blurred variance sigma11 - mu1^2 (padded rows). Made once per search. */
typedef struct {
  int w, h;
  float *block, *a[3], *mu[3], *var[3];
} RefLevel;

typedef struct {
  int width, height, scales, has_background;
  double background;
  RefLevel level[SCALES];
} Prepared;

static void prepared_free(Prepared *p) {
  if (!p) return;
  for (int l = 0; l < SCALES; l++) free(p->level[l].block);
  free(p);
}

/* --- the blurs ---------------------------------------------------------------------------------- */

/*
 * The blurs must round exactly where the TypeScript does: each pole's update is a fused
 * multiply-add there (a double product and sum rounded once to float, as libjxl and calc-s2-rust
 * compute it with FMA), and the filter's poles sit on the unit circle, so rounding the product
 * to float first accumulates into the variances and moved scores by 3 points. Wasm SIMD has no
 * float FMA: those steps run in f64x2 halves, the state kept in both forms, except in the
 * S2_RELAXED_MADD build, where one relaxed_madd does each.
 */

enum { PAD_LEFT = 2 * NPOLE, PAD_RIGHT = NPOLE, MAX_GROUPS = 4 };

/* The 4x4 transpose between four rows and four interleaved vectors. */
static inline void transpose4(v128_t r0, v128_t r1, v128_t r2, v128_t r3, v128_t out[4]) {
  v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
  v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
  out[0] = wasm_i64x2_shuffle(t0, t1, 0, 2);
  out[1] = wasm_i64x2_shuffle(t0, t1, 1, 3);
  out[2] = wasm_i64x2_shuffle(t2, t3, 0, 2);
  out[3] = wasm_i64x2_shuffle(t2, t3, 1, 3);
}

/*
 * The horizontal recursive blur of 4 * K rows at once, one per lane: each four rows are
 * interleaved (transposed block by block, zero beyond both ends as the filter wants), run through
 * the recursion as vectors (K independent ones per step, so their latencies overlap), and written
 * back. in: K * (PAD_LEFT + stride + PAD_RIGHT) vectors, out: K * stride. Rows have `stride`
 * floats (w rounded up to 4).
 */
static inline __attribute__((always_inline)) void blur_rows(const float *const *src, float *const *dst, int w, v128_t *in, v128_t *out, const int K) {
  const int stride = stride_of(w);
  const v128_t zero = wasm_f32x4_splat(0);
  for (int i = 0; i < PAD_LEFT * K; i++) in[i] = zero;
  for (int g = 0; g < K; g++) {
    const float *const *s = src + 4 * g;
    for (int x = 0; x < stride; x += 4) {
      v128_t t[4];
      transpose4(wasm_v128_load(s[0] + x), wasm_v128_load(s[1] + x), wasm_v128_load(s[2] + x), wasm_v128_load(s[3] + x), t);
      for (int i = 0; i < 4; i++) in[(PAD_LEFT + x + i) * K + g] = t[i];
    }
  }
  for (int i = (PAD_LEFT + w) * K; i < (PAD_LEFT + stride + PAD_RIGHT) * K; i++) in[i] = zero;
  const v128_t n1 = wasm_f32x4_splat(NK[0]), n3 = wasm_f32x4_splat(NK[1]), n5 = wasm_f32x4_splat(NK[2]);
#ifdef S2_RELAXED_MADD
  const v128_t f1 = wasm_f32x4_splat(NEG_DK[0]), f3 = wasm_f32x4_splat(NEG_DK[1]);
  /* per pole: o[n-1] (p), o[n-2] (q) */
  v128_t p1[MAX_GROUPS], p3[MAX_GROUPS], p5[MAX_GROUPS], q1[MAX_GROUPS], q3[MAX_GROUPS], q5[MAX_GROUPS];
  for (int g = 0; g < K; g++) p1[g] = p3[g] = p5[g] = q1[g] = q3[g] = q5[g] = zero;
#else
  const v128_t e1 = wasm_f64x2_splat(NEG_DK[0]), e3 = wasm_f64x2_splat(NEG_DK[1]);
  /* per pole: o[n-1] as floats (p) and as two double halves (pl, ph), o[n-2] (q) */
  v128_t p1[MAX_GROUPS], p3[MAX_GROUPS], p5[MAX_GROUPS], q1[MAX_GROUPS], q3[MAX_GROUPS], q5[MAX_GROUPS];
  v128_t pl1[MAX_GROUPS], pl3[MAX_GROUPS], ph1[MAX_GROUPS], ph3[MAX_GROUPS];
  for (int g = 0; g < K; g++) {
    p1[g] = p3[g] = p5[g] = q1[g] = q3[g] = q5[g] = zero;
    pl1[g] = pl3[g] = ph1[g] = ph3[g] = zero;
  }
#endif
  /* o[n] = n2 (x[n-N-1] + x[n+N-1]) - o[n-2] - d1 o[n-1], from n = 1-N (the first with input) */
  const v128_t *left = in + (PAD_LEFT - NPOLE - 1) * K, *right = in + (PAD_LEFT + NPOLE - 1) * K;
#ifdef S2_RELAXED_MADD
#define POLE(k)                                                                                              \
  do {                                                                                                       \
    v128_t t = wasm_f32x4_sub(wasm_f32x4_mul(sum, n##k), q##k[g]);                                           \
    q##k[g] = p##k[g];                                                                                       \
    p##k[g] = MADD(f##k, p##k[g], t);                                                                        \
  } while (0)
#else
#define POLE(k)                                                                                              \
  do {                                                                                                       \
    v128_t t = wasm_f32x4_sub(wasm_f32x4_mul(sum, n##k), q##k[g]);                                           \
    v128_t lo = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_add(wasm_f64x2_mul(e##k, pl##k[g]), LO(t)));         \
    v128_t hi = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_add(wasm_f64x2_mul(e##k, ph##k[g]), HI(t)));         \
    q##k[g] = p##k[g];                                                                                       \
    p##k[g] = JOIN(lo, hi);                                                                                  \
    pl##k[g] = LO(lo);                                                                                       \
    ph##k[g] = LO(hi);                                                                                       \
  } while (0)
#endif
  for (int n = -NPOLE + 1; n < w; n++) {
    for (int g = 0; g < K; g++) {
      v128_t sum = wasm_f32x4_add(left[n * K + g], right[n * K + g]);
      POLE(1);
      POLE(3);
      /* pole 5: d1 = -2 cos(pi / 2) is 1.2e-16 as a float, so d1 o[n-1] added in double to a float
         leaves it as it is (the TypeScript's and calc-s2-rust's rounding): float steps only */
      v128_t t5 = wasm_f32x4_sub(wasm_f32x4_mul(sum, n5), q5[g]);
      q5[g] = p5[g];
      p5[g] = t5;
      if (n >= 0) out[n * K + g] = wasm_f32x4_add(wasm_f32x4_add(p1[g], p3[g]), p5[g]);
    }
  }
#undef POLE
  for (int i = w * K; i < stride * K; i++) out[i] = zero;
  for (int g = 0; g < K; g++) {
    float *const *d = dst + 4 * g;
    for (int x = 0; x < stride; x += 4) {
      v128_t t[4];
      transpose4(out[x * K + g], out[(x + 1) * K + g], out[(x + 2) * K + g], out[(x + 3) * K + g], t);
      for (int i = 0; i < 4; i++) wasm_v128_store(d[i] + x, t[i]);
    }
  }
}

/* Row groups blurred at once. In the relaxed-madd build one group's pole state and constants fit
   x86-64's 16 vector registers (measured per score on x86-64 with FMA: 2 groups 2-9 % slower, 4
   spill and make a first score a quarter slower); the exact build's longer dependency chains (double halves) gain from
   4 more than the spills cost. */
#ifdef S2_RELAXED_MADD
enum { GROUPS = 1 };
#else
enum { GROUPS = MAX_GROUPS };
#endif

/* jobs rows (a multiple of 4) blurred horizontally, up to GROUPS x 4 at a time, in calls of
   about equal size. */
static void blur_jobs(const float **src, float **dst, int jobs, int w, v128_t *in, v128_t *out) {
  int calls = (jobs / 4 + GROUPS - 1) / GROUPS;
  while (jobs > 0) {
    int groups = (jobs / 4 + calls - 1) / calls;
    calls--;
    switch (groups) {
      case 1: blur_rows(src, dst, w, in, out, 1); break;
      case 2: blur_rows(src, dst, w, in, out, 2); break;
      case 3: blur_rows(src, dst, w, in, out, 3); break;
      default: blur_rows(src, dst, w, in, out, 4); break;
    }
    src += 4 * groups;
    dst += 4 * groups;
    jobs -= 4 * groups;
  }
}

/* The vertical recursive blur of one quantity, state per column (floats, poles 1, 3, 5 in three
   rows): reads o[n-1] from `last`, o[n-2] from `older` and overwrites `older` with o[n] (the
   caller swaps the two); out (or NULL) gets the blurred row.
   o = sum n2 - (o[n-1] d1 + o[n-2]), each side rounded to float as the TypeScript, so each in
   double (f64x2 halves). The state stays in float: a third of the memory traffic of double. */
static void vertical_step(const float *restrict last, float *restrict older, const float *restrict top, const float *restrict bottom, int stride,
                          float *restrict out) {
#ifdef S2_RELAXED_MADD
  const v128_t n1 = wasm_f32x4_splat(NK[0]), n3 = wasm_f32x4_splat(NK[1]), n5 = wasm_f32x4_splat(NK[2]);
  const v128_t d1 = wasm_f32x4_splat(DK[0]), d3 = wasm_f32x4_splat(DK[1]);
#define FUSED_ADD(a, b, c) MADD(a, b, c)
#define FUSED_SUB(a, b, c) MADD(a, b, wasm_f32x4_neg(c))
#else
  const v128_t n1 = wasm_f64x2_splat(NK[0]), n3 = wasm_f64x2_splat(NK[1]), n5 = wasm_f64x2_splat(NK[2]);
  const v128_t d1 = wasm_f64x2_splat(DK[0]), d3 = wasm_f64x2_splat(DK[1]);
#define FUSED(a, b, op, c) wasm_f32x4_demote_f64x2_zero(wasm_f64x2_##op(wasm_f64x2_mul(a, b), c))
#define FUSED_ADD(a, b, c) JOIN(FUSED(LO(a), b, add, LO(c)), FUSED(HI(a), b, add, HI(c)))
#define FUSED_SUB(a, b, c) JOIN(FUSED(a##lo, b, sub, LO(c)), FUSED(a##hi, b, sub, HI(c)))
#endif
#define POLE(k, row)                                                                                                   \
  do {                                                                                                                 \
    size_t at = (size_t)(row) * stride + x;                                                                            \
    v128_t L = wasm_v128_load(last + at), R = wasm_v128_load(older + at);                                              \
    v128_t X = FUSED_ADD(L, d##k, R);                                                                                  \
    o##k = FUSED_SUB(s, n##k, X);                                                                                      \
    wasm_v128_store(older + at, o##k);                                                                                 \
  } while (0)
  for (int x = 0; x < stride; x += 4) {
    v128_t s = wasm_f32x4_add(wasm_v128_load(top + x), wasm_v128_load(bottom + x));
#ifndef S2_RELAXED_MADD
    v128_t slo = LO(s), shi = HI(s);
#endif
    v128_t o1, o3, o5;
    POLE(1, 0);
    POLE(3, 1);
    /* pole 5: o[n-1] d1 + o[n-2] rounds to o[n-2] (d1 is 1.2e-16), so only the fused step is left */
    v128_t R = wasm_v128_load(older + (size_t)2 * stride + x);
    o5 = FUSED_SUB(s, n5, R);
    wasm_v128_store(older + (size_t)2 * stride + x, o5);
    if (out) wasm_v128_store(out + x, wasm_f32x4_add(wasm_f32x4_add(o1, o3), o5));
  }
#undef POLE
#undef FUSED
#undef FUSED_ADD
#undef FUSED_SUB
}

static void multiply(const float *a, const float *b, float *out, int stride) {
  for (int x = 0; x < stride; x += 4) wasm_v128_store(out + x, wasm_f32x4_mul(wasm_v128_load(a + x), wasm_v128_load(b + x)));
}

static double lanes_sum(v128_t v) {
  return ((double)wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) + ((double)wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

typedef struct {
  v128_t ssim1, ssim4, ring1, ring4, blur1, blur4;
} ErrorSums;

/* The error maps at x..x+3; `valid` (when masked) clears the lanes past the row's end. */
static inline __attribute__((always_inline)) void error_step(ErrorSums *t, const float *a, const float *b, const float *m1, const float *var1, const float *m2,
                                                             const float *s22, const float *s12, int x, const int masked, v128_t valid) {
  const v128_t zero = wasm_f32x4_splat(0), one = wasm_f32x4_splat(1), c2 = wasm_f32x4_splat((float)C2), two = wasm_f32x4_splat(2);
  v128_t u1 = wasm_v128_load(m1 + x), u2 = wasm_v128_load(m2 + x);
  v128_t md = wasm_f32x4_sub(u1, u2);
  v128_t num_m = wasm_f32x4_sub(one, wasm_f32x4_mul(md, md));
  v128_t num_s = wasm_f32x4_add(wasm_f32x4_mul(two, wasm_f32x4_sub(wasm_v128_load(s12 + x), wasm_f32x4_mul(u1, u2))), c2);
  v128_t den_s = wasm_f32x4_add(wasm_f32x4_add(wasm_v128_load(var1 + x), wasm_f32x4_sub(wasm_v128_load(s22 + x), wasm_f32x4_mul(u2, u2))), c2);
  v128_t e = wasm_f32x4_pmax(zero, wasm_f32x4_sub(one, wasm_f32x4_div(wasm_f32x4_mul(num_m, num_s), den_s)));
  if (masked) e = wasm_v128_and(e, valid);
  v128_t e2 = wasm_f32x4_mul(e, e);
  t->ssim1 = wasm_f32x4_add(t->ssim1, e);
  t->ssim4 = wasm_f32x4_add(t->ssim4, wasm_f32x4_mul(e2, e2));
  /* (1 + |b - mu2|) / (1 + |a - mu1|) - 1, written so float keeps its precision */
  v128_t da = wasm_f32x4_abs(wasm_f32x4_sub(wasm_v128_load(a + x), u1));
  v128_t db = wasm_f32x4_abs(wasm_f32x4_sub(wasm_v128_load(b + x), u2));
  v128_t d1 = wasm_f32x4_div(wasm_f32x4_sub(db, da), wasm_f32x4_add(one, da));
  if (masked) d1 = wasm_v128_and(d1, valid);
  v128_t q2 = wasm_f32x4_mul(d1, d1), q4 = wasm_f32x4_mul(q2, q2);
  v128_t ring = wasm_f32x4_gt(d1, zero);
  t->ring1 = wasm_f32x4_add(t->ring1, wasm_v128_and(d1, ring));
  t->ring4 = wasm_f32x4_add(t->ring4, wasm_v128_and(q4, ring));
  t->blur1 = wasm_f32x4_sub(t->blur1, wasm_v128_andnot(d1, ring));
  t->blur4 = wasm_f32x4_add(t->blur4, wasm_v128_andnot(q4, ring));
}

/* One row of the error maps of one channel into s[0..5]: SSIM error d, d^4; ringing, ^4; blurring,
   ^4. Whole vectors first, then the last one masked (not a mask in every step). */
static void error_row(const float *a, const float *b, const float *m1, const float *var1, const float *m2, const float *s22, const float *s12, int w,
                      double s[6]) {
  const v128_t zero = wasm_f32x4_splat(0);
  ErrorSums t = {zero, zero, zero, zero, zero, zero};
  int x = 0;
  for (; x + 4 <= w; x += 4) error_step(&t, a, b, m1, var1, m2, s22, s12, x, 0, zero);
  if (x < w) error_step(&t, a, b, m1, var1, m2, s22, s12, x, 1, wasm_i32x4_lt(wasm_i32x4_make(x, x + 1, x + 2, x + 3), wasm_i32x4_splat(w)));
  s[0] += lanes_sum(t.ssim1);
  s[1] += lanes_sum(t.ssim4);
  s[2] += lanes_sum(t.ring1);
  s[3] += lanes_sum(t.ring4);
  s[4] += lanes_sum(t.blur1);
  s[5] += lanes_sum(t.blur4);
}

/* --- one scale ---------------------------------------------------------------------------------- */

/* Quantities blurred per channel: the source a, the candidate b, a^2, b^2, ab. */
enum { QA, QB, QAA, QBB, QAB, QUANTITIES };
enum { PASS_ROWS = 6 * RING + 15 * RING + 90 + 5 + 9 * BATCH + 2 + 6 * LOAD_ROWS + 8 * MAX_GROUPS };

/*
 * One pass over one scale, rows streaming through the two recursive blurs (the vertical one keeps
 * its state per column, so a row leaves the pass 2N rows after it entered). Four uses:
 * - prepare (pb NULL): the source side only, kept whole in `keep`;
 * - prepare while scoring the first candidate (pa, pb and keep): both sides, the source's kept;
 * - score against a prepared source (pa NULL): the candidate side, the source's from `ref`;
 * - score both (pa, pb): everything streams (the one-call s2_score, which keeps nothing).
 * s (scoring only): the 18 error-map sums of the scale.
 */
static int level_pass(Pyramid *pa, Pyramid *pb, const RefLevel *ref, RefLevel *keep, int level, int w, int h, double s[18]) {
  const int S = stride_of(w);
  const int source_side = pa != 0, candidate_side = pb != 0;
  /* every buffer of this scale in one block (rows of S floats): XYB rings (2 x 3 x RING),
     horizontal-blur ring (15 x RING), vertical state (15 x 3 x 2), 5 outputs, 9 x BATCH
     products, one zero and one scratch row, two load chunks (2 x 3 x LOAD_ROWS, plus a vector),
     blur_rows' interleaved rows (2 x 4 x MAX_GROUPS, plus the padding): PASS_ROWS */
  size_t floats = PASS_ROWS * (size_t)S + 6 * 4 + 4 * MAX_GROUPS * (PAD_LEFT + PAD_RIGHT);
  if ((pa && !pyramid_enter(pa, level)) || (pb && !pyramid_enter(pb, level))) return 0;
  float *block = aligned_alloc(16, floats * sizeof(float));
  if (!block) return 0;
  memset(block, 0, floats * sizeof(float));
  float *next = block;
#define TAKE(n) (next += (size_t)(n), next - (size_t)(n))
  float *xa[RING][3], *xb[RING][3], *hor[RING][QUANTITIES * 3];
  for (int i = 0; i < RING; i++)
    for (int c = 0; c < 3; c++) {
      xa[i][c] = TAKE(S);
      xb[i][c] = TAKE(S);
    }
  for (int i = 0; i < RING; i++)
    for (int q = 0; q < QUANTITIES * 3; q++) hor[i][q] = TAKE(S);
  float *vprev[QUANTITIES * 3], *vprev2[QUANTITIES * 3];
  for (int q = 0; q < QUANTITIES * 3; q++) {
    vprev[q] = TAKE(3 * S);
    vprev2[q] = TAKE(3 * S);
  }
  float *mu[QUANTITIES], *prod[9 * BATCH];
  for (int q = 0; q < QUANTITIES; q++) mu[q] = TAKE(S);
  for (int q = 0; q < 9 * BATCH; q++) prod[q] = TAKE(S);
  float *zero = TAKE(S), *scratch = TAKE(S);
  float *chunk_a[3], *chunk_b[3];
  for (int c = 0; c < 3; c++) {
    chunk_a[c] = TAKE(LOAD_ROWS * S + 4);
    chunk_b[c] = TAKE(LOAD_ROWS * S + 4);
  }
  v128_t *interleaved = (v128_t *)TAKE(4 * MAX_GROUPS * (PAD_LEFT + S + PAD_RIGHT)), *blurred = (v128_t *)TAKE(4 * MAX_GROUPS * S);
#undef TAKE
  int chunk_start = -LOAD_ROWS;
  if (s) memset(s, 0, 18 * sizeof(double));

  for (int n = -NPOLE + 1; n < h; n++) {
    int top = n - NPOLE - 1, bottom = n + NPOLE - 1;
    if (bottom < h && bottom % BATCH == 0) {
      /* rows bottom .. bottom + BATCH - 1 enter: XYB, products, horizontal blurs */
      const float *src[16 * BATCH];
      float *dst[16 * BATCH];
      int jobs = 0;
      for (int y = bottom; y < bottom + BATCH && y < h; y++) {
        if (y >= chunk_start + LOAD_ROWS) {
          chunk_start = y;
          int end = y + LOAD_ROWS < h ? y + LOAD_ROWS : h;
          size_t count = (size_t)(end - y) * w;
          if (source_side) {
            pyramid_rows(pa, y, end, chunk_a);
            to_positive_xyb(chunk_a[0], chunk_a[1], chunk_a[2], count);
          }
          if (candidate_side) {
            pyramid_rows(pb, y, end, chunk_b);
            to_positive_xyb(chunk_b[0], chunk_b[1], chunk_b[2], count);
          }
        }
        int slot = y % RING;
        size_t off = (size_t)(y - chunk_start) * w;
        float **P = prod + 9 * (y - bottom);
        for (int c = 0; c < 3; c++) {
          float **H = hor[slot] + c * QUANTITIES;
          float *A = keep ? keep->a[c] + (size_t)y * S : ref ? ref->a[c] + (size_t)y * S : xa[slot][c];
          if (source_side) {
            memcpy(A, chunk_a[c] + off, w * sizeof(float));
            memset(A + w, 0, (S - w) * sizeof(float)); /* a kept plane is not cleared beforehand */
            multiply(A, A, P[3 * c], S);
            src[jobs] = A, dst[jobs++] = H[QA];
            src[jobs] = P[3 * c], dst[jobs++] = H[QAA];
          }
          if (candidate_side) {
            float *B = xb[slot][c];
            memcpy(B, chunk_b[c] + off, w * sizeof(float));
            multiply(B, B, P[3 * c + 1], S);
            multiply(A, B, P[3 * c + 2], S);
            src[jobs] = B, dst[jobs++] = H[QB];
            src[jobs] = P[3 * c + 1], dst[jobs++] = H[QBB];
            src[jobs] = P[3 * c + 2], dst[jobs++] = H[QAB];
          }
        }
      }
      while (jobs % 4) src[jobs] = zero, dst[jobs++] = scratch;
      blur_jobs(src, dst, jobs, w, interleaved, blurred);
    }
    for (int c = 0; c < 3; c++) {
      for (int q = 0; q < QUANTITIES; q++) {
        int source_q = q == QA || q == QAA;
        if (source_q ? !source_side : !candidate_side) continue;
        int k = c * QUANTITIES + q;
        float *out = n < 0 ? 0 : mu[q];
        if (keep && n >= 0 && q == QA) out = keep->mu[c] + (size_t)n * S;
        vertical_step(vprev[k], vprev2[k], top >= 0 ? hor[top % RING][k] : zero, bottom < h ? hor[bottom % RING][k] : zero, S, out);
        float *swap = vprev[k];
        vprev[k] = vprev2[k];
        vprev2[k] = swap;
      }
      if (n < 0) continue;
      if (keep) {
        /* sigma11 - mu1^2, as the SSIM term uses it */
        const float *m1 = keep->mu[c] + (size_t)n * S;
        float *v = keep->var[c] + (size_t)n * S;
        for (int x = 0; x < S; x += 4) {
          v128_t u = wasm_v128_load(m1 + x);
          wasm_v128_store(v + x, wasm_f32x4_sub(wasm_v128_load(mu[QAA] + x), wasm_f32x4_mul(u, u)));
        }
        if (!candidate_side) continue;
        ref = keep; /* the candidate's error maps read the source's side as kept */
      }
      const float *a, *m1, *var1;
      if (ref) {
        a = ref->a[c] + (size_t)n * S;
        m1 = ref->mu[c] + (size_t)n * S;
        var1 = ref->var[c] + (size_t)n * S;
      } else {
        a = xa[n % RING][c];
        m1 = mu[QA];
        for (int x = 0; x < S; x += 4) {
          v128_t u = wasm_v128_load(m1 + x);
          wasm_v128_store(scratch + x, wasm_f32x4_sub(wasm_v128_load(mu[QAA] + x), wasm_f32x4_mul(u, u)));
        }
        var1 = scratch;
      }
      error_row(a, xb[n % RING][c], m1, var1, mu[QB], mu[QBB], mu[QAB], w, s + c * 6);
    }
  }
  free(block);
  return 1;
}

/* SSIMULACRA2 2.0's weights (libjxl, October 2022), as calc-s2-rust carries them. */
static const double WEIGHTS[108] = {
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
};

static double score_from_sums(double sums[SCALES][18], const double pixels[SCALES], int scales) {
  double sum = 0;
  for (int c = 0; c < 3; c++) {
    for (int scale = 0; scale < scales; scale++) {
      int i = c * 36 + scale * 6;
      double one = 1 / pixels[scale];
      const double *v = sums[scale];
      for (int norm = 0; norm < 2; norm++) {
        for (int k = 0; k < 3; k++) {
          int at = c * 6 + 2 * k;
          double mean = norm == 0 ? one * v[at] : sqrt(sqrt(one * v[at + 1]));
          sum += WEIGHTS[i++] * mean;
        }
      }
    }
  }
  sum = sum * 17.829717797575952 - 1.634169143917183;
  return sum > 0 ? 100 - 10 * pow(sum, 0.5453261009510213) : 100;
}

static int scales_of(int width, int height) {
  int scales = 0;
  while (scales < SCALES && size_at(width, scales) >= 8 && size_at(height, scales) >= 8) scales++;
  return scales;
}

/* dist against the prepared source (prep) or, without one, against ref streamed alongside. */
static double score_on(const Prepared *prep, const uint8_t *ref, const uint8_t *dist, int width, int height, int has_background, double background) {
  Pyramid pa, pb;
  double result = NAN; /* out of memory */
  double sums[SCALES][18], pixels[SCALES];
  int scales = scales_of(width, height);
  memset(&pa, 0, sizeof pa);
  if (!prep) pyramid_init(&pa, ref, width, height, scales, has_background, background);
  pyramid_init(&pb, dist, width, height, scales, has_background, background);
  for (int level = 0; level < scales; level++) {
    int w = size_at(width, level), h = size_at(height, level);
    if (!level_pass(prep ? 0 : &pa, &pb, prep ? &prep->level[level] : 0, 0, level, w, h, sums[level])) goto done;
    pixels[level] = (double)w * h;
  }
  result = score_from_sums(sums, pixels, scales);
done:
  pyramid_free(&pb);
  pyramid_free(&pa);
  return result;
}

EXPORT(s2_malloc) void *s2_malloc(size_t n) { return malloc(n); }

#ifdef S2_RELAXED_MADD
/* 1 when this engine's relaxed_madd rounds once (then the scores are ssimulacra2.wasm's), 0 when
   it multiplies and adds (then the blurs would round twice and move the scores: do not use this
   build). (1 + 2^-12)^2 - (1 + 2^-11) is 2^-24 fused and 0 unfused. */
static volatile float probe_in[3] = {1.0f + 0x1p-12f, 1.0f + 0x1p-12f, -(1.0f + 0x1p-11f)};
EXPORT(s2_fused_madd) int s2_fused_madd(void) {
  v128_t r = MADD(wasm_f32x4_splat(probe_in[0]), wasm_f32x4_splat(probe_in[1]), wasm_f32x4_splat(probe_in[2]));
  return wasm_f32x4_extract_lane(r, 0) == 0x1p-24f;
}
#endif
EXPORT(s2_free) void s2_free(void *p) { free(p); }

/*
 * The score of dist against ref (both 8-bit RGBA, width x height, at least 8x8), keeping nothing.
 * background: negative ignores alpha, else the grey (0..255) alpha is composited on. NaN when
 * memory ran out (scores can be negative).
 */
EXPORT(s2_score) double s2_score(const uint8_t *ref, const uint8_t *dist, int width, int height, double background) {
  init();
  if (width < 8 || height < 8) return NAN;
  return score_on(0, ref, dist, width, height, background >= 0, background);
}

static Prepared *prepare_on(const uint8_t *ref, const uint8_t *dist, int width, int height, double background, double *score) {
  init();
  if (width < 8 || height < 8) return 0;
  Prepared *p = calloc(1, sizeof *p);
  if (!p) return 0;
  p->width = width;
  p->height = height;
  p->has_background = background >= 0;
  p->background = background;
  p->scales = scales_of(width, height);
  Pyramid pa, pb;
  double sums[SCALES][18], pixels[SCALES];
  memset(&pb, 0, sizeof pb);
  pyramid_init(&pa, ref, width, height, p->scales, p->has_background, background);
  if (dist) pyramid_init(&pb, dist, width, height, p->scales, p->has_background, background);
  for (int level = 0; level < p->scales; level++) {
    RefLevel *l = &p->level[level];
    l->w = size_at(width, level);
    l->h = size_at(height, level);
    size_t plane = (size_t)stride_of(l->w) * l->h;
    /* not cleared: the pass writes every row whole (the XYB rows' padding zeroed as they are copied) */
    l->block = aligned_alloc(16, 9 * plane * sizeof(float));
    if (!l->block) goto fail;
    for (int c = 0; c < 3; c++) {
      l->a[c] = l->block + c * plane;
      l->mu[c] = l->block + (3 + c) * plane;
      l->var[c] = l->block + (6 + c) * plane;
    }
    if (!level_pass(&pa, dist ? &pb : 0, 0, l, level, l->w, l->h, dist ? sums[level] : 0)) goto fail;
    pixels[level] = (double)l->w * l->h;
  }
  if (dist) *score = score_from_sums(sums, pixels, p->scales);
  pyramid_free(&pa);
  pyramid_free(&pb);
  return p;
fail:
  pyramid_free(&pa);
  pyramid_free(&pb);
  prepared_free(p);
  return 0;
}

/*
 * Prepares ref (8-bit RGBA, at least 8x8; background as s2_score's) for s2_score_prepared: its
 * XYB, blurred mean and variance at every scale (about 48 B per source pixel:
 * ssimulacra2PreparedBytes in ssimulacra2-wasm.ts). ref may be freed afterwards. 0 when memory ran out; free with s2_prepared_free.
 */
EXPORT(s2_prepare) Prepared *s2_prepare(const uint8_t *ref, int width, int height, double background) {
  return prepare_on(ref, 0, width, height, background, 0);
}

/*
 * s2_prepare and the score of dist against ref in one pass (what s2_prepare then
 * s2_score_prepared give, without the source's side computed twice): the first candidate of a
 * search. *score gets the score; both images stay alive during the call.
 */
EXPORT(s2_prepare_scoring) Prepared *s2_prepare_scoring(const uint8_t *ref, const uint8_t *dist, int width, int height, double background, double *score) {
  return prepare_on(ref, dist, width, height, background, score);
}

/* The score of dist (8-bit RGBA, the prepared source's size) against the prepared source. */
EXPORT(s2_score_prepared) double s2_score_prepared(const Prepared *prep, const uint8_t *dist) {
  return score_on(prep, 0, dist, prep->width, prep->height, prep->has_background, prep->background);
}

EXPORT(s2_prepared_free) void s2_prepared_free(Prepared *p) { prepared_free(p); }
