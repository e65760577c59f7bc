// Node 20 compiles WebAssembly's relaxed SIMD only with --experimental-wasm-relaxed-simd; Node 22
// and newer (the container's Node 24) do by default. The benches that time the quality=auto scorer
// turn it on, so they measure the build the container picks (ssimulacra2Build in
// workers/metrics/ssimulacra2-wasm.ts). Call before the scorer's first use.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

/** build.mjs copies wasm/ to dist/wasm/, so the path is the same from source and from dist. */
const FMA_FILE = new URL('../wasm/ssimulacra2/ssimulacra2-fma.wasm', import.meta.url);

/** Turns relaxed SIMD on where this engine keeps it behind the flag. */
export function enableRelaxedSimd(): void {
  if (!WebAssembly.validate(readFileSync(FMA_FILE))) setFlagsFromString('--experimental-wasm-relaxed-simd');
}
