/*
 * The WebAssembly face of LittleCMS, for workers/codecs/cmyk.ts: CMYK samples with the file's own
 * profile to sRGB, as sharp (libvips) converts them: perceptual intent, no black-point
 * compensation, LittleCMS's built-in sRGB profile, cmsFLAGS_NOCACHE (libvips' flags; the one-pixel
 * cache only saves work on runs of equal pixels).
 *
 * Written for this repository (not part of LittleCMS). LittleCMS reports errors through a log
 * handler and a NULL/FALSE return, never by exiting, so every call here returns: 0 for failure,
 * with lc_status() saying which step failed and lc_error() LittleCMS's last message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lcms2.h"

#define EXPORT(name) __attribute__((export_name(name)))

/* What the last lc_cmyk_transform call found (read by lc_status). */
enum {
  LC_OK = 0,
  LC_BAD_PROFILE = 1,  /* the bytes are not an ICC profile LittleCMS can read */
  LC_NOT_CMYK = 2,     /* a readable profile, but not for CMYK data */
  LC_NO_TRANSFORM = 3, /* a CMYK profile that cannot convert to sRGB (no usable tags, out of memory) */
};

static int status;
static char last_error[256];

static void log_error(cmsContext context, cmsUInt32Number code, const char *text) {
  (void)context;
  (void)code;
  strncpy(last_error, text ? text : "", sizeof last_error - 1);
  last_error[sizeof last_error - 1] = '\0';
}

EXPORT("lc_malloc") void *lc_malloc(size_t size) { return malloc(size); }
EXPORT("lc_free") void lc_free(void *ptr) { free(ptr); }
EXPORT("lc_status") int lc_status(void) { return status; }
EXPORT("lc_error") const char *lc_error(void) { return last_error; }

/* A CMYK (TYPE_CMYK_8: 0 = no ink) to sRGB (TYPE_RGBA_8) transform through the profile in
 * icc[0..length), or 0 (see lc_status). The profile's bytes can be freed afterwards. */
EXPORT("lc_cmyk_transform") void *lc_cmyk_transform(const uint8_t *icc, uint32_t length) {
  cmsSetLogErrorHandler(log_error);
  last_error[0] = '\0';
  cmsHPROFILE cmyk = cmsOpenProfileFromMem(icc, length);
  if (!cmyk) {
    status = LC_BAD_PROFILE;
    return 0;
  }
  if (cmsGetColorSpace(cmyk) != cmsSigCmykData) {
    cmsCloseProfile(cmyk);
    status = LC_NOT_CMYK;
    return 0;
  }
  cmsHPROFILE srgb = cmsCreate_sRGBProfile();
  cmsHTRANSFORM transform = srgb ? cmsCreateTransform(cmyk, TYPE_CMYK_8, srgb, TYPE_RGBA_8, INTENT_PERCEPTUAL, cmsFLAGS_NOCACHE) : 0;
  cmsCloseProfile(cmyk);
  if (srgb) cmsCloseProfile(srgb);
  status = transform ? LC_OK : LC_NO_TRANSFORM;
  return transform;
}

/* pixels CMYK samples from in to opaque RGBA in out (separate buffers, 4 bytes a pixel each). */
EXPORT("lc_run") void lc_run(void *transform, const uint8_t *in, uint8_t *out, uint32_t pixels) {
  cmsDoTransform(transform, in, out, pixels);
  /* LittleCMS leaves an output's extra channel as it found it */
  for (uint32_t i = 3; i < pixels * 4; i += 4) out[i] = 255;
}

EXPORT("lc_delete_transform") void lc_delete_transform(void *transform) { cmsDeleteTransform(transform); }
