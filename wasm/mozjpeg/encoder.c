/*
 * The WebAssembly face of MozJPEG's encoder, for workers/codecs/mozjpeg.ts.
 *
 * Written for this repository (not part of MozJPEG). It uses the libjpeg API and MozJPEG's
 * parameter extensions only. The image comes in by rows: JavaScript copies up to JE_ROWS rows of
 * RGBA into the row buffer je_start hands back and calls je_write, so this memory holds the
 * encoder's own buffers (the whole-image coefficient buffer that Huffman optimisation and trellis
 * quantisation need, twice: quantised, and unquantised for trellis DC optimisation; 6 B/px at
 * 4:2:0, 12 at 4:4:4), never the RGBA image. The JPEG file goes out the same way: each 64 KiB
 * the encoder writes is handed to the imported je_output, which copies it out.
 *
 * bookworm's wasi-libc has no setjmp, so error_exit calls an imported JavaScript function that
 * throws: the exception unwinds the wasm stack, whatever the encoder had allocated is lost inside
 * this instance's memory, and the caller drops the instance. Nothing here returns after an error.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

#define EXPORT(name) __attribute__((export_name(name)))

/* Rows JavaScript hands over per je_write: a multiple of the 16-row MCU of 4:2:0. */
#define JE_ROWS 16

/* Throws in JavaScript; never returns. */
__attribute__((import_module("env"), import_name("je_throw"), noreturn))
void je_throw(const char *message, uint32_t length);

/* Copies length bytes of the JPEG file out to JavaScript (the next part of the file). */
__attribute__((import_module("env"), import_name("je_output")))
void je_output(const uint8_t *data, uint32_t length);

/* One encode at a time per instance: the state lives between je_start and je_finish. */
static struct jpeg_compress_struct cinfo;
static struct jpeg_error_mgr err;
static uint8_t *rows;

/* The destination: one buffer, emptied into JavaScript whenever it is full and at the end. */
#define JE_OUTPUT_BUFFER 65536
static JOCTET output[JE_OUTPUT_BUFFER];
static void output_init(j_compress_ptr c) {
  c->dest->next_output_byte = output;
  c->dest->free_in_buffer = JE_OUTPUT_BUFFER;
}
static boolean output_full(j_compress_ptr c) {
  /* libjpeg calls this with free_in_buffer ignored: the whole buffer is due */
  je_output(output, JE_OUTPUT_BUFFER);
  output_init(c);
  return TRUE;
}
static void output_end(j_compress_ptr c) {
  je_output(output, (uint32_t)(JE_OUTPUT_BUFFER - c->dest->free_in_buffer));
}
static struct jpeg_destination_mgr destination = { NULL, 0, output_init, output_full, output_end };

static void error_exit(j_common_ptr common) {
  char message[JMSG_LENGTH_MAX];
  (*common->err->format_message)(common, message);
  je_throw(message, (uint32_t)strlen(message));
}

/* Warnings (none expected when compressing from memory) are dropped, never printed. */
static void output_message(j_common_ptr common) { (void)common; }

static void fail(const char *message) { je_throw(message, (uint32_t)strlen(message)); }

/*
 * The settings of @jsquash/jpeg's encoder (Squoosh's mozjpeg_enc.cpp) with the options
 * workers/codecs/jpeg.ts always gave it: YCbCr, quant table 3 (ImageMagick's), Huffman
 * optimisation, no smoothing, trellis quantisation with one loop and no multipass, EOB or table
 * optimisation, DC scan optimisation mode 0, and cjpeg's quality rating: one quality for every
 * table (chroma quality = quality), 8-bit tables when sequential (baseline), and cjpeg's automatic
 * subsampling (4:4:4 from quality 90, 4:2:2 from 80, else 4:2:0). Progressive: MozJPEG's
 * jpeg_simple_progression (with its scan optimisation) and 16-bit tables allowed, as Squoosh
 * writes only with baseline off; sequential: a single scan.
 *
 * Returns the row buffer: JE_ROWS rows of width * 4 bytes (RGBA; alpha ignored).
 */
EXPORT("je_start")
uint8_t *je_start(uint32_t width, uint32_t height, int quality, int progressive) {
  if (width == 0 || height == 0) fail("empty image");
  if (width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION) fail("image too large for JPEG (max 65500 px a side)");
  if (quality < 0 || quality > 100) fail("quality must be 0-100");
  cinfo.err = jpeg_std_error(&err);
  err.error_exit = error_exit;
  err.output_message = output_message;
  jpeg_create_compress(&cinfo);
  cinfo.dest = &destination;

  cinfo.image_width = width;
  cinfo.image_height = height;
  cinfo.input_components = 4;
  cinfo.in_color_space = JCS_EXT_RGBA;
  jpeg_set_defaults(&cinfo);
  jpeg_set_colorspace(&cinfo, JCS_YCbCr);
  jpeg_c_set_int_param(&cinfo, JINT_BASE_QUANT_TBL_IDX, 3);
  cinfo.optimize_coding = TRUE;
  cinfo.smoothing_factor = 0;
  jpeg_c_set_bool_param(&cinfo, JBOOLEAN_USE_SCANS_IN_TRELLIS, FALSE);
  jpeg_c_set_bool_param(&cinfo, JBOOLEAN_TRELLIS_EOB_OPT, FALSE);
  jpeg_c_set_bool_param(&cinfo, JBOOLEAN_TRELLIS_Q_OPT, FALSE);
  jpeg_c_set_int_param(&cinfo, JINT_TRELLIS_NUM_LOOPS, 1);
  jpeg_c_set_int_param(&cinfo, JINT_DC_SCAN_OPT_MODE, 0);

  boolean baseline = progressive ? FALSE : TRUE;
  /* cjpeg's -quality N: jpeg_set_quality scales both tables by the same rating. */
  jpeg_set_quality(&cinfo, quality, baseline);
  /* cjpeg's rule: subsampling costs colour detail that high qualities are asked to keep. */
  if (quality >= 80) {
    for (int ci = 0; ci < cinfo.num_components; ci++) {
      cinfo.comp_info[ci].h_samp_factor = 1;
      cinfo.comp_info[ci].v_samp_factor = 1;
    }
    if (quality < 90) cinfo.comp_info[0].h_samp_factor = 2;
  }

  if (progressive) {
    jpeg_simple_progression(&cinfo);
  } else {
    cinfo.num_scans = 0;
    cinfo.scan_info = NULL;
  }
  jpeg_start_compress(&cinfo, TRUE);

  rows = malloc((size_t)JE_ROWS * width * 4);
  if (!rows) fail("out of memory for the row buffer");
  return rows;
}

/* Compresses the first n (1..JE_ROWS) rows of the row buffer. */
EXPORT("je_write")
void je_write(uint32_t n) {
  if (n == 0 || n > JE_ROWS) fail("row count must be 1-16");
  JSAMPROW pointers[JE_ROWS];
  size_t stride = (size_t)cinfo.image_width * 4;
  for (uint32_t i = 0; i < n; i++) pointers[i] = rows + i * stride;
  uint32_t done = 0;
  while (done < n) {
    JDIMENSION wrote = jpeg_write_scanlines(&cinfo, pointers + done, n - done);
    if (wrote == 0) fail("the encoder took no rows");
    done += wrote;
  }
}

/* Ends the encode: the rest of the file goes to je_output, and every buffer is freed. */
EXPORT("je_finish")
void je_finish(void) {
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  free(rows);
  rows = NULL;
}
