// JPEG: libjpeg-turbo's decoder (libjpeg.ts: full size or shrunk on load) and MozJPEG's encoder
// (mozjpeg.ts: our wasm build, fed by rows). libjpeg decodes full size in 0.88x the time of @jsquash's MozJPEG decoder
// (bench/diag/libjpeg.ts), so it serves every decode; CMYK/YCCK files as CMYK samples for
// LittleCMS (cmyk.ts).
import { jpegComponents, jpegHasEnd, readJpegIcc } from '../../src/codecs/jpeg.js';
import { cmykToSrgb } from './cmyk.js';
import type { Codec, Raster } from '../../src/codecs/types.js';
import { decodeJpeg, decodeJpegCmyk, instances as libjpegInstances } from './libjpeg.js';
import { encodeMozjpeg, mozjpeg } from './mozjpeg.js';
import { CodecError } from './wasm.js';

export interface MozJpegOptions {
  quality: number;
  baseline: boolean;
  arithmetic: boolean;
  progressive: boolean;
  optimize_coding: boolean;
  smoothing: number;
  color_space: number;
  quant_table: number;
  trellis_multipass: boolean;
  trellis_opt_zero: boolean;
  trellis_opt_table: boolean;
  trellis_loops: number;
  auto_subsample: boolean;
  chroma_subsample: number;
  separate_chroma_quality: boolean;
  chroma_quality: number;
}

/**
 * MozJPEG settings. Measured on the nine 1500x937 corpus photos, one thread, decode+encode,
 * against sharp({mozjpeg:true}) at quality 50 (sharp: progressive, trellis, quant table 3),
 * interleaved per image, 4 rounds, every output decoded and its size checked:
 *
 *   | settings                          | speed vs sharp-mozjpeg | bytes vs sharp-mozjpeg |
 *   | library defaults (progressive)    | 0.55x                  | 1.0016x                |
 *   | progressive:false (16-bit DQT)    | 1.07x                  | 1.0230x                |
 *   | progressive:false, baseline:true  | 1.06x   <- chosen      | 1.0215x                |
 *
 * Earlier non-interleaved runs (noisier): trellis_opt_zero/opt_table ~1.0x / 1.019-1.021x;
 * optimize_coding:false 0.75x / 1.06x; trellis_multipass 0.98x / 1.028x. Our bytes are ~0.76x
 * of sharp's default libjpeg-turbo at the same quality.
 *
 * Chosen: sequential (non-progressive) Huffman-optimised with trellis quantisation (one loop),
 * MozJPEG's default quant table 3 (the same one sharp's mozjpeg preset uses), and baseline:true so
 * the quant tables are clamped to 8 bits: at q50 table 3 has entries > 255, which without the
 * clamp produce an "extended sequential" (SOF1, 16-bit DQT) file that some decoders reject; the
 * clamp is what sharp/libjpeg do too. Never set trellis_loops to 0: MozJPEG then emits garbage
 * without an error.
 *
 * These were @jsquash/jpeg's options; our build (wasm/mozjpeg/encoder.c) sets the same ones in C
 * (quality and progressive come per call), so this object documents them and fixes `defaults`.
 */
export const MOZJPEG_OPTIONS: MozJpegOptions = {
  quality: 50,
  baseline: true,
  arithmetic: false,
  progressive: false,
  optimize_coding: true,
  smoothing: 0,
  color_space: 3, // YCbCr
  quant_table: 3,
  trellis_multipass: false,
  trellis_opt_zero: false,
  trellis_opt_table: false,
  trellis_loops: 1,
  auto_subsample: true,
  chroma_subsample: 2,
  separate_chroma_quality: false,
  chroma_quality: 50,
};

export const jpeg: Codec = {
  async decode(bytes, { scale = 1 } = {}) {
    // libjpeg decodes a cut-off file into a grey-padded image with only a warning: refuse it
    // (libjpeg.ts also makes a premature end of the scan data fatal).
    if (!jpegHasEnd(bytes)) throw new CodecError('JPEG decode failed: truncated (no end-of-image marker)');
    // CMYK and YCCK: libjpeg's ink amounts (Adobe's inversion undone, YCCK made CMYK), at full
    // size (the plan never scales them), through the file's profile
    if (jpegComponents(bytes) === 4) {
      const { data, width, height } = await decodeJpegCmyk(bytes);
      return cmykToSrgb({ data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height }, readJpegIcc(bytes));
    }
    // JPEG has no alpha: the raster says so (opaque), which spares the JPEG target's flatten pass,
    // a full read of the pixels (~3% of a 12 MP re-encode's thread time in a --cpu-prof profile)
    return decodeJpeg(bytes, { scale });
  },
  async encode(img, { quality, progressive = false }) {
    // Progressive: MozJPEG's own scan script (jpeg_simple_progression) with baseline off, as
    // @jsquash/Squoosh wrote it: below quality ~70 table 3 keeps entries above 255 (16-bit DQT), as
    // MozJPEG's cjpeg writes by default; libjpeg-turbo (Chrome, Firefox) reads them.
    return encodeMozjpeg(img, { quality, progressive });
  },
  defaults: MOZJPEG_OPTIONS,
};

export const instances = [...libjpegInstances, mozjpeg];
