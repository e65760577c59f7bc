// wasm-vips (libvips 8.18 with MozJPEG, compiled to WebAssembly with SIMD): the WebAssembly ceiling
// the benches compare against. Not a dependency (it does not run on Bun); install it for a run
// only: `npm i --no-save wasm-vips@0.0.19`. One instance, one libvips thread, no operation cache,
// so it has exactly the threads and images in flight it is given.

export interface VipsImage {
  writeToBuffer(suffix: string, options: object): Uint8Array;
  delete(): void;
}
export interface Vips {
  concurrency(n: number): void;
  Cache: { max(n: number): void };
  Image: {
    newFromBuffer(b: Uint8Array, options: string, load: object): VipsImage;
    thumbnailBuffer(b: Uint8Array, width: number, options?: object): VipsImage;
  };
}

/** sharp's mozjpeg preset, spelled out for libvips' jpegsave (sequential, as ours by default) */
export const VIPS_MOZJPEG = { optimize_coding: true, trellis_quant: true, overshoot_deringing: true, quant_table: 3, keep: 'none' };

/** The loaded module, or null when wasm-vips is not installed. */
export async function loadWasmVips(): Promise<Vips | null> {
  try {
    const name = 'wasm-vips';
    const init = ((await import(name)) as { default: (o: object) => Promise<Vips> }).default;
    const vips = await init({ dynamicLibraries: [] });
    vips.concurrency(1);
    vips.Cache.max(0);
    return vips;
  } catch {
    return null;
  }
}
