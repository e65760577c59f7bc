// The SSIMULACRA2 scorer the quality=auto search uses: wasm/ssimulacra2/ssimulacra2.c (a port of
// ssimulacra2.ts, the same arithmetic) built to WebAssembly, about 10x faster than the TypeScript.
// One instance per thread, made on first use (wasm.ts's Lazy: dropped after the step once it grew
// past the keep limit). A scorer holds the source in the module's memory for the whole search, so
// each candidate costs one copy of its own pixels.
import { readFileSync } from 'node:fs';
import type { Raster } from '../../src/codecs/types.js';
import { Lazy } from '../codecs/wasm.js';
import { ROW_BYTES_PER_COLUMN } from './ssimulacra2.js';

/** build.mjs copies wasm/ to dist/wasm/, so the path is the same from source and from dist. */
const WASM_FILE = new URL('../../wasm/ssimulacra2/ssimulacra2.wasm', import.meta.url);

interface Exports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  s2_malloc(size: number): number;
  s2_free(ptr: number): void;
  s2_score(ref: number, dist: number, width: number, height: number, background: number): number;
}

let compiled: WebAssembly.Module | undefined;

// The module imports nothing (no WASI call is linked), so it loads the same on Node, Bun and Deno.
const module = new Lazy('ssimulacra2', async () => {
  compiled ??= new WebAssembly.Module(readFileSync(WASM_FILE));
  const exports = new WebAssembly.Instance(compiled, {}).exports as unknown as Exports;
  exports._initialize();
  return { module: exports, memory: exports.memory };
});

export interface Scorer {
  /** SSIMULACRA2 of `output` (same size as the source) against the source. */
  score(output: Raster): number;
  /** frees the module memory the scorer holds (the instance stays for the next one) */
  close(): void;
}

/**
 * A scorer against `source` (8-bit RGBA, at least 8x8). alpha: composite on a dark and a light
 * grey and keep the worse score, as libjxl's tool does; false ignores alpha.
 */
export async function ssimulacra2Scorer(source: Raster, opts: { alpha?: boolean } = {}): Promise<Scorer> {
  const { width, height } = source;
  if (width < 8 || height < 8) throw new RangeError('ssimulacra2: images must be at least 8x8');
  const m = await module.get();
  const n = width * height * 4;
  if (source.data.length !== n) throw new RangeError('ssimulacra2: RGBA buffers of width*height*4 bytes expected');
  const ref = m.s2_malloc(n);
  const dist = ref === 0 ? 0 : m.s2_malloc(n);
  if (dist === 0) {
    if (ref !== 0) m.s2_free(ref);
    module.reset();
    throw new RangeError(`ssimulacra2: out of memory for ${width}x${height}`);
  }
  new Uint8Array(m.memory.buffer, ref, n).set(source.data);
  let open = true;
  const once = (background: number) => {
    const s = m.s2_score(ref, dist, width, height, background);
    if (Number.isNaN(s)) {
      module.reset();
      throw new RangeError(`ssimulacra2: out of memory scoring ${width}x${height}`);
    }
    return s;
  };
  return {
    score(output: Raster): number {
      if (!open) throw new Error('ssimulacra2: scorer closed');
      if (output.width !== width || output.height !== height || output.data.length !== n) throw new RangeError(`ssimulacra2: sizes differ (${width}x${height} vs ${output.width}x${output.height})`);
      new Uint8Array(m.memory.buffer, dist, n).set(output.data);
      // libjxl's tool: blend on dark and light grey, keep the worse
      return opts.alpha ? Math.min(once(0.1 * 255), once(0.9 * 255)) : once(-1);
    },
    close(): void {
      if (!open) return;
      open = false;
      // after a reset the memory belongs to a dropped instance: nothing to free
      if (module.live) {
        m.s2_free(ref);
        m.s2_free(dist);
      }
    },
  };
}

/** SSIMULACRA2 of `dist` against `ref` in one call. */
export async function ssimulacra2Wasm(ref: Raster, dist: Raster, opts: { alpha?: boolean } = {}): Promise<number> {
  const scorer = await ssimulacra2Scorer(ref, opts);
  try {
    return scorer.score(dist);
  } finally {
    scorer.close();
  }
}

/**
 * Bytes a scorer holds beyond the caller's rasters: the source and one candidate copied into the
 * module (8 B/px), the scales kept whole (2 B/px) and the streaming rows (per column).
 */
export function ssimulacra2ScorerMemoryBytes(width: number, height: number): number {
  return 10 * width * height + ROW_BYTES_PER_COLUMN * width;
}
