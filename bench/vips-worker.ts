// Piscina worker for the convert section's wasm-vips side: libvips 8.18 with MozJPEG (the
// libraries sharp uses) compiled to WebAssembly with SIMD, one instance per thread, one libvips
// thread each, so it has the same threads and images in flight as our pool. Its thumbnail path
// shrinks on load and resizes with Lanczos3, then writes JPEG with sharp's mozjpeg settings,
// sequential as ours. Not a dependency: `npm i --no-save wasm-vips@0.0.19` (see bench/diag/wasm-ceiling.ts).
interface VipsImage {
  writeToBuffer(suffix: string, options: object): Uint8Array;
  delete(): void;
}
interface Vips {
  concurrency(n: number): void;
  Cache: { max(n: number): void };
  Image: { thumbnailBuffer(b: Uint8Array, width: number, options?: object): VipsImage };
}

const name = 'wasm-vips';
const vips = await ((await import(name)) as { default: (o: object) => Promise<Vips> }).default({ dynamicLibraries: [] });
vips.concurrency(1);
vips.Cache.max(0);

/** sharp's mozjpeg preset, spelled out for libvips' jpegsave */
const MOZJPEG = { optimize_coding: true, trellis_quant: true, overshoot_deringing: true, quant_table: 3, keep: 'none' };

export default function thumbnail({ bytes, width, quality }: { bytes: Uint8Array; width: number; quality: number }): Uint8Array {
  const im = vips.Image.thumbnailBuffer(bytes, width);
  try {
    return im.writeToBuffer('.jpg', { ...MOZJPEG, Q: quality });
  } finally {
    im.delete();
  }
}
