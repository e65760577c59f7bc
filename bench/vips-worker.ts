// Piscina worker for the convert section's wasm-vips side: libvips 8.18 with MozJPEG (the
// libraries sharp uses) compiled to WebAssembly with SIMD, one instance per thread, one libvips
// thread each, so it has the same threads and images in flight as our pool. Its thumbnail path
// shrinks on load and resizes with Lanczos3, then writes JPEG with sharp's mozjpeg settings,
// sequential as ours. Not a dependency: `npm i --no-save wasm-vips@0.0.19` (bench/wasm-vips.ts).
import { loadWasmVips, VIPS_MOZJPEG } from './wasm-vips.js';

const vips = (await loadWasmVips()) ?? (() => { throw new Error('wasm-vips is not installed (npm i --no-save wasm-vips@0.0.19)'); })();

export default function thumbnail({ bytes, width, quality }: { bytes: Uint8Array; width: number; quality: number }): Uint8Array {
  const im = vips.Image.thumbnailBuffer(bytes, width);
  try {
    return im.writeToBuffer('.jpg', { ...VIPS_MOZJPEG, Q: quality });
  } finally {
    im.delete();
  }
}
