// PNG: squoosh_png decoder; encoder = libimagequant palette then OxiPNG, or lossless OxiPNG when
// the palette would hurt.
import { PNG_PALETTE_MAX_PIXELS } from '../../src/codecs/table.js';
import type { Codec, Raster } from '../../src/codecs/types.js';
import { call, checkRaster, Lazy, ownBytes, releaseGrown, wasmBindgen } from './wasm.js';

/**
 * PNG rule. libimagequant is asked for quality min 65 / target 80 (its 0-100 scale, derived from
 * the mean square error of the remapped image, the same scale as pngquant's --quality 65-80), at
 * speed 4 with full Floyd-Steinberg dithering (what sharp's palette:true uses: effort 7 = speed 4,
 * dither 1.0). It picks the fewest colours (<= 256, alpha kept in the palette) that reach the
 * target. When even 256 colours cannot reach the minimum, libimagequant reports QualityTooLow and
 * the palette would visibly hurt (typically photos with smooth gradients or a soft alpha ramp):
 * then the image is written losslessly with OxiPNG instead. Both paths end in OxiPNG level 2.
 * Above PNG_PALETTE_MAX_PIXELS the palette is not tried: libimagequant holds up to ~72 bytes per
 * pixel, which would put a large PNG over any reasonable memory budget.
 */
export const PNG_OPTIONS = {
  minQuality: 65,
  targetQuality: 80,
  speed: 4,
  dithering: 1.0,
  oxipngLevel: 2,
  /** lets OxiPNG change the colour of fully transparent pixels (invisible) */
  optimiseAlpha: true,
};

export interface PngEncodeReport {
  bytes: Uint8Array;
  mode: 'palette' | 'lossless';
  /** libimagequant's achieved quality (0-100) for the palette, null when not reached */
  quality: number | null;
  colours: number | null;
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
  encode_palette_to_png(indices: Uint8Array, palette: unknown[], width: number, height: number): Uint8Array;
}

const dec = new Lazy('png-dec', () => wasmBindgen<SquooshPng>('@jsquash/png/codec/pkg/squoosh_png.js', '@jsquash/png/codec/pkg/squoosh_png_bg.wasm', false));
const oxipng = new Lazy('oxipng', () => wasmBindgen<SquooshOxipng>('@jsquash/oxipng/codec/pkg/squoosh_oxipng.js', '@jsquash/oxipng/codec/pkg/squoosh_oxipng_bg.wasm', false));
const imagequant = new Lazy('imagequant', () => wasmBindgen<LibImageQuant>('libimagequant-wasm/wasm/libimagequant_wasm.js', 'libimagequant-wasm/wasm/libimagequant_wasm_bg.wasm', true));

export async function encodePng(image: Raster): Promise<PngEncodeReport> {
  const o = PNG_OPTIONS;
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
        if (/QualityTooLow/i.test(String(err))) return null; // the rule: fall back to lossless
        throw err;
      }
      r.setDithering(o.dithering);
      const colours = r.getPalette();
      const indices = r.getPaletteIndices(data, width, height);
      const quality = Math.round(r.getQuantizationQuality() * 100);
      return { png: liq.encode_palette_to_png(indices, colours, width, height), quality, colours: colours.length };
    } finally {
      r?.free();
      q.free();
    }
  });
  releaseGrown(); // the quantiser's memory, before OxiPNG takes its own
  if (palette) {
    const bytes = await call(oxipng, 'PNG encode', (m) => m.optimise(palette.png, o.oxipngLevel, false, o.optimiseAlpha));
    return { bytes: ownBytes(bytes), mode: 'palette', quality: palette.quality, colours: palette.colours };
  }
  const bytes = await call(oxipng, 'PNG encode', (m) => m.optimise_raw(data, width, height, o.oxipngLevel, false, o.optimiseAlpha));
  return { bytes: ownBytes(bytes), mode: 'lossless', quality: null, colours: null };
}

export const png: Codec = {
  async decode(bytes) {
    return checkRaster(await call(dec, 'PNG decode', (m) => m.decode(bytes)), 'PNG decode');
  },
  async encode(img) {
    return (await encodePng(img)).bytes;
  },
  defaults: PNG_OPTIONS,
};

export const instances = [dec, oxipng, imagequant];
