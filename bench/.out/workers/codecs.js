import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { detectFormat, jpegHasEnd, readExifOrientation } from "../src/codecs/sniff.js";
class CodecError extends Error {
  name = "CodecError";
}
const MOZJPEG_OPTIONS = {
  quality: 50,
  baseline: true,
  arithmetic: false,
  progressive: false,
  optimize_coding: true,
  smoothing: 0,
  color_space: 3,
  // YCbCr
  quant_table: 3,
  trellis_multipass: false,
  trellis_opt_zero: false,
  trellis_opt_table: false,
  trellis_loops: 1,
  auto_subsample: true,
  chroma_subsample: 2,
  separate_chroma_quality: false,
  chroma_quality: 50
};
const WEBP_OPTIONS = {
  quality: 50,
  target_size: 0,
  target_PSNR: 0,
  method: 4,
  sns_strength: 50,
  filter_strength: 60,
  filter_sharpness: 0,
  filter_type: 1,
  partitions: 0,
  segments: 4,
  pass: 1,
  show_compressed: 0,
  preprocessing: 0,
  autofilter: 0,
  partition_limit: 0,
  alpha_compression: 1,
  alpha_filtering: 1,
  alpha_quality: 100,
  lossless: 0,
  exact: 0,
  image_hint: 0,
  emulate_jpeg_size: 0,
  thread_level: 0,
  low_memory: 0,
  near_lossless: 100,
  use_delta_palette: 0,
  use_sharp_yuv: 0
};
const PNG_OPTIONS = {
  minQuality: 65,
  targetQuality: 80,
  speed: 4,
  dithering: 1,
  oxipngLevel: 2,
  /** lets OxiPNG change the colour of fully transparent pixels (invisible) */
  optimiseAlpha: true
};
const require2 = createRequire(import.meta.url);
const compiled = /* @__PURE__ */ new Map();
function wasmModule(spec) {
  let m = compiled.get(spec);
  if (!m) {
    m = new WebAssembly.Module(readFileSync(require2.resolve(spec)));
    compiled.set(spec, m);
  }
  return m;
}
if (typeof globalThis.ImageData === "undefined") {
  globalThis.ImageData = class ImageData {
    constructor(data, width, height) {
      this.data = data;
      this.width = width;
      this.height = height;
    }
    data;
    width;
    height;
  };
}
const codecOutput = [];
const capture = (line) => {
  if (codecOutput.length < 20) codecOutput.push(String(line));
};
function quietly(fn) {
  const c = console;
  const saved = { log: c.log, warn: c.warn, error: c.error, info: c.info, debug: c.debug };
  c.log = c.warn = c.error = c.info = c.debug = capture;
  try {
    return fn();
  } finally {
    Object.assign(c, saved);
  }
}
class Lazy {
  constructor(make) {
    this.make = make;
  }
  make;
  value;
  generation = 0;
  get() {
    this.value ??= this.make(this.generation).catch((err) => {
      this.value = void 0;
      throw err;
    });
    return this.value;
  }
  /** Drops the instance (after an abort or trap its memory may be inconsistent). */
  reset() {
    this.value = void 0;
    this.generation++;
  }
}
async function emscripten(glue, wasm) {
  const factory = (await import(pathToFileURL(require2.resolve(glue)).href)).default;
  const module = wasmModule(wasm);
  return factory({
    noInitialRun: true,
    print: capture,
    printErr: capture,
    instantiateWasm(imports, done) {
      const instance = new WebAssembly.Instance(module, imports);
      done(instance);
      return instance.exports;
    }
  });
}
async function wasmBindgen(glue, wasm, generation, objectInit) {
  const url = pathToFileURL(require2.resolve(glue)).href + (generation ? `?generation=${generation}` : "");
  const mod = await import(url);
  const module = wasmModule(wasm);
  quietly(() => mod.initSync(objectInit ? { module } : module));
  return mod;
}
const jpegDec = new Lazy(() => emscripten("@jsquash/jpeg/codec/dec/mozjpeg_dec.js", "@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm"));
const jpegEnc = new Lazy(() => emscripten("@jsquash/jpeg/codec/enc/mozjpeg_enc.js", "@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm"));
const webpDec = new Lazy(() => emscripten("@jsquash/webp/codec/dec/webp_dec.js", "@jsquash/webp/codec/dec/webp_dec.wasm"));
const webpEnc = new Lazy(() => {
  const simd = WebAssembly.validate(readFileSync(require2.resolve("@jsquash/webp/codec/enc/webp_enc_simd.wasm")));
  const name = simd ? "webp_enc_simd" : "webp_enc";
  return emscripten(`@jsquash/webp/codec/enc/${name}.js`, `@jsquash/webp/codec/enc/${name}.wasm`);
});
const pngCodec = new Lazy((g) => wasmBindgen("@jsquash/png/codec/pkg/squoosh_png.js", "@jsquash/png/codec/pkg/squoosh_png_bg.wasm", g, false));
const oxipng = new Lazy((g) => wasmBindgen("@jsquash/oxipng/codec/pkg/squoosh_oxipng.js", "@jsquash/oxipng/codec/pkg/squoosh_oxipng_bg.wasm", g, false));
const imagequant = new Lazy((g) => wasmBindgen("libimagequant-wasm/wasm/libimagequant_wasm.js", "libimagequant-wasm/wasm/libimagequant_wasm_bg.wasm", g, true));
async function call(lazy, what, fn) {
  const m = await lazy.get();
  codecOutput.length = 0;
  try {
    return quietly(() => fn(m));
  } catch (err) {
    if (err instanceof CodecError) throw err;
    lazy.reset();
    const detail = codecOutput.at(-1) ?? (err instanceof Error ? err.message : typeof err === "string" ? err : "");
    throw new CodecError(`${what} failed${detail ? `: ${detail.slice(0, 200)}` : ""}`);
  }
}
function checkRaster(img, what) {
  if (!img || !(img.width > 0) || !(img.height > 0) || img.data.length !== img.width * img.height * 4) {
    throw new CodecError(`${what} failed: ${codecOutput.at(-1) ?? "no image"}`);
  }
  return { data: img.data, width: img.width, height: img.height };
}
function ownBytes(b) {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer ? b : b.slice();
}
async function encodePng(image) {
  const o = PNG_OPTIONS;
  const { width, height, data } = image;
  const palette = await call(imagequant, "PNG palette reduction", (liq) => {
    const q = new liq.ImageQuantizer();
    let r;
    try {
      q.setQuality(o.minQuality, o.targetQuality);
      q.setSpeed(o.speed);
      try {
        r = q.quantizeImage(data, width, height);
      } catch (err) {
        if (/QualityTooLow/i.test(String(err))) return null;
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
  if (palette) {
    const bytes2 = await call(oxipng, "PNG encode", (m) => m.optimise(palette.png, o.oxipngLevel, false, o.optimiseAlpha));
    return { bytes: ownBytes(bytes2), mode: "palette", quality: palette.quality, colours: palette.colours };
  }
  const bytes = await call(oxipng, "PNG encode", (m) => m.optimise_raw(data, width, height, o.oxipngLevel, false, o.optimiseAlpha));
  return { bytes: ownBytes(bytes), mode: "lossless", quality: null, colours: null };
}
const CODECS = {
  jpeg: {
    format: "jpeg",
    mime: "image/jpeg",
    extension: "jpg",
    detect: (b) => detectFormat(b) === "jpeg",
    orientation: readExifOrientation,
    async decode(bytes) {
      if (!jpegHasEnd(bytes)) throw new CodecError("JPEG decode failed: truncated (no end-of-image marker)");
      const img = checkRaster(await call(jpegDec, "JPEG decode", (m) => m.decode(bytes, false)), "JPEG decode");
      const cut = codecOutput.find((l) => /premature end/i.test(l));
      if (cut) throw new CodecError(`JPEG decode failed: truncated (${cut})`);
      return img;
    },
    async encode(img, overrides) {
      const opts = { ...MOZJPEG_OPTIONS, ...overrides?.quality ? { quality: overrides.quality, chroma_quality: overrides.quality } : {} };
      return ownBytes(await call(jpegEnc, "JPEG encode", (m) => m.encode(img.data, img.width, img.height, opts)));
    },
    defaults: MOZJPEG_OPTIONS
  },
  png: {
    format: "png",
    mime: "image/png",
    extension: "png",
    detect: (b) => detectFormat(b) === "png",
    orientation: () => 1,
    async decode(bytes) {
      return checkRaster(await call(pngCodec, "PNG decode", (m) => m.decode(bytes)), "PNG decode");
    },
    async encode(img) {
      return (await encodePng(img)).bytes;
    },
    defaults: PNG_OPTIONS
  },
  webp: {
    format: "webp",
    mime: "image/webp",
    extension: "webp",
    detect: (b) => detectFormat(b) === "webp",
    orientation: () => 1,
    async decode(bytes) {
      return checkRaster(await call(webpDec, "WebP decode", (m) => m.decode(bytes)), "WebP decode");
    },
    async encode(img) {
      const out = await call(webpEnc, "WebP encode", (m) => m.encode(img.data, img.width, img.height, WEBP_OPTIONS));
      if (!out) throw new CodecError(`WebP encode failed: ${codecOutput.at(-1) ?? "no output"}`);
      return ownBytes(out);
    },
    defaults: WEBP_OPTIONS
  }
};
function codecFor(bytes) {
  for (const row of Object.values(CODECS)) if (row.detect(bytes)) return row;
  return null;
}
async function warmUp() {
  await Promise.all([jpegDec, jpegEnc, webpDec, webpEnc, pngCodec, oxipng, imagequant].map((l) => l.get()));
}
function applyOrientation(image, orientation) {
  if (orientation < 2 || orientation > 8) return image;
  const { width: w, height: h } = image;
  const src = new Uint32Array(image.data.buffer.slice(image.data.byteOffset, image.data.byteOffset + w * h * 4));
  const swap = orientation >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const dst = new Uint32Array(w * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let dx, dy;
      switch (orientation) {
        case 2:
          dx = w - 1 - x;
          dy = y;
          break;
        case 3:
          dx = w - 1 - x;
          dy = h - 1 - y;
          break;
        case 4:
          dx = x;
          dy = h - 1 - y;
          break;
        case 5:
          dx = y;
          dy = x;
          break;
        case 6:
          dx = h - 1 - y;
          dy = x;
          break;
        case 7:
          dx = h - 1 - y;
          dy = w - 1 - x;
          break;
        default:
          dx = y;
          dy = w - 1 - x;
          break;
      }
      dst[dy * ow + dx] = src[row + x];
    }
  }
  return { data: new Uint8ClampedArray(dst.buffer), width: ow, height: oh };
}
export {
  CODECS,
  CodecError,
  MOZJPEG_OPTIONS,
  PNG_OPTIONS,
  WEBP_OPTIONS,
  applyOrientation,
  codecFor,
  encodePng,
  warmUp
};
//# sourceMappingURL=codecs.js.map
