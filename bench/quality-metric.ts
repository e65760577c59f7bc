// Perceptual quality of a decoded output against its decoded source:
// - SSIMULACRA2 (calc-s2-rust: a WASM build of the rust-av port of Cloudinary's metric; 100 is
//   identical, ~90 visually lossless, ~70 high quality, ~50 medium, below 30 low). It is the
//   metric the quality section matches on: tuned on subjective scores of JPEG, WebP, AVIF... at
//   every quality, it sees blocking, ringing and banding that SSIM averages away.
// - SSIM (ssim.js, Wang et al.'s reference method: luma, downsampled to ~256 px) as the floor.
// No usable butteraugli or dssim build installs from npm here; this WASM build is ~5 s per
// 1.4-megapixel pair on this machine, so the section runs it in worker threads.
//
// Images with alpha are blended on a dark (0.1) and a light (0.9) grey background and the worse
// of the two scores is kept, as libjxl's ssimulacra2 tool does: a change that only shows on one
// kind of page still counts.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import ssimJs from 'ssim.js';

interface CalcS2 {
  initSync(module: WebAssembly.Module): { memory: WebAssembly.Memory };
  new_buffer(key: string, len: number): number;
  calc_s2(a: string, b: string, width: number, height: number): number;
}

const require = createRequire(import.meta.url);
let s2: { mod: CalcS2; memory: WebAssembly.Memory } | undefined;
let wasm: WebAssembly.Module | undefined;

async function calcS2(): Promise<{ mod: CalcS2; memory: WebAssembly.Memory }> {
  if (s2) return s2;
  // The package ships ESM in a package without "type": "module" (and no "main"): load its glue
  // as a data: module, like workers/codecs/wasm.ts does for the codecs.
  const glue = readFileSync(require.resolve('calc-s2-rust/calc_s2_rust.js'), 'utf8');
  const mod = (await import(`data:text/javascript;base64,${Buffer.from(glue).toString('base64')}`)) as CalcS2;
  wasm ??= new WebAssembly.Module(readFileSync(require.resolve('calc-s2-rust/calc_s2_rust_bg.wasm')));
  s2 = { mod, memory: mod.initSync(wasm).memory };
  return s2;
}

/** RGB of RGBA pixels, alpha composited on grey `bg` (0..255) when `alpha` is set, else dropped. */
function rgbOn(rgba: Uint8Array, alpha: boolean, bg: number): Uint8Array {
  const out = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0, o = 0; i < rgba.length; i += 4, o += 3) {
    const a = alpha ? rgba[i + 3]! / 255 : 1;
    out[o] = Math.round(rgba[i]! * a + bg * (1 - a));
    out[o + 1] = Math.round(rgba[i + 1]! * a + bg * (1 - a));
    out[o + 2] = Math.round(rgba[i + 2]! * a + bg * (1 - a));
  }
  return out;
}

const rgbaOf = (rgb: Uint8Array) => {
  const out = new Uint8ClampedArray((rgb.length / 3) * 4).fill(255);
  for (let i = 0, o = 0; i < rgb.length; i += 3, o += 4) out.set(rgb.subarray(i, i + 3), o);
  return out;
};

async function ssimulacra2Rgb(ref: Uint8Array, dist: Uint8Array, width: number, height: number): Promise<number> {
  const { mod, memory } = await calcS2();
  const log = console.log;
  console.log = () => {}; // this build logs every buffer it allocates
  try {
    // allocate and fill one at a time: the second allocation may grow (move) the memory buffer
    const refAt = mod.new_buffer('ref', ref.length);
    new Uint8Array(memory.buffer, refAt, ref.length).set(ref);
    const distAt = mod.new_buffer('dist', dist.length);
    new Uint8Array(memory.buffer, distAt, dist.length).set(dist);
    return mod.calc_s2('ref', 'dist', width, height);
  } catch (err) {
    s2 = undefined; // a Rust panic poisons the module's buffer map: start a fresh instance next time
    throw err;
  } finally {
    console.log = log;
  }
}

export interface Quality {
  ssimulacra2: number;
  ssim: number;
}

export interface QualityTask {
  /** RGBA pixels of the decoded source and of the decoded output, same size */
  ref: Uint8Array;
  dist: Uint8Array;
  width: number;
  height: number;
  /** compare with alpha (blended on two backgrounds) or on the colour channels alone */
  alpha: boolean;
}

/** SSIMULACRA2 alone (no ssim.js): the reference workers/metrics/ssimulacra2.ts is checked against. */
export async function referenceSsimulacra2(t: QualityTask): Promise<number> {
  if (t.ref.length !== t.width * t.height * 4 || t.dist.length !== t.ref.length) throw new Error('referenceSsimulacra2: RGBA buffers of the same size expected');
  let worst = Infinity;
  for (const bg of t.alpha ? [0.1 * 255, 0.9 * 255] : [0]) worst = Math.min(worst, await ssimulacra2Rgb(rgbOn(t.ref, t.alpha, bg), rgbOn(t.dist, t.alpha, bg), t.width, t.height));
  return worst;
}

export async function measureQuality(t: QualityTask): Promise<Quality> {
  if (t.ref.length !== t.width * t.height * 4 || t.dist.length !== t.ref.length) throw new Error('measureQuality: RGBA buffers of the same size expected');
  let worst: Quality = { ssimulacra2: Infinity, ssim: Infinity };
  for (const bg of t.alpha ? [0.1 * 255, 0.9 * 255] : [0]) {
    const a = rgbOn(t.ref, t.alpha, bg);
    const b = rgbOn(t.dist, t.alpha, bg);
    const s = await ssimulacra2Rgb(a, b, t.width, t.height);
    const { mssim } = ssimJs.ssim({ data: rgbaOf(a), width: t.width, height: t.height }, { data: rgbaOf(b), width: t.width, height: t.height });
    worst = { ssimulacra2: Math.min(worst.ssimulacra2, s), ssim: Math.min(worst.ssim, mssim) };
  }
  return worst;
}
