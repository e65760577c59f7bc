/*
 * Separable Lanczos3 downscaling of 8-bit RGBA for the pool threads, built to wasm32-wasi by
 * build.sh beside this file and loaded by workers/codecs/resize.ts. Written for this repository.
 *
 * The kernel's support is widened by the reduction factor on each axis (as the Rust `resize`
 * crate that Squoosh ships and libvips' reduceh/reducev do), which is what antialiases a
 * downscale; taps falling outside the image are dropped and the rest renormalised. Filtering is
 * in gamma space; alpha is premultiplied when asked (the image is not known to be opaque).
 *
 * Memory: the input streams through in chunks of rows that JavaScript copies in (rz_input,
 * rz_push); each input row is filtered horizontally into a ring of as many rows (output width,
 * float RGBA) as the vertical kernel spans, and each output row is made as soon as its last input
 * row arrived. So the module holds the output, the ring, one float input row, the weights and one
 * chunk: never a copy of the whole input (resize.ts states the model for the memory plan).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

/* about this many bytes of input rows per rz_push */
enum { CHUNK_BYTES = 1 << 20 };

typedef struct {
  int *start;   /* first input index of each output index */
  int *count;   /* taps of each output index */
  float *w;     /* taps, `span` per output index */
  int span;     /* the most taps any output index has */
} axis_t;

static struct {
  int iw, ih, ow, oh, premultiply, chunk_rows;
  axis_t h, v;
  uint8_t *input, *output;
  float *row, *ring, *acc;
  int rows_in, rows_out;
} s;

static double sinc(double x) {
  if (x == 0) return 1;
  x *= 3.14159265358979323846;
  return sin(x) / x;
}

static double lanczos3(double x) { return x <= -3 || x >= 3 ? 0 : sinc(x) * sinc(x / 3); }

static void axis_free(axis_t *a) {
  free(a->start);
  free(a->count);
  free(a->w);
  memset(a, 0, sizeof *a);
}

/* Output pixel o covers input [o*scale, (o+1)*scale); its centre is at (o + 0.5) * scale. */
static int axis_init(axis_t *a, int in, int out) {
  const double scale = (double)in / out, fs = scale > 1 ? scale : 1, support = 3 * fs;
  a->span = (int)ceil(2 * support) + 2;
  if (a->span > in) a->span = in;
  a->start = malloc(sizeof(int) * out);
  a->count = malloc(sizeof(int) * out);
  a->w = malloc(sizeof(float) * out * a->span);
  /* on the heap: a large reduction has more taps than the 256 KiB stack holds */
  double *taps = malloc(sizeof(double) * a->span);
  if (!a->start || !a->count || !a->w || !taps) {
    free(taps);
    return 0;
  }
  for (int o = 0; o < out; o++) {
    const double centre = (o + 0.5) * scale;
    int left = (int)floor(centre - support), right = (int)ceil(centre + support);
    if (left < 0) left = 0;
    if (right > in) right = in;
    if (right - left > a->span) right = left + a->span;
    double sum = 0;
    for (int i = left; i < right; i++) sum += taps[i - left] = lanczos3((i + 0.5 - centre) / fs);
    /* drop zero taps at both ends (the kernel is 0 at its edges) */
    while (right - left > 1 && taps[0] == 0) left++, memmove(taps, taps + 1, sizeof(double) * (right - left));
    while (right - left > 1 && taps[right - left - 1] == 0) right--;
    a->start[o] = left;
    a->count[o] = right - left;
    float *w = a->w + (size_t)o * a->span;
    for (int i = 0; i < right - left; i++) w[i] = (float)(taps[i] / sum);
  }
  free(taps);
  return 1;
}

EXPORT(rz_end) void rz_end(void) {
  axis_free(&s.h);
  axis_free(&s.v);
  free(s.input);
  free(s.output);
  free(s.row);
  free(s.ring);
  free(s.acc);
  memset(&s, 0, sizeof s);
}

/* Returns 1, or 0 when memory ran out (everything is freed again). */
EXPORT(rz_begin) int rz_begin(int iw, int ih, int ow, int oh, int premultiply) {
  rz_end();
  if (iw < 1 || ih < 1 || ow < 1 || oh < 1) return 0;
  s.iw = iw, s.ih = ih, s.ow = ow, s.oh = oh, s.premultiply = premultiply;
  s.chunk_rows = CHUNK_BYTES / (4 * iw);
  if (s.chunk_rows < 1) s.chunk_rows = 1;
  if (s.chunk_rows > ih) s.chunk_rows = ih;
  int ok = axis_init(&s.h, iw, ow) && axis_init(&s.v, ih, oh);
  if (ok) {
    s.input = malloc((size_t)s.chunk_rows * iw * 4);
    s.output = malloc((size_t)ow * oh * 4);
    s.row = malloc(sizeof(float) * 4 * iw);
    s.ring = malloc(sizeof(float) * 4 * ow * s.v.span);
    s.acc = malloc(sizeof(float) * 4 * ow);
    ok = s.input && s.output && s.row && s.ring && s.acc;
  }
  if (!ok) rz_end();
  return ok;
}

EXPORT(rz_input) uint8_t *rz_input(void) { return s.input; }
EXPORT(rz_output) uint8_t *rz_output(void) { return s.output; }
EXPORT(rz_chunk_rows) int rz_chunk_rows(void) { return s.chunk_rows; }

static inline v128_t load_rgba(const uint8_t *p) {
  v128_t px = wasm_v128_load32_zero(p);
  return wasm_f32x4_convert_i32x4(wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(px)));
}

static void filter_row(const uint8_t *in, float *out) {
  float *row = s.row;
  if (s.premultiply) {
    for (int x = 0; x < s.iw; x++) {
      v128_t px = load_rgba(in + 4 * x);
      float a = in[4 * x + 3] * (1.0f / 255);
      v128_t f = wasm_f32x4_make(a, a, a, 1);
      wasm_v128_store(row + 4 * x, wasm_f32x4_mul(px, f));
    }
  } else {
    for (int x = 0; x < s.iw; x++) wasm_v128_store(row + 4 * x, load_rgba(in + 4 * x));
  }
  const axis_t *h = &s.h;
  for (int o = 0; o < s.ow; o++) {
    const float *src = row + 4 * h->start[o], *w = h->w + (size_t)o * h->span;
    v128_t acc = wasm_f32x4_splat(0);
    for (int k = 0, n = h->count[o]; k < n; k++) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(src + 4 * k), wasm_f32x4_splat(w[k])));
    wasm_v128_store(out + 4 * o, acc);
  }
}

static void emit_row(int y) {
  const axis_t *v = &s.v;
  const float *w = v->w + (size_t)y * v->span;
  const int n = v->count[y], top = v->start[y], ow = s.ow;
  float *acc = s.acc;
  memset(acc, 0, sizeof(float) * 4 * ow);
  for (int k = 0; k < n; k++) {
    const float *src = s.ring + (size_t)((top + k) % v->span) * 4 * ow;
    v128_t wk = wasm_f32x4_splat(w[k]);
    for (int x = 0; x < ow; x++) wasm_v128_store(acc + 4 * x, wasm_f32x4_add(wasm_v128_load(acc + 4 * x), wasm_f32x4_mul(wasm_v128_load(src + 4 * x), wk)));
  }
  uint8_t *out = s.output + (size_t)y * ow * 4;
  const v128_t zero = wasm_f32x4_splat(0), top255 = wasm_f32x4_splat(255), half = wasm_f32x4_splat(0.5f);
  for (int x = 0; x < ow; x++) {
    v128_t px = wasm_v128_load(acc + 4 * x);
    if (s.premultiply) {
      float a = wasm_f32x4_extract_lane(px, 3);
      /* an alpha that rounds to 0 keeps no colour; ringing may push colour past alpha: clamped below */
      float f = a < 0.5f ? 0 : 255 / a;
      px = wasm_f32x4_mul(px, wasm_f32x4_make(f, f, f, 1));
    }
    px = wasm_f32x4_add(wasm_f32x4_min(wasm_f32x4_max(px, zero), top255), half);
    v128_t i = wasm_i32x4_trunc_sat_f32x4(px);
    v128_t b = wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(i, i), wasm_i16x8_narrow_i32x4(i, i));
    wasm_v128_store32_lane(out + 4 * x, b, 0);
  }
}

/* Filters the next `rows` input rows (copied to rz_input) and makes every output row they complete. */
EXPORT(rz_push) void rz_push(int rows) {
  const axis_t *v = &s.v;
  for (int r = 0; r < rows && s.rows_in < s.ih; r++) {
    filter_row(s.input + (size_t)r * s.iw * 4, s.ring + (size_t)(s.rows_in % v->span) * 4 * s.ow);
    s.rows_in++;
    while (s.rows_out < s.oh && v->start[s.rows_out] + v->count[s.rows_out] <= s.rows_in) emit_row(s.rows_out++);
  }
}

/* How many output rows are done (all of them once every input row was pushed). */
EXPORT(rz_rows_out) int rz_rows_out(void) { return s.rows_out; }
