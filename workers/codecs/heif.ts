// HEIC/HEIF decoder: libheif-js (libheif + libde265 compiled to WebAssembly; LGPL-3.0, an ordinary
// npm dependency, never copied here). The primary image is decoded to RGBA with its irot/imir
// transforms applied by libheif; grids are assembled by libheif.
import { createRequire } from 'node:module';
import type { Codec, Raster } from '../../src/codecs/types.js';
import { CodecError, codecOutput, Lazy, wasmModule } from './wasm.js';

interface HeifHandle {
  get_width(): number;
  get_height(): number;
  is_primary(): boolean;
  has_alpha_channel(): boolean;
  free(): void;
  handle: number;
}
interface Channel {
  id: number;
  width: number;
  height: number;
  stride: number;
  data: Uint8Array;
}
interface Libheif {
  HeifDecoder: new () => { decode(b: Uint8Array): HeifHandle[]; decoder: number };
  heif_js_decode_image2(handle: number, colorspace: number, chroma: number): Promise<{ code?: number; message?: string; image: number; channels: Channel[] } | null>;
  heif_image_release(image: number): void;
  heif_context_free(ctx: number): void;
  heif_colorspace: { heif_colorspace_RGB: number };
  heif_chroma: { heif_chroma_interleaved_RGBA: number };
  heif_channel: { heif_channel_interleaved: number };
}

const require = createRequire(import.meta.url);
const WASM = 'libheif-js/libheif-wasm/libheif.wasm';

const lib = new Lazy<Libheif>('heif-dec', async () => {
  const factory = require('libheif-js/libheif-wasm/libheif.js') as (o: object) => Promise<Libheif>;
  const module = wasmModule(WASM);
  let memory: WebAssembly.Memory | null = null;
  const made = await factory({
    print: () => {},
    printErr: (l: unknown) => codecOutput.push(String(l)),
    instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) {
      const instance = new WebAssembly.Instance(module, imports);
      memory = Object.values(instance.exports).find((v) => v instanceof WebAssembly.Memory) as WebAssembly.Memory ?? null;
      done(instance);
      return instance.exports;
    },
  });
  return { module: made, memory };
});

export const heif: Codec = {
  async decode(bytes) {
    const m = await lib.get();
    codecOutput.length = 0;
    const log = console.log;
    console.log = (l: unknown) => codecOutput.push(String(l));
    let handles: HeifHandle[] = [];
    const decoder = new m.HeifDecoder();
    try {
      handles = decoder.decode(bytes);
      const primary = handles.find((h) => h.is_primary()) ?? handles[0];
      if (!primary) throw new CodecError(`HEIF decode failed: ${codecOutput.at(-1) ?? 'no image'}`);
      const alpha = primary.has_alpha_channel();
      const img = await m.heif_js_decode_image2(primary.handle, m.heif_colorspace.heif_colorspace_RGB, m.heif_chroma.heif_chroma_interleaved_RGBA);
      if (!img || img.code) throw new CodecError(`HEIF decode failed: ${img?.message ?? codecOutput.at(-1) ?? 'no image'}`);
      try {
        const ch = img.channels.find((c) => c.id === m.heif_channel.heif_channel_interleaved);
        if (!ch) throw new CodecError('HEIF decode failed: no interleaved RGBA');
        const data = new Uint8ClampedArray(ch.width * ch.height * 4);
        const row = ch.width * 4;
        if (ch.stride === row) data.set(ch.data.subarray(0, row * ch.height));
        else for (let y = 0; y < ch.height; y++) data.set(ch.data.subarray(y * ch.stride, y * ch.stride + row), y * row);
        const out: Raster = { data, width: ch.width, height: ch.height, ...(alpha ? {} : { opaque: true }) };
        return out;
      } finally {
        m.heif_image_release(img.image);
      }
    } catch (err) {
      if (err instanceof CodecError) throw err;
      lib.reset();
      throw new CodecError(`HEIF decode failed: ${codecOutput.at(-1) ?? (err instanceof Error ? err.message : String(err))}`.slice(0, 240));
    } finally {
      console.log = log;
      for (const h of handles) {
        try {
          h.free();
        } catch {
          // already gone with a dropped instance
        }
      }
      try {
        if (decoder.decoder) m.heif_context_free(decoder.decoder);
      } catch {
        // as above
      }
    }
  },
  async encode() {
    throw new CodecError('HEIC is an input format only');
  },
  defaults: {},
};

export const instances = [lib];
