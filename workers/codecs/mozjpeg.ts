// MozJPEG's encoder built to WebAssembly by wasm/mozjpeg/build.sh, fed by rows: the RGBA raster
// stays in JavaScript and goes into the module 16 rows at a time, so the module's memory holds
// only the encoder's coefficient buffers (6 B/px at 4:2:0, 12 at 4:4:4; @jsquash's build, which
// copied the whole image in and grew its output in place, held 16 and 23.5), and the JPEG file
// comes out in 64 KiB parts. One instance per thread, made on first use;
// wasm.ts's keep limit drops it after a big image. The module's error_exit calls je_throw, which
// throws here: the wasm stack unwinds, the encode's allocations are stranded, so after any error
// the instance is dropped.
import { CodecError, type Raster } from '../../src/codecs/types.js';
import { instantiateReactor, Lazy, messageAt, type ReactorExports } from './wasm.js';

/** build.mjs copies wasm/ to dist/wasm/, so the path is the same from source and from dist. */
const WASM_FILE = new URL('../../wasm/mozjpeg/mozjpeg.wasm', import.meta.url);

/** JE_ROWS in encoder.c */
const ROWS = 16;

interface Exports extends ReactorExports {
  je_start(width: number, height: number, quality: number, progressive: number): number;
  je_write(rows: number): void;
  je_finish(): void;
}

/** What je_throw carries out of the module: MozJPEG's own message. */
class MozjpegAbort extends Error {}

/** The parts of the file being written (one encode at a time per thread). */
let parts: Uint8Array[] = [];

function instantiate(): { module: Exports; memory: WebAssembly.Memory } {
  return instantiateReactor<Exports>(WASM_FILE, (memory) => ({
    je_throw(ptr: number, length: number): never {
      throw new MozjpegAbort(messageAt(memory(), ptr, length));
    },
    je_output(ptr: number, length: number): void {
      parts.push(new Uint8Array(memory().buffer, ptr, length).slice());
    },
  }), MozjpegAbort);
}

export const mozjpeg = new Lazy('jpeg-enc', async () => instantiate());

export interface MozjpegEncodeOptions {
  /** 0-100, cjpeg's scale (whole numbers; fractions are dropped) */
  quality: number;
  /** MozJPEG's progressive scan script instead of one sequential scan */
  progressive?: boolean;
}

/** A JPEG of the raster's RGB (alpha ignored: flatten first), with the settings encoder.c fixes. */
export async function encodeMozjpeg(img: Raster, { quality, progressive = false }: MozjpegEncodeOptions): Promise<Uint8Array> {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new CodecError(`JPEG encode failed: image is ${width}x${height}`);
  }
  if (data.length !== width * height * 4) throw new CodecError('JPEG encode failed: the pixel data does not match the size');
  if (!(quality >= 0 && quality <= 100)) throw new CodecError(`JPEG encode failed: quality ${quality} is not 0-100`);
  const m = await mozjpeg.get();
  parts = [];
  try {
    // (sizes beyond JPEG's 65500 px a side are refused by encoder.c)
    const rowBuffer = m.je_start(width, height, Math.trunc(quality), progressive ? 1 : 0);
    const stride = width * 4;
    for (let y = 0; y < height; y += ROWS) {
      const n = Math.min(ROWS, height - y);
      // a fresh view each time: the encoder's allocations may grow (and so replace) the buffer
      new Uint8Array(m.memory.buffer, rowBuffer, n * stride).set(data.subarray(y * stride, (y + n) * stride));
      m.je_write(n);
    }
    m.je_finish();
    // one buffer of its own (transferable)
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  } catch (err) {
    mozjpeg.reset();
    const detail = err instanceof Error ? err.message : String(err);
    throw new CodecError(`JPEG encode failed: ${detail.slice(0, 200)}`);
  } finally {
    parts = [];
  }
}
