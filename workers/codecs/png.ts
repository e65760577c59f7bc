// PNG: squoosh_png decoder; encoder = libimagequant palette then OxiPNG, or lossless OxiPNG when
// the palette would hurt (measured: its SSIM against the source).
import { PNG_PALETTE_MAX_PIXELS } from '../../src/codecs/table.js';
import { pngFrames } from '../../src/codecs/animation.js';
import { encodePngLean } from './png-lean.js';
import type { Codec, Raster } from '../../src/codecs/types.js';
import { ssim } from './ssim.js';
import { call, checkRaster, Lazy, ownBytes, releaseGrown, wasmBindgen } from './wasm.js';

/**
 * PNG rule. libimagequant makes a palette of at most 256 colours (alpha kept in the palette) for
 * target quality 90 on its 0-100 scale (pngquant's --quality), at speed 6 with full
 * Floyd-Steinberg dithering, and never refuses (minimum 0). The palette is kept when its SSIM
 * against the source (workers/codecs/ssim.ts: luma premultiplied by alpha, and alpha) is at least
 * 0.90; below that the image is written losslessly. Both paths end in OxiPNG level 2.
 *
 * Speed: sharp's palette:true uses speed 4 (effort 7). Measured in one run on the corpus PNGs,
 * speed 4 is 1.06x sharp's speed and speed 6 1.16x, for the same bytes (0.951x / 0.953x sharp's)
 * and SSIM within 0.001; speed 8 is 2.3x but 5% bigger at lower SSIM. OxiPNG level 1 is faster
 * (1.36x) but 4% bigger (tables in docs/performance.md).
 *
 * Measured (bench/diag/png-rule.ts, table in docs/performance.md), SSIMULACRA2 in brackets:
 * - every corpus PNG, photo and flat graphic keeps its palette at SSIM 0.94-1.00 [66-100],
 *   0.21-0.50x the bytes of lossless. astronaut-alpha.png (soft radial alpha) is among them:
 *   libimagequant rates it 62, under the old minimum of 65 that sent it to lossless (4.5x sharp's
 *   bytes), yet it scores 66.1, above sharp's palette at 62.5.
 * - the palettes under 0.90 are dithered smooth gradients and a soft alpha ramp (SSIM 0.80-0.86):
 *   there dithering noise made the palette 1.1-8.5x *bigger* than lossless, so 0.90 sends to
 *   lossless exactly the images where the palette loses on both counts.
 * - target 90 against the old 80: more colours where they show (chelsea 92 -> 242, SSIMULACRA2
 *   72 -> 84) for ~30% more bytes; at 90 every corpus PNG scores at or above sharp's
 *   palette:true and the total is below its bytes. Target 100 adds nothing on photos (the same
 *   256 colours) and keeps every colour of near-flat images (ColdRipple at 600 px: 1.00x lossless).
 * Above PNG_PALETTE_MAX_PIXELS the palette is not tried: libimagequant holds up to ~72 bytes per
 * pixel, which would put a large PNG over any reasonable memory budget.
 */
export const PNG_OPTIONS = {
  minQuality: 0,
  targetQuality: 90,
  speed: 6,
  dithering: 1.0,
  oxipngLevel: 2,
  /** lets OxiPNG change the colour of fully transparent pixels (invisible) */
  optimiseAlpha: true,
  /** the palette is kept when its SSIM against the source (workers/codecs/ssim.ts) reaches this */
  minSsim: 0.9,
};

export type PngOptions = typeof PNG_OPTIONS;

export interface PngEncodeReport {
  bytes: Uint8Array;
  mode: 'palette' | 'lossless';
  /** the palette tried (kept or not): libimagequant's quality (0-100), its colours, its SSIM; null when none was made */
  quality: number | null;
  colours: number | null;
  ssim: number | null;
}

interface SquooshPng {
  initSync(m: unknown): unknown;
  decode(data: Uint8Array): Raster;
}
interface SquooshOxipng {
  initSync(m: unknown): unknown;
  optimise(data: Uint8Array, level: number, interlace: boolean, optimiseAlpha: boolean): Uint8Array;
  optimise_raw(data: Uint8ClampedArray, width: number, height: number, level: number, interlace: boolean, optimiseAlpha: boolean): Uint8Array;
}
interface LiqResult {
  free(): void;
  getPalette(): unknown[];
  getPaletteIndices(data: Uint8ClampedArray, width: number, height: number): Uint8Array;
  getQuantizationQuality(): number;
  setDithering(level: number): void;
}
interface LiqQuantizer {
  free(): void;
  setQuality(min: number, target: number): void;
  setSpeed(speed: number): void;
  quantizeImage(data: Uint8ClampedArray, width: number, height: number): LiqResult;
}
interface LibImageQuant {
  initSync(m: unknown): unknown;
  ImageQuantizer: new () => LiqQuantizer;
}

const dec = new Lazy('png-dec', () => wasmBindgen<SquooshPng>('@jsquash/png/codec/pkg/squoosh_png.js', '@jsquash/png/codec/pkg/squoosh_png_bg.wasm', false));
const oxipng = new Lazy('oxipng', () => wasmBindgen<SquooshOxipng>('@jsquash/oxipng/codec/pkg/squoosh_oxipng.js', '@jsquash/oxipng/codec/pkg/squoosh_oxipng_bg.wasm', false));
const imagequant = new Lazy('imagequant', () => wasmBindgen<LibImageQuant>('libimagequant-wasm/wasm/libimagequant_wasm.js', 'libimagequant-wasm/wasm/libimagequant_wasm_bg.wasm', true));

export async function encodePng(image: Raster, o: PngOptions = PNG_OPTIONS): Promise<PngEncodeReport> {
  const { width, height, data } = image;
  const palette = width * height > PNG_PALETTE_MAX_PIXELS ? null : await call(imagequant, 'PNG palette reduction', (liq) => {
    const q = new liq.ImageQuantizer();
    let r: LiqResult | undefined;
    try {
      q.setQuality(o.minQuality, o.targetQuality);
      q.setSpeed(o.speed);
      try {
        r = q.quantizeImage(data, width, height);
      } catch (err) {
        if (/QualityTooLow/i.test(String(err))) return null; // only with a minQuality above 0
        throw err;
      }
      r.setDithering(o.dithering);
      const colours = r.getPalette() as number[][];
      const indices = r.getPaletteIndices(data, width, height);
      const quality = Math.round(r.getQuantizationQuality() * 100);
      const remapped = expand(indices, colours);
      const similarity = ssim(data, remapped, width, height);
      return { rgba: similarity < o.minSsim ? null : remapped, quality, colours: colours.length, ssim: similarity };
    } finally {
      r?.free();
      q.free();
    }
  });
  releaseGrown(); // the quantiser's memory, before OxiPNG takes its own
  const tried = { quality: palette?.quality ?? null, colours: palette?.colours ?? null, ssim: palette?.ssim ?? null };
  if (palette?.rgba) {
    // OxiPNG writes an image of <= 256 colours as a palette PNG itself: handing it the remapped
    // pixels skips libimagequant's PNG writer and OxiPNG's decoding of it (same or fewer bytes,
    // 30-50% less time for this step, measured on the corpus PNGs).
    const rgba = palette.rgba;
    const bytes = await call(oxipng, 'PNG encode', (m) => m.optimise_raw(rgba, width, height, o.oxipngLevel, false, o.optimiseAlpha));
    return { bytes: ownBytes(bytes), mode: 'palette', ...tried };
  }
  const bytes = await call(oxipng, 'PNG encode', (m) => m.optimise_raw(data, width, height, o.oxipngLevel, false, o.optimiseAlpha));
  return { bytes: ownBytes(bytes), mode: 'lossless', ...tried };
}

/** The RGBA image a palette and its indices stand for. */
function expand(indices: Uint8Array, colours: number[][]): Uint8ClampedArray {
  const table = new Uint32Array(256);
  const view = new Uint8Array(table.buffer);
  colours.forEach((c, k) => view.set(c, k * 4));
  const out = new Uint32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = table[indices[i]!]!;
  return new Uint8ClampedArray(out.buffer);
}

export const png: Codec = {
  async decode(bytes) {
    // an APNG's default image (IDAT) is its first frame; the other frames (fdAT) are skipped
    const img = checkRaster(await call(dec, 'PNG decode', (m) => m.decode(bytes)), 'PNG decode');
    const frames = pngFrames(bytes);
    return frames > 1 ? { ...img, notes: [`first frame of ${frames}`] } : img;
  },
  async encode(img) {
    return (await encodePng(img)).bytes;
  },
  encodeLean: (img) => encodePngLean(img),
  defaults: PNG_OPTIONS,
};

export const instances = [dec, oxipng, imagequant];
