/*
 * SSIMULACRA2 2.0 (Jon Sneyers, Cloudinary; libjxl tools/ssimulacra2) for the pool threads, built
 * to wasm32-wasi by build.sh beside this file and loaded by workers/metrics/ssimulacra2-wasm.ts.
 * Written for this repository as a line-by-line port of workers/metrics/ssimulacra2.ts (which
 * explains the metric and why the blur runs in single precision over whole rows and columns);
 * the arithmetic is the same: where the TypeScript rounds a double expression to float32
 * (Math.fround, or a store into a Float32Array), this rounds the same double expression with a
 * (float) cast, so both give the same scores (wasm has no scalar fused multiply-add; the
 * double-then-float form is what the TypeScript computes too). Compiled with -ffp-contract=off so
 * clang does not fuse anything the TypeScript does not.
 *
 * Memory: as the TypeScript, rows stream through; scales 2..5 are kept whole (2 B per source
 * pixel for both images) and about S2_BYTES_PER_COLUMN per source column. ssimulacra2-wasm.ts
 * states it for the memory plan.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(#name)))

enum { SCALES = 6, CHUNK_ROWS = 32, LOAD_ROWS = 16, NPOLE = 5, RING = 2 * NPOLE + 1 };
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
static const double M20 = 0.24342268924547819, M21 = 0.20476744424496821;
static const double BIAS = 0.0037930732552754493;

static void to_positive_xyb(float *r, float *g, float *b, size_t n) {
  const double M22 = 1 - M20 - M21, cbrt_bias = cbrt(BIAS);
  for (size_t i = 0; i < n; i++) {
    double R0 = r[i], G0 = g[i], B0 = b[i];
    double l = cbrt(fmax(0, M00 * R0 + M01 * G0 + M02 * B0 + BIAS)) - cbrt_bias;
    double m = cbrt(fmax(0, M10 * R0 + M11 * G0 + M12 * B0 + BIAS)) - cbrt_bias;
    double s = cbrt(fmax(0, M20 * R0 + M21 * G0 + M22 * B0 + BIAS)) - cbrt_bias;
    double y = 0.5 * (l + m);
    r[i] = (float)(0.5 * (l - m) + 0.5);
    g[i] = (float)(y + 0.05);
    b[i] = (float)(s - y + 1.1);
  }
}

/* --- the pyramid, row by row -------------------------------------------------------------------- */

static int size_at(int n, int level) {
  for (int l = 0; l < level; l++) n = (n + 1) >> 1;
  return n;
}

typedef struct {
  const uint8_t *data;
  int width, height;
  int has_background;
  double background;
  float *kept[SCALES][3];
  int failed;
} Pyramid;

static void bytes_rows(Pyramid *p, int y0, int y1, float *out[3], size_t at) {
  const uint8_t *d = p->data;
  size_t end = (size_t)y1 * p->width * 4;
  float *r = out[0], *g = out[1], *b = out[2];
  size_t o = at;
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

/* Rows [y0, y1) of `level` into out (planar, the level's width) at offset `at`. */
static void pyramid_rows(Pyramid *p, int level, int y0, int y1, float *out[3], size_t at) {
  int w = size_at(p->width, level);
  if (p->kept[level][0]) {
    for (int c = 0; c < 3; c++) memcpy(out[c] + at, p->kept[level][c] + (size_t)y0 * w, (size_t)(y1 - y0) * w * sizeof(float));
    return;
  }
  if (level == 0) {
    bytes_rows(p, y0, y1, out, at);
    return;
  }
  int in_h = size_at(p->height, level - 1), in_w = size_at(p->width, level - 1);
  int a0 = 2 * y0, a1 = 2 * y1 < in_h ? 2 * y1 : in_h;
  size_t n = (size_t)(a1 - a0) * in_w;
  float *src[3];
  float *block = malloc(3 * n * sizeof(float));
  if (!block) {
    p->failed = 1;
    return;
  }
  for (int c = 0; c < 3; c++) src[c] = block + c * n;
  pyramid_rows(p, level - 1, a0, a1, src, 0);
  for (int c = 0; c < 3; c++) {
    const float *s = src[c];
    float *o = out[c];
    for (int y = y0; y < y1; y++) {
      size_t top = (size_t)(2 * y - a0) * in_w;
      int yb = 2 * y + 1 < in_h - 1 ? 2 * y + 1 : in_h - 1;
      size_t bottom = (size_t)(yb - a0) * in_w;
      size_t row = at + (size_t)(y - y0) * w;
      for (int x = 0; x < w; x++) {
        int xa = 2 * x, xb = xa + 1 < in_w - 1 ? xa + 1 : in_w - 1;
        o[row + x] = (float)(((double)s[top + xa] + s[top + xb] + s[bottom + xa] + s[bottom + xb]) * 0.25);
      }
    }
  }
  free(block);
}

static void pyramid_free(Pyramid *p) {
  for (int l = 0; l < SCALES; l++) {
    free(p->kept[l][0]);
    for (int c = 0; c < 3; c++) p->kept[l][c] = 0;
  }
}

static int pyramid_init(Pyramid *p, const uint8_t *data, int width, int height, int has_background, double background) {
  memset(p, 0, sizeof *p);
  p->data = data;
  p->width = width;
  p->height = height;
  p->has_background = has_background;
  p->background = background;
  for (int level = 2; level < SCALES; level++) {
    int w = size_at(width, level), h = size_at(height, level);
    if (w < 8 || h < 8) break;
    size_t n = (size_t)w * h;
    float *block = malloc(3 * n * sizeof(float));
    if (!block) return 0;
    float *planes[3] = {block, block + n, block + 2 * n};
    if (level == 2) {
      for (int y0 = 0; y0 < h; y0 += CHUNK_ROWS) pyramid_rows(p, 2, y0, y0 + CHUNK_ROWS < h ? y0 + CHUNK_ROWS : h, planes, (size_t)y0 * w);
    } else {
      pyramid_rows(p, level, 0, h, planes, 0);
    }
    if (p->failed) {
      free(block);
      return 0;
    }
    for (int c = 0; c < 3; c++) p->kept[level][c] = planes[c];
  }
  return 1;
}

/* --- the error maps ----------------------------------------------------------------------------- */

/* One row of the horizontal recursive blur, in single precision like the reference. */
static void blur_row(const float *src, int w, float *dst) {
  float p1 = 0, p3 = 0, p5 = 0, q1 = 0, q3 = 0, q5 = 0;
  const float n1 = NK[0], n3 = NK[1], n5 = NK[2];
  const double e1 = NEG_DK[0], e3 = NEG_DK[1], e5 = NEG_DK[2];
  for (int n = -NPOLE + 1; n < w; n++) {
    int l = n - NPOLE - 1, r = n + NPOLE - 1;
    float sum = (l >= 0 ? src[l] : 0.0f) + (r < w ? src[r] : 0.0f);
    float o1 = sum * n1, o3 = sum * n3, o5 = sum * n5;
    o1 = o1 - q1;
    o3 = o3 - q3;
    o5 = o5 - q5;
    q1 = p1;
    q3 = p3;
    q5 = p5;
    o1 = (float)(e1 * p1 + o1);
    o3 = (float)(e3 * p3 + o3);
    o5 = (float)(e5 * p5 + o5);
    p1 = o1;
    p3 = o3;
    p5 = o5;
    if (n >= 0) dst[n] = (o1 + o3) + o5;
  }
}

/* The vertical recursive blur of one quantity, state per column: advances one row. */
static void vertical_step(float *restrict prev, float *restrict prev2, const float *restrict top, const float *restrict bottom, int w,
                          float *restrict out) {
  float *p1 = prev, *p3 = prev + w, *p5 = prev + 2 * w;
  float *r1 = prev2, *r3 = prev2 + w, *r5 = prev2 + 2 * w;
  const float n1 = NK[0], n3 = NK[1], n5 = NK[2];
  const double d1 = DK[0], d3 = DK[1], d5 = DK[2];
  for (int x = 0; x < w; x++) {
    float sum = top[x] + bottom[x];
    float o1 = (float)((double)sum * n1 - (double)(float)(p1[x] * d1 + r1[x]));
    float o3 = (float)((double)sum * n3 - (double)(float)(p3[x] * d3 + r3[x]));
    float o5 = (float)((double)sum * n5 - (double)(float)(p5[x] * d5 + r5[x]));
    r1[x] = p1[x];
    r3[x] = p3[x];
    r5[x] = p5[x];
    p1[x] = o1;
    p3[x] = o3;
    p5[x] = o5;
    if (out) out[x] = (o1 + o3) + o5;
  }
}

/* Error-map sums of one scale: per channel SSIM error d, d^4; ringing, ^4; blurring, ^4. */
static int score_level(Pyramid *pa, Pyramid *pb, int level, int w, int h, double s[18]) {
  /* every buffer of this scale in one block: XYB rings (2 x 3 x RING), horizontal-blur ring
     (15 x RING), vertical state (3 x 5 x 3 x 2), 5 outputs, one product, one zero row, two load
     chunks (2 x 3 x LOAD_ROWS) */
  size_t rows = 6 * RING + 15 * RING + 90 + 5 + 1 + 1 + 6 * LOAD_ROWS;
  float *block = calloc(rows * (size_t)w, sizeof(float));
  if (!block) return 0;
  float *next = block;
#define TAKE(n) (next += (size_t)(n) * w, next - (size_t)(n) * w)
  float *xa[RING][3], *xb[RING][3], *hor[RING][15];
  for (int i = 0; i < RING; i++)
    for (int c = 0; c < 3; c++) {
      xa[i][c] = TAKE(1);
      xb[i][c] = TAKE(1);
    }
  for (int i = 0; i < RING; i++)
    for (int q = 0; q < 15; q++) hor[i][q] = TAKE(1);
  float *vprev[15], *vprev2[15];
  for (int q = 0; q < 15; q++) {
    vprev[q] = TAKE(3);
    vprev2[q] = TAKE(3);
  }
  float *mu[5];
  for (int q = 0; q < 5; q++) mu[q] = TAKE(1);
  float *prod = TAKE(1);
  float *zero = TAKE(1);
  float *chunk_a[3], *chunk_b[3];
  for (int c = 0; c < 3; c++) {
    chunk_a[c] = TAKE(LOAD_ROWS);
    chunk_b[c] = TAKE(LOAD_ROWS);
  }
#undef TAKE
  int chunk_start = -LOAD_ROWS;
  memset(s, 0, 18 * sizeof(double));

  for (int n = -NPOLE + 1; n < h; n++) {
    int top = n - NPOLE - 1, bottom = n + NPOLE - 1;
    if (bottom < h) {
      int y = bottom;
      if (y >= chunk_start + LOAD_ROWS) {
        chunk_start = y;
        int end = y + LOAD_ROWS < h ? y + LOAD_ROWS : h;
        pyramid_rows(pa, level, y, end, chunk_a, 0);
        pyramid_rows(pb, level, y, end, chunk_b, 0);
        if (pa->failed || pb->failed) {
          free(block);
          return 0;
        }
        to_positive_xyb(chunk_a[0], chunk_a[1], chunk_a[2], (size_t)(end - y) * w);
        to_positive_xyb(chunk_b[0], chunk_b[1], chunk_b[2], (size_t)(end - y) * w);
      }
      int slot = y % RING;
      size_t off = (size_t)(y - chunk_start) * w;
      for (int c = 0; c < 3; c++) {
        float *A = xa[slot][c], *B = xb[slot][c];
        memcpy(A, chunk_a[c] + off, w * sizeof(float));
        memcpy(B, chunk_b[c] + off, w * sizeof(float));
        float **H = hor[slot];
        blur_row(A, w, H[c * 5]);
        blur_row(B, w, H[c * 5 + 1]);
        for (int x = 0; x < w; x++) prod[x] = A[x] * A[x];
        blur_row(prod, w, H[c * 5 + 2]);
        for (int x = 0; x < w; x++) prod[x] = B[x] * B[x];
        blur_row(prod, w, H[c * 5 + 3]);
        for (int x = 0; x < w; x++) prod[x] = A[x] * B[x];
        blur_row(prod, w, H[c * 5 + 4]);
      }
    }
    for (int c = 0; c < 3; c++) {
      for (int q = 0; q < 5; q++) {
        vertical_step(vprev[c * 5 + q], vprev2[c * 5 + q], top >= 0 ? hor[top % RING][c * 5 + q] : zero,
                      bottom < h ? hor[bottom % RING][c * 5 + q] : zero, w, n >= 0 ? mu[q] : 0);
      }
      if (n < 0) continue;
      const float *m1 = mu[0], *m2 = mu[1], *s11 = mu[2], *s22 = mu[3], *s12 = mu[4];
      const float *a = xa[n % RING][c], *b = xb[n % RING][c];
      double ssim1 = 0, ssim4 = 0, ring1 = 0, ring4 = 0, blur1 = 0, blur4 = 0;
      const float c2 = (float)C2;
      for (int x = 0; x < w; x++) {
        float u1 = m1[x], u2 = m2[x];
        float md = u1 - u2;
        float num_m = (float)(1 - (double)md * md);
        float num_s = (float)(2 * (double)(s12[x] - u1 * u2) + c2);
        float den_s = ((s11[x] - u1 * u1) + (s22[x] - u2 * u2)) + c2;
        double e = 1 - (double)((num_m * num_s) / den_s);
        if (e < 0) e = 0;
        double e2 = e * e;
        ssim1 += e;
        ssim4 += e2 * e2;
        double d1 = (1 + fabs((double)(b[x] - u2))) / (1 + fabs((double)(a[x] - u1))) - 1;
        double q2 = d1 * d1;
        if (d1 > 0) {
          ring1 += d1;
          ring4 += q2 * q2;
        } else {
          blur1 -= d1;
          blur4 += q2 * q2;
        }
      }
      s[c * 6] += ssim1;
      s[c * 6 + 1] += ssim4;
      s[c * 6 + 2] += ring1;
      s[c * 6 + 3] += ring4;
      s[c * 6 + 4] += blur1;
      s[c * 6 + 5] += blur4;
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

static double score_on(const uint8_t *ref, const uint8_t *dist, int width, int height, int has_background, double background) {
  Pyramid pa, pb;
  double result = NAN; /* out of memory */
  double sums[SCALES][18];
  double pixels[SCALES];
  int scales = 0;
  if (!pyramid_init(&pa, ref, width, height, has_background, background)) goto done_a;
  if (!pyramid_init(&pb, dist, width, height, has_background, background)) goto done_b;
  for (int level = 0; level < SCALES; level++) {
    int w = size_at(width, level), h = size_at(height, level);
    if (w < 8 || h < 8) break;
    if (!score_level(&pa, &pb, level, w, h, sums[level])) goto done_b;
    pixels[level] = (double)w * h;
    scales++;
  }
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
  result = sum > 0 ? 100 - 10 * pow(sum, 0.5453261009510213) : 100;
done_b:
  pyramid_free(&pb);
done_a:
  pyramid_free(&pa);
  return result;
}

EXPORT(s2_malloc) void *s2_malloc(size_t n) { return malloc(n); }
EXPORT(s2_free) void s2_free(void *p) { free(p); }

/*
 * The score of dist against ref (both 8-bit RGBA, width x height, at least 8x8). background:
 * negative ignores alpha, else the grey (0..255) alpha is composited on. NaN when memory ran out (scores can be negative).
 */
EXPORT(s2_score) double s2_score(const uint8_t *ref, const uint8_t *dist, int width, int height, double background) {
  init();
  if (width < 8 || height < 8) return NAN;
  return score_on(ref, dist, width, height, background >= 0, background);
}
