// An independent decoder for checking outputs: the stock @jsquash decoders, not the codec table
// under test. Also the fixture reader the codec tests share.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import jpegDecode, { init as initJpegDecode } from '@jsquash/jpeg/decode.js';
import pngDecode, { init as initPngDecode } from '@jsquash/png/decode.js';
import webpDecode, { init as initWebpDecode } from '@jsquash/webp/decode.js';
import avifDecode, { init as initAvifDecode } from '@jsquash/avif/decode.js';
import { detectFormat } from '../../src/codecs/sniff.js';

export const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));

export interface Pixels {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

const require = createRequire(import.meta.url);
const wasm = (spec: string) => new WebAssembly.Module(readFileSync(require.resolve(spec)));
let ready: Promise<void> | null = null;

function init(): Promise<void> {
  if (typeof (globalThis as { ImageData?: unknown }).ImageData === 'undefined') {
    (globalThis as Record<string, unknown>).ImageData = class {
      constructor(readonly data: Uint8ClampedArray, readonly width: number, readonly height: number) {}
    };
  }
  // the JS takes (module, overrides); the published .d.ts only declares (overrides)
  type Init = (module: WebAssembly.Module, overrides: object) => Promise<void>;
  const quiet = { print() {}, printErr() {} };
  return (ready ??= (async () => {
    await (initJpegDecode as unknown as Init)(wasm('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'), quiet);
    await (initWebpDecode as unknown as Init)(wasm('@jsquash/webp/codec/dec/webp_dec.wasm'), quiet);
    await initPngDecode(wasm('@jsquash/png/codec/pkg/squoosh_png_bg.wasm'));
    await (initAvifDecode as unknown as Init)(wasm('@jsquash/avif/codec/dec/avif_dec.wasm'), quiet);
  })());
}

/** Decodes JPEG, PNG, WebP or AVIF bytes; throws for anything else. */
export async function independentDecode(bytes: Uint8Array, opts: { preserveOrientation?: boolean } = {}): Promise<Pixels> {
  await init();
  const format = detectFormat(bytes);
  const buf = bytes.slice().buffer;
  const img =
    format === 'jpeg' ? await jpegDecode(buf, opts)
    : format === 'png' ? await pngDecode(buf)
    : format === 'webp' ? await webpDecode(buf)
    : format === 'avif' ? await avifDecode(buf)
    : null;
  if (!img) throw new Error('not an image');
  return { data: img.data as Uint8ClampedArray, width: img.width, height: img.height };
}
