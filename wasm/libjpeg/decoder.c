/*
 * The WebAssembly face of libjpeg-turbo's decoder, for workers/codecs/libjpeg.ts.
 *
 * Written for this repository (not part of libjpeg-turbo). It uses the libjpeg API only:
 * jpeg_mem_src, scale_num/scale_denom (DCT-domain shrink-on-load), out_color_space JCS_EXT_RGBA
 * or JCS_CMYK. bookworm's wasi-libc has no setjmp, so error_exit (and the warnings that mean the
 * data ran out) call an imported JavaScript function that throws: the exception unwinds the wasm
 * stack, whatever libjpeg had allocated is lost inside this instance's memory, and the caller
 * drops the instance. Nothing here returns after an error.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

#define EXPORT(name) __attribute__((export_name(name)))

/* Throws in JavaScript; never returns. */
__attribute__((import_module("env"), import_name("jd_throw"), noreturn))
void jd_throw(const char *message, uint32_t length);

/* What a call leaves for JavaScript to read (one call at a time per instance). */
struct jd_result {
  uint32_t width, height;             /* output size, after scaling */
  uint32_t image_width, image_height; /* the frame's size */
  uint32_t channels;                  /* 4 (RGBA or CMYK) */
  uint32_t jpeg_color_space;          /* J_COLOR_SPACE of the file */
  uint32_t num_components;
  uint32_t adobe;                     /* APP14 Adobe marker seen (CMYK stored inverted) */
  uint32_t progressive;
  uint32_t data_precision;
  uint32_t warnings;                  /* libjpeg warnings that were not fatal */
  uint8_t *pixels;                    /* malloc'd; JavaScript copies it, then calls jd_free */
};

static struct jd_result result;

static void error_exit(j_common_ptr cinfo) {
  char message[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, message);
  jd_throw(message, (uint32_t)strlen(message));
}

/* Running out of data is a warning to libjpeg (it pads the rest of the image with grey); a cut
 * file must fail here. Other warnings (extraneous bytes before a marker, ...) are harmless. */
static void emit_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;
  int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) error_exit(cinfo);
  cinfo->err->num_warnings++;
}

static void output_message(j_common_ptr cinfo) { (void)cinfo; }

static void fail(const char *message);

/* A progressive file may repeat a scan (libjpeg only warns), and every scan walks the whole
 * coefficient buffer, so a small file of thousands of tiny scans costs minutes of decoding. Real
 * encoders write about 10 (MozJPEG's scan search, cjpeg's scripts); libjpeg-turbo's own fuzzers
 * and TurboJPEG's scan limit guard at 500. */
#define MAX_SCANS 500
static void progress_monitor(j_common_ptr cinfo) {
  if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > MAX_SCANS)
    fail("more than 500 scans (a progressive JPEG built to exhaust decoders)");
}
static struct jpeg_progress_mgr progress = {progress_monitor, 0, 0, 0, 0};

EXPORT("jd_malloc") void *jd_malloc(size_t size) { return malloc(size); }
EXPORT("jd_free") void jd_free(void *ptr) { free(ptr); }

static void fail(const char *message) { jd_throw(message, (uint32_t)strlen(message)); }

static void start(struct jpeg_decompress_struct *cinfo, struct jpeg_error_mgr *err,
                  const uint8_t *data, size_t length, int scale) {
  memset(&result, 0, sizeof result);
  cinfo->err = jpeg_std_error(err);
  err->error_exit = error_exit;
  err->emit_message = emit_message;
  err->output_message = output_message;
  if (scale != 1 && scale != 2 && scale != 4 && scale != 8) fail("scale must be 1, 2, 4 or 8");
  jpeg_create_decompress(cinfo);
  cinfo->progress = &progress;
  jpeg_mem_src(cinfo, data, (unsigned long)length);
  jpeg_read_header(cinfo, TRUE);
  cinfo->scale_num = 1;
  cinfo->scale_denom = (unsigned int)scale;
  result.image_width = cinfo->image_width;
  result.image_height = cinfo->image_height;
  result.jpeg_color_space = cinfo->jpeg_color_space;
  result.num_components = (uint32_t)cinfo->num_components;
  result.adobe = cinfo->saw_Adobe_marker;
  result.progressive = cinfo->progressive_mode;
  result.data_precision = (uint32_t)cinfo->data_precision;
}

/* The header only: the frame and the size a decode at this scale would give. */
EXPORT("jd_header")
struct jd_result *jd_header(const uint8_t *data, size_t length, int scale) {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr err;
  start(&cinfo, &err, data, length, scale);
  jpeg_calc_output_dimensions(&cinfo);
  result.width = cinfo.output_width;
  result.height = cinfo.output_height;
  jpeg_destroy_decompress(&cinfo);
  return &result;
}

/*
 * Decodes at 1/scale. cmyk = 0: RGBA (greyscale expanded, alpha 255); CMYK/YCCK files are
 * refused. cmyk = 1: CMYK as ink amounts (0 = no ink): libjpeg turns YCCK into CMYK, and files
 * with an Adobe APP14 marker, which store CMYK inverted (Photoshop's convention), are inverted
 * back. Other colour spaces are refused in that mode.
 */
EXPORT("jd_decode")
struct jd_result *jd_decode(const uint8_t *data, size_t length, int scale, int cmyk) {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr err;
  start(&cinfo, &err, data, length, scale);
  int is_cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  if (cmyk && !is_cmyk) fail("not a CMYK or YCCK JPEG");
  if (!cmyk && is_cmyk) fail("CMYK/YCCK JPEG: needs colour conversion (decode it as CMYK)");
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGBA;
  jpeg_start_decompress(&cinfo);
  result.width = cinfo.output_width;
  result.height = cinfo.output_height;
  result.channels = (uint32_t)cinfo.output_components;
  size_t stride = (size_t)cinfo.output_width * 4;
  uint8_t *pixels = malloc(stride * cinfo.output_height);
  if (!pixels) fail("out of memory for the decoded image");
  result.pixels = pixels;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[16];
    unsigned int n = cinfo.rec_outbuf_height;
    if (n > 16) n = 16;
    /* libjpeg fills at most the rows that are left; spare pointers repeat the last row. */
    for (unsigned int i = 0; i < n; i++) {
      unsigned int y = cinfo.output_scanline + i;
      rows[i] = pixels + (size_t)(y < cinfo.output_height ? y : cinfo.output_height - 1) * stride;
    }
    jpeg_read_scanlines(&cinfo, rows, n);
  }
  if (cmyk && cinfo.saw_Adobe_marker) {
    size_t total = stride * cinfo.output_height;
    for (size_t i = 0; i < total; i++) pixels[i] = (uint8_t)~pixels[i];
  }
  /* Reads on to the end-of-image marker: a file cut after its last scan fails here too. */
  jpeg_finish_decompress(&cinfo);
  result.warnings = err.num_warnings;
  jpeg_destroy_decompress(&cinfo);
  return &result;
}
