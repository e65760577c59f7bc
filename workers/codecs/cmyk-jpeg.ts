// Where the CMYK samples of a CMYK/YCCK JPEG come from: jpeg-js (pure JS, BSD-3-Clause), which
// reads Adobe's APP14 marker (inverted CMYK, and YCCK's colour transform). MozJPEG's build
// (@jsquash/jpeg) refuses these files and hands out no raw channels. This module is the seam: a
// libjpeg WebAssembly build that returns CMYK samples can replace it without touching the rest.
//
// jpeg-js's `decode` only returns RGB made with the naive formula; its JpegImage class (which has
// the raw samples) is not exported. So its source is evaluated once with one line appended that
// exports the class; if that stops working (a new release), the error says so.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isSof, jpegSegments } from '../../src/codecs/jpeg.js';
import type { CmykImage } from './cmyk.js';
import { CodecError } from './wasm.js';

interface JpegImage {
  opts: Record<string, unknown>;
  width: number;
  height: number;
  parse(data: Uint8Array): void;
  /** per pixel 4 samples = 255 - stored value: ink amounts for Adobe CMYK, after YCCK's transform */
  getData(width: number, height: number): Uint8Array;
}
interface JpegImageClass {
  new (): JpegImage;
  resetMaxMemoryUsage(bytes: number): void;
}

const require = createRequire(import.meta.url);
let jpegImage: JpegImageClass | undefined;

function loadJpegImage(): JpegImageClass {
  if (jpegImage) return jpegImage;
  const source = readFileSync(require.resolve('jpeg-js/lib/decoder.js'), 'utf8');
  const module = { exports: {} as Record<string, unknown> };
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  new Function('module', 'exports', `${source}\n;module.exports = { JpegImage: JpegImage };`)(module, module.exports);
  const cls = module.exports.JpegImage as JpegImageClass | undefined;
  if (typeof cls !== 'function') throw new CodecError('CMYK JPEG decode failed: jpeg-js has changed (no JpegImage)');
  jpegImage = cls;
  return cls;
}

/** The ink amounts of a 4-component (Adobe CMYK or YCCK) JPEG. */
export function cmykJpegSamples(bytes: Uint8Array, maxPixels: number): CmykImage {
  // SOF9-11 and SOF13-15: jpeg-js has no arithmetic decoder and would fail on an unknown marker
  if (jpegSegments(bytes)?.some((s) => isSof(s.marker) && s.marker >= 0xc9)) {
    throw new CodecError('CMYK JPEG decode failed: arithmetic coding is not supported for CMYK JPEGs (only for RGB and greyscale ones)');
  }
  const JpegImage = loadJpegImage();
  const d = new JpegImage();
  // the pool's budget already admitted this image; jpeg-js's own caps are set just above it
  d.opts = { colorTransform: undefined, useTArray: true, formatAsRGBA: false, tolerantDecoding: true, maxResolutionInMP: Math.ceil(maxPixels / 1e6) + 1, maxMemoryUsageInMB: Math.ceil((maxPixels * 24) / 2 ** 20) + 64 };
  JpegImage.resetMaxMemoryUsage((d.opts.maxMemoryUsageInMB as number) * 2 ** 20);
  try {
    d.parse(bytes);
    const data = d.getData(d.width, d.height);
    return { data, width: d.width, height: d.height };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new CodecError(`CMYK JPEG decode failed: ${why.slice(0, 200)}`);
  }
}
