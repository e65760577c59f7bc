// The codec registry and the header sniffers, run in the test's own thread (no pool): format
// detection, header dimensions, EXIF orientation (incl. hostile input), orientation applied to
// pixels, metadata stripping, MozJPEG quantisation tables at quality 50, and the PNG palette rule.
// Every encoder output is decoded again with the @jsquash decoders and its size checked.
import { describe, expect, it } from 'vitest';
import { detectFormat, jpegHasEnd, jpegHasExif, readDimensions, readExifOrientation, stripMetadata } from '../src/codecs/sniff.js';
import { fixture, independentDecode } from './helpers/decode.js';
import { embedJpegIcc, readJpegIcc, stripJpeg } from '../src/codecs/jpeg.js';
import { embedPngIcc, readPngIcc } from '../src/codecs/png.js';
import { embedWebpIcc, readWebpIcc } from '../src/codecs/webp.js';
import { applyOrientation, CODECS, CodecError, codecFor, encodePng, MOZJPEG_OPTIONS, PNG_OPTIONS, resize } from '../workers/codecs.js';
import { boxShrink } from '../workers/codecs/resize.js';
import { boxShrunk, preShrinkFactor } from '../src/codecs/plan.js';
import { ssim } from '../workers/codecs/ssim.js';

// ---------------------------------------------------------------------------------------------
// JPEG helpers shared by the quantisation-table tests.

/** Natural (row-major) index of the k-th coefficient in zigzag order (ITU T.81 figure A.6). */
const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/** The DQT tables of a JPEG, in natural order, keyed by table id; plus the frame marker. */
/** The first component's sampling factors (H << 4 | V) in the frame header. */
function jpegLumaSampling(b: Uint8Array): number | undefined {
  for (let i = 2; i + 12 <= b.length && b[i] === 0xff; i += 2 + ((b[i + 2]! << 8) | b[i + 3]!)) {
    if (b[i + 1] === 0xc0 || b[i + 1] === 0xc1 || b[i + 1] === 0xc2) return b[i + 11];
  }
  return undefined;
}

function jpegTables(b: Uint8Array): { tables: Map<number, number[]>; sof: number[] } {
  const tables = new Map<number, number[]>();
  const sof: number[] = [];
  let i = 2;
  while (i + 4 <= b.length && b[i] === 0xff) {
    const marker = b[i + 1]!;
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    if (marker === 0xdb) {
      let p = i + 4;
      while (p < i + 2 + len) {
        const pq = b[p]! >> 4;
        const id = b[p]! & 15;
        p++;
        const natural = new Array<number>(64);
        for (let k = 0; k < 64; k++) {
          natural[ZIGZAG[k]!] = pq ? (b[p + 2 * k]! << 8) | b[p + 2 * k + 1]! : b[p + k]!;
        }
        p += pq ? 128 : 64;
        tables.set(id, natural);
      }
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) sof.push(marker);
    if (marker === 0xda) break;
    i += 2 + len;
  }
  return { tables, sof };
}

/**
 * MozJPEG's base table 3 (quant_table: 3, its default; "ImageMagick table by N. Robidoux" in
 * mozjpeg's jcparam.c), natural order. MozJPEG uses the same values for luma and chroma.
 */
const MOZJPEG_TABLE_3 = [
  16, 16, 16, 18, 25, 37, 56, 85,
  16, 17, 20, 27, 34, 40, 53, 75,
  16, 20, 24, 31, 43, 62, 91, 135,
  18, 27, 31, 40, 53, 74, 106, 156,
  25, 34, 43, 53, 69, 94, 131, 189,
  37, 40, 62, 74, 94, 124, 169, 238,
  56, 53, 91, 106, 131, 169, 226, 311,
  85, 75, 135, 156, 189, 238, 311, 418,
];

/** libjpeg's jpeg_quality_scaling + jpeg_add_quant_table (force_baseline clamps to 255). */
function scaledTable(base: number[], quality: number, forceBaseline: boolean): number[] {
  const scale = quality < 50 ? Math.floor(5000 / quality) : 200 - quality * 2;
  return base.map((v) => {
    let t = Math.floor((v * scale + 50) / 100);
    if (t <= 0) t = 1;
    if (t > 32767) t = 32767;
    if (forceBaseline && t > 255) t = 255;
    return t;
  });
}

// ---------------------------------------------------------------------------------------------

describe('detectFormat / readDimensions', () => {
  const cases = [
    ['rocket-small.jpg', 'jpeg'],
    ['coffee-orient6.jpg', 'jpeg'],
    ['Kite.webp', 'webp'],
    ['chelsea.png', 'png'],
    ['astronaut-alpha.png', 'png'],
  ] as const;

  it.each(cases)('%s is %s and its header declares the decoded size', async (name, format) => {
    const bytes = fixture(name);
    expect(detectFormat(bytes)).toBe(format);
    const decoded = await independentDecode(bytes);
    expect(readDimensions(bytes, format)).toEqual({ width: decoded.width, height: decoded.height });
  });

  it('refuses non-images', () => {
    expect(detectFormat(new TextEncoder().encode('<!doctype html><html></html>'))).toBeNull();
    expect(detectFormat(new Uint8Array())).toBeNull();
    expect(detectFormat(new TextEncoder().encode('RIFF\0\0\0\0WAVEfmt '))).toBeNull();
    expect(detectFormat(new Uint8Array([0xff, 0xd8]))).toBeNull();
  });

  it('reads a declared size without pixel data (PNG 30000x30000, WebP VP8L and VP8X)', () => {
    expect(readDimensions(pngHeader(30000, 30000), 'png')).toEqual({ width: 30000, height: 30000 });
    const vp8l = new Uint8Array(30);
    vp8l.set(new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8L'));
    vp8l[20] = 0x2f;
    const bits = (4000 - 1) | ((3000 - 1) << 14);
    new DataView(vp8l.buffer).setUint32(21, bits, true);
    expect(readDimensions(vp8l, 'webp')).toEqual({ width: 4000, height: 3000 });
    const vp8x = new Uint8Array(30);
    vp8x.set(new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8X'));
    vp8x.set([0x3f, 0x9c, 0x00], 24); // 40000 - 1 = 0x9c3f
    vp8x.set([0x1f, 0x4e, 0x00], 27); // 20000 - 1 = 0x4e1f
    expect(readDimensions(vp8x, 'webp')).toEqual({ width: 40000, height: 20000 });
  });

  it('never throws on any prefix of a real file, and never reports a wrong size', async () => {
    for (const [name, format] of cases) {
      const bytes = fixture(name);
      const full = readDimensions(bytes, format);
      for (let n = 0; n < Math.min(bytes.length, 4096); n += 7) {
        const got = readDimensions(bytes.subarray(0, n), format);
        if (got) expect(got).toEqual(full);
      }
    }
  });
});

describe('readExifOrientation', () => {
  it('reads the corpus files', () => {
    expect(readExifOrientation(fixture('coffee-orient6.jpg'))).toBe(6);
    expect(readExifOrientation(fixture('rocket-small.jpg'))).toBe(1);
  });

  it.each([true, false])('reads every value 1..8 in both byte orders (little-endian: %s)', (le) => {
    for (let o = 1; o <= 8; o++) expect(readExifOrientation(jpegWithOrientation(fixture('rocket-small.jpg'), o, le))).toBe(o);
  });

  it('returns a clean 1..8 for hostile input: truncated, mutated, absurd offsets and counts', () => {
    const base = jpegWithOrientation(fixture('rocket-small.jpg'), 6, false);
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let n = 0; n < 120; n++) expect(readExifOrientation(base.subarray(0, n))).toBeGreaterThanOrEqual(1);
    for (let iter = 0; iter < 3000; iter++) {
      const b = base.slice(0, 200);
      const flips = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < flips; k++) b[Math.floor(rand() * 60)] = Math.floor(rand() * 256);
      const o = readExifOrientation(b);
      expect(o >= 1 && o <= 8).toBe(true);
    }
    const absurd = base.slice();
    // SOI(2) APP1 marker+length(4) "Exif\0\0"(6): the TIFF header starts at 12 (big-endian here)
    absurd.set([0x7f, 0xff, 0xff, 0xf0], 16); // IFD0 offset far past the end
    expect(readExifOrientation(absurd)).toBe(1);
    const count = base.slice();
    count.set([0xff, 0xff], 20); // 65535 IFD entries in a 26-byte segment
    count.set([0x01, 0x10], 22); // and the one real entry is not Orientation
    expect(readExifOrientation(count)).toBe(1);
    expect(readExifOrientation(base)).toBe(6);
  });
});

describe('applyOrientation', () => {
  // The EXIF table: where the stored 0th row and 0th column end up when displayed.
  const TABLE: Record<number, [row0: 'top' | 'bottom' | 'left' | 'right', col0: 'top' | 'bottom' | 'left' | 'right']> = {
    1: ['top', 'left'], 2: ['top', 'right'], 3: ['bottom', 'right'], 4: ['bottom', 'left'],
    5: ['left', 'top'], 6: ['right', 'top'], 7: ['right', 'bottom'], 8: ['left', 'bottom'],
  };

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('orientation %i moves every pixel where the EXIF table says', (o) => {
    const w = 5;
    const h = 3;
    const data = new Uint8ClampedArray(w * h * 4);
    for (let i = 0; i < w * h; i++) data.set([i, 255 - i, i * 3, 200], i * 4);
    const out = applyOrientation({ data, width: w, height: h }, o);
    const [row0, col0] = TABLE[o]!;
    const sideways = row0 === 'left' || row0 === 'right';
    expect([out.width, out.height]).toEqual(sideways ? [h, w] : [w, h]);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        let x: number, y: number;
        if (!sideways) {
          y = row0 === 'top' ? r : h - 1 - r;
          x = col0 === 'left' ? c : w - 1 - c;
        } else {
          x = row0 === 'left' ? r : h - 1 - r;
          y = col0 === 'top' ? c : w - 1 - c;
        }
        const at = (y * out.width + x) * 4;
        expect(Array.from(out.data.subarray(at, at + 4))).toEqual(Array.from(data.subarray((r * w + c) * 4, (r * w + c) * 4 + 4)));
      }
    }
  });
});

describe('resize: box pre-shrink then Lanczos3', () => {
  it('picks the largest box factor that leaves Lanczos3 at least 1.5x to do', () => {
    expect(preShrinkFactor({ width: 6000, height: 4000 }, { width: 1600, height: 1067 })).toBe(2); // 3.75x
    expect(preShrinkFactor({ width: 640, height: 427 }, { width: 320, height: 214 })).toBe(1); // 2x
    expect(preShrinkFactor({ width: 1500, height: 937 }, { width: 1000, height: 625 })).toBe(1);
    expect(preShrinkFactor({ width: 8000, height: 6000 }, { width: 100, height: 75 })).toBe(53); // 80x
    expect(boxShrunk({ width: 7, height: 5 }, 3)).toEqual({ width: 3, height: 2 });
  });

  it('averages each block, partial edge blocks over the pixels they have', () => {
    const w = 5;
    const h = 3;
    const data = new Uint8ClampedArray(w * h * 4);
    for (let i = 0; i < w * h; i++) data.set([i * 10, 250 - i * 10, 7, 255], i * 4);
    const out = boxShrink({ data, width: w, height: h, opaque: true }, 2);
    expect([out.width, out.height, out.opaque]).toEqual([3, 2, true]);
    const px = (x: number, y: number) => Array.from(out.data.subarray((y * 3 + x) * 4, (y * 3 + x) * 4 + 4));
    expect(px(0, 0)).toEqual([30, 220, 7, 255]); // pixels 0, 1, 5, 6
    expect(px(2, 0)).toEqual([65, 185, 7, 255]); // pixels 4, 9 (right edge)
    expect(px(1, 1)).toEqual([125, 125, 7, 255]); // pixels 12, 13 (bottom edge)
    expect(px(2, 1)).toEqual([140, 110, 7, 255]); // pixel 14 alone
  });

  it('weights colour by alpha: transparent pixels lend no colour to a block', () => {
    const data = new Uint8ClampedArray([255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0]); // red, then 3 clear
    const out = boxShrink({ data, width: 2, height: 2 }, 2);
    expect(Array.from(out.data)).toEqual([255, 0, 0, 64]);
    expect(out.opaque).toBeUndefined();
  });

  it('a 3000x2000 photo to 800x533 (box 2, then Lanczos3) matches sharp\'s Lanczos3 and stays opaque', async () => {
    const { default: sharp } = await import('sharp');
    const jpeg = await sharp(fixture('rocket-small.jpg')).resize(3000, 2000, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
    const image = await CODECS.jpeg.decode(new Uint8Array(jpeg));
    const out = await resize(image, 800, 533);
    expect([out.width, out.height, out.opaque]).toEqual([800, 533, true]);
    const ref = await sharp(jpeg).resize(800, 533, { fit: 'fill', kernel: 'lanczos3' }).ensureAlpha().raw().toBuffer();
    let diff = 0;
    for (let i = 0; i < ref.length; i++) {
      if (i % 4 === 3) expect(out.data[i]).toBe(255);
      else diff += Math.abs(out.data[i]! - ref[i]!);
    }
    expect(diff / (ref.length * 0.75)).toBeLessThan(2);
  });
});

describe('stripMetadata', () => {
  it('removes the Exif segment from a JPEG and keeps the image', async () => {
    const src = fixture('coffee-orient6.jpg');
    expect(jpegHasExif(src)).toBe(true);
    const out = stripMetadata(src, 'jpeg')!;
    expect(jpegHasExif(out)).toBe(false);
    expect(out.length).toBeLessThan(src.length);
    expect(jpegHasEnd(out)).toBe(true);
    const a = await independentDecode(src);
    const b = await independentDecode(out);
    expect([b.width, b.height]).toEqual([a.width, a.height]);
    expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true);
  });

  it('removes PNG text and eXIf chunks', async () => {
    const src = fixture('chelsea.png');
    const withText = insertPngChunk(src, 'tEXt', new TextEncoder().encode('GPS\0 48.85N 2.35E'));
    const out = stripMetadata(withText, 'png')!;
    expect(Buffer.from(out).includes(Buffer.from('tEXt'))).toBe(false);
    expect(out.length).toBeLessThanOrEqual(src.length);
    expect((await independentDecode(out)).width).toBe(451);
  });

  it('removes WebP EXIF and XMP chunks and clears their VP8X flags', async () => {
    const src = fixture('Kite.webp');
    const withExif = webpWithExif(src);
    expect(Buffer.from(withExif).includes(Buffer.from('EXIF'))).toBe(true);
    const out = stripMetadata(withExif, 'webp')!;
    expect(Buffer.from(out).includes(Buffer.from('EXIF'))).toBe(false);
    expect(out[20]! & 0x0c).toBe(0);
    expect(new DataView(out.buffer, out.byteOffset).getUint32(4, true)).toBe(out.length - 8);
    const img = await independentDecode(out);
    expect([img.width, img.height]).toEqual([1500, 937]);
  });
});

describe('JPEG row (MozJPEG)', () => {
  it('encodes at quality 50 with MozJPEG table 3 scaled by libjpeg, sequential baseline', async () => {
    const raster = await CODECS.jpeg.decode(fixture('rocket-small.jpg'));
    for (const quality of [50, 75]) {
      const out = await CODECS.jpeg.encode(raster, { quality });
      const decoded = await independentDecode(out);
      expect([decoded.width, decoded.height]).toEqual([640, 427]);
      const { tables, sof } = jpegTables(out);
      expect(sof).toEqual([0xc0]); // SOF0: baseline sequential, not progressive (SOF2)
      const expected = scaledTable(MOZJPEG_TABLE_3, quality, MOZJPEG_OPTIONS.baseline);
      expect(tables.get(0)).toEqual(expected);
      expect(tables.get(1)).toEqual(expected);
    }
  });

  it('the default quality is 50', () => {
    expect(CODECS.jpeg.defaults).toMatchObject({ quality: 50, progressive: false, trellis_loops: 1 });
  });

  it('refuses a truncated JPEG cleanly and keeps working', async () => {
    const src = fixture('rocket-small.jpg');
    await expect(CODECS.jpeg.decode(src.subarray(0, src.length >> 1))).rejects.toThrow(/truncated/);
    // cut inside the scan but closed with an EOI marker: libjpeg would pad it with grey
    const bogus = new Uint8Array([...src.subarray(0, 20000), 0xff, 0xd9]);
    await expect(CODECS.jpeg.decode(bogus)).rejects.toThrow(/truncated/);
    // not a JPEG past its first bytes
    const garbage = new Uint8Array([0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x09, ...new Uint8Array(64), 0xff, 0xda, 0x00, 0x02, 0xff, 0xd9]);
    await expect(CODECS.jpeg.decode(garbage)).rejects.toBeInstanceOf(CodecError);
    const again = await CODECS.jpeg.decode(src);
    expect([again.width, again.height]).toEqual([640, 427]);
    // JPEG has no alpha: the decoder says so (the JPEG target then skips its flatten pass)...
    expect(again.opaque).toBe(true);
    expect(again.data.every((v, i) => i % 4 !== 3 || v === 255)).toBe(true);
    // ...and an orientation change keeps saying so
    expect(applyOrientation(again, 6).opaque).toBe(true);
  });
});

describe('JPEG encoder (MozJPEG built by wasm/mozjpeg, fed by rows)', () => {
  /** A smooth colour field with some texture: what a photo crop looks like to the encoder (its
   * gradients spread over at least 64 px, so a 3-row strip is not one sharp edge after another). */
  function field(width: number, height: number, grey = false) {
    const data = new Uint8ClampedArray(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        const r = 40 + (180 * x) / Math.max(64, width - 1) + 10 * Math.sin(y / 3);
        data[i] = r;
        data[i + 1] = grey ? r : 200 - (150 * y) / Math.max(64, height - 1);
        data[i + 2] = grey ? r : 90 + 60 * Math.cos((x + y) / 7);
        data[i + 3] = 255;
      }
    }
    return { data, width, height };
  }
  const meanDiff = (a: Uint8ClampedArray, b: Uint8Array | Uint8ClampedArray) => {
    let sum = 0;
    for (let i = 0; i < a.length; i++) if (i % 4 !== 3) sum += Math.abs(a[i]! - b[i]!);
    return sum / ((a.length / 4) * 3);
  };

  it('encodes odd sizes, sequential and progressive, each decoded by an independent decoder', async () => {
    for (const [width, height] of [[1, 1], [17, 9], [4001, 3], [3, 33]] as const) {
      const img = field(width, height);
      for (const progressive of [false, true]) {
        const out = await CODECS.jpeg.encode(img, { quality: 75, progressive });
        const decoded = await independentDecode(out);
        const what = `${width}x${height} ${progressive ? 'progressive' : 'sequential'}`;
        expect([decoded.width, decoded.height], what).toEqual([width, height]);
        expect(jpegTables(out).sof, what).toEqual([progressive ? 0xc2 : 0xc0]);
        expect(meanDiff(img.data, decoded.data), what).toBeLessThan(6);
      }
    }
  });

  it('keeps a greyscale-looking image grey, and writes the subsampling cjpeg picks for the quality', async () => {
    const grey = field(160, 96, true);
    const out = await CODECS.jpeg.encode(grey, { quality: 50 });
    const decoded = await independentDecode(out);
    expect([decoded.width, decoded.height]).toEqual([160, 96]);
    let chroma = 0;
    for (let i = 0; i < decoded.data.length; i += 4) chroma = Math.max(chroma, Math.abs(decoded.data[i]! - decoded.data[i + 1]!), Math.abs(decoded.data[i]! - decoded.data[i + 2]!));
    expect(chroma).toBeLessThanOrEqual(3);
    expect(meanDiff(grey.data, decoded.data)).toBeLessThan(6);
    // 4:2:0 below 80, 4:2:2 from 80, 4:4:4 from 90 (as @jsquash's encoder, cjpeg's auto subsampling)
    const photo = await CODECS.jpeg.decode(fixture('rocket-small.jpg'));
    for (const [quality, luma] of [[79, 0x22], [80, 0x21], [90, 0x11]] as const) {
      const bytes = await CODECS.jpeg.encode(photo, { quality });
      expect([(await independentDecode(bytes)).width], `q${quality}`).toEqual([640]);
      expect(jpegLumaSampling(bytes), `q${quality}`).toBe(luma);
    }
  });

  it('progressive output is smaller than sequential on a photo and decodes to the same picture', async () => {
    const photo = await CODECS.jpeg.decode(fixture('rocket-small.jpg'));
    const sequential = await CODECS.jpeg.encode(photo, { quality: 50 });
    const progressive = await CODECS.jpeg.encode(photo, { quality: 50, progressive: true });
    expect(progressive.length).toBeLessThan(sequential.length);
    const [a, b] = [await independentDecode(sequential), await independentDecode(progressive)];
    expect([b.width, b.height]).toEqual([640, 427]);
    expect(meanDiff(a.data as Uint8ClampedArray, b.data)).toBeLessThan(1);
  });

  it('refuses an empty, mismatched or too large raster with a clear error, and the next encode works', async () => {
    const { mozjpeg } = await import('../workers/codecs/mozjpeg.js');
    await expect(CODECS.jpeg.encode({ data: new Uint8ClampedArray(0), width: 0, height: 5 }, { quality: 50 })).rejects.toThrow(/JPEG encode failed: image is 0x5/);
    await expect(CODECS.jpeg.encode({ data: new Uint8ClampedArray(10), width: 2, height: 2 }, { quality: 50 })).rejects.toThrow(/does not match/);
    // beyond JPEG's 65500 px a side: refused inside the module (its error_exit throws to JavaScript),
    // and the instance it came from is dropped
    await CODECS.jpeg.encode(field(8, 8), { quality: 50 });
    const made = mozjpeg.made;
    const wide = { data: new Uint8ClampedArray(65501 * 4).fill(128), width: 65501, height: 1 };
    await expect(CODECS.jpeg.encode(wide, { quality: 50 })).rejects.toThrow(/JPEG encode failed: image too large for JPEG/);
    expect(mozjpeg.live).toBe(false);
    const out = await CODECS.jpeg.encode(field(17, 9), { quality: 50 });
    expect([(await independentDecode(out)).width]).toEqual([17]);
    expect(mozjpeg.made).toBe(made + 1);
  });
});

describe('PNG row (palette or lossless OxiPNG)', () => {
  it('palette-reduces a photo whose palette keeps SSIM >= 0.90', async () => {
    const raster = await independentDecode(fixture('chelsea.png'));
    const report = await encodePng(raster);
    expect(report.mode).toBe('palette');
    expect(report.ssim!).toBeGreaterThanOrEqual(PNG_OPTIONS.minSsim);
    expect(report.colours!).toBeLessThanOrEqual(256);
    const out = await independentDecode(report.bytes);
    expect([out.width, out.height]).toEqual([451, 300]);
    expect(report.bytes.length).toBeLessThan(fixture('chelsea.png').length);
  });

  it('keeps the palette of a soft alpha ramp libimagequant rates below 65 when its SSIM holds', async () => {
    // the old rule (libimagequant minimum quality 65) wrote this one losslessly, at 4.5x the bytes
    const raster = await independentDecode(fixture('astronaut-alpha.png'));
    const report = await encodePng(raster);
    expect(report.mode).toBe('palette');
    expect(report.quality!).toBeLessThan(65);
    expect(report.ssim!).toBeGreaterThanOrEqual(PNG_OPTIONS.minSsim);
    const out = await independentDecode(report.bytes);
    expect([out.width, out.height]).toEqual([512, 512]);
    expect(ssim(raster.data, out.data, 512, 512)).toBeCloseTo(report.ssim!, 3);
  });

  it('falls back to lossless when the palette\'s SSIM is below the threshold (generated smooth gradient)', async () => {
    const [w, h] = [256, 192];
    const data = new Uint8ClampedArray(w * h * 4);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data.set([(x / w) * 255, (y / h) * 255, 128 + 100 * Math.sin((x + y) / 45), 255], (y * w + x) * 4);
    }
    const report = await encodePng({ data, width: w, height: h });
    expect(report.mode).toBe('lossless');
    expect(report.ssim!).toBeLessThan(PNG_OPTIONS.minSsim); // the palette was made, measured and refused
    const out = await independentDecode(report.bytes);
    expect([out.width, out.height]).toEqual([w, h]);
    expect(Buffer.from(out.data).equals(Buffer.from(data))).toBe(true);
    // the same image with the threshold at 0 keeps its palette: the rule, not the quantiser, decided
    const palette = await encodePng({ data, width: w, height: h }, { ...PNG_OPTIONS, minSsim: 0 });
    expect(palette.mode).toBe('palette');
    const decoded = await independentDecode(palette.bytes);
    expect([decoded.width, decoded.height]).toEqual([w, h]);
  });

  it('SSIM: 1 for identical images, lower for noise, alpha errors count', () => {
    const [w, h] = [40, 30];
    const a = new Uint8ClampedArray(w * h * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 256));
    expect(ssim(a, a, w, h)).toBeCloseTo(1, 10);
    const noisy = a.map((v, i) => (i % 4 === 3 ? v : Math.max(0, Math.min(255, v + ((i * 7919) % 41) - 20))));
    expect(ssim(a, noisy, w, h)).toBeLessThan(0.99);
    const halfAlpha = a.map((v, i) => (i % 4 === 3 ? 128 : v));
    expect(ssim(a, halfAlpha, w, h)).toBeLessThan(0.9);
    expect(ssim(new Uint8ClampedArray(4 * 3 * 2).fill(9), new Uint8ClampedArray(4 * 3 * 2).fill(9), 3, 2)).toBeCloseTo(1, 10); // smaller than a window
  });

  it('keeps alpha exactly through the palette path', async () => {
    const w = 64;
    const h = 48;
    const data = new Uint8ClampedArray(w * h * 4);
    const colours = [[255, 0, 0, 255], [0, 128, 255, 128], [20, 200, 20, 0], [250, 250, 250, 64]];
    for (let i = 0; i < w * h; i++) data.set(colours[((i % w) >> 4) ^ ((Math.floor(i / w) >> 4) & 1)]!, i * 4);
    const report = await encodePng({ data, width: w, height: h });
    expect(report.mode).toBe('palette');
    const out = await independentDecode(report.bytes);
    for (let i = 0; i < w * h; i++) {
      expect(out.data[i * 4 + 3]).toBe(data[i * 4 + 3]);
      if (data[i * 4 + 3]! > 0) expect(Array.from(out.data.subarray(i * 4, i * 4 + 3))).toEqual(Array.from(data.subarray(i * 4, i * 4 + 3)));
    }
  });

  it('refuses a truncated PNG cleanly and keeps working', async () => {
    const src = fixture('chelsea.png');
    await expect(CODECS.png.decode(src.subarray(0, src.length >> 1))).rejects.toBeInstanceOf(CodecError);
    expect((await CODECS.png.decode(src)).width).toBe(451);
  });
});

describe('WebP row', () => {
  it('encodes at quality 50, decodable, smaller than the q90 source', async () => {
    const src = fixture('Kite.webp');
    const raster = await CODECS.webp.decode(src);
    const out = await CODECS.webp.encode(raster, { quality: 50 });
    expect(detectFormat(out)).toBe('webp');
    const decoded = await independentDecode(out);
    expect([decoded.width, decoded.height]).toEqual([1500, 937]);
    expect(out.length).toBeLessThan(src.length);
    expect(CODECS.webp.defaults).toMatchObject({ quality: 50, lossless: 0 });
  });

  it('refuses a truncated WebP cleanly and keeps working', async () => {
    const src = fixture('Kite.webp');
    await expect(CODECS.webp.decode(src.subarray(0, src.length >> 1))).rejects.toBeInstanceOf(CodecError);
    expect((await CODECS.webp.decode(src)).width).toBe(1500);
  });
});

describe('the table', () => {
  it('has one row per format whose detector picks its own files only', () => {
    expect(Object.keys(CODECS).sort()).toEqual(['avif', 'jpeg', 'png', 'webp']);
    expect(codecFor(fixture('rocket-small.jpg'))?.format).toBe('jpeg');
    expect(codecFor(fixture('chelsea.png'))?.format).toBe('png');
    expect(codecFor(fixture('Kite.webp'))?.format).toBe('webp');
    expect(codecFor(new TextEncoder().encode('<html>'))).toBeNull();
    for (const row of [CODECS.jpeg, CODECS.png, CODECS.webp]) expect(row.detect(fixture(row.format === 'png' ? 'chelsea.png' : row.format === 'webp' ? 'Kite.webp' : 'rocket-small.jpg'))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Builders for crafted inputs.

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A PNG signature and IHDR declaring width x height (8-bit RGBA), then a tiny IDAT and IEND. */
function pngHeader(width: number, height: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', new Uint8Array([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), pngChunk('IEND', new Uint8Array())];
  return new Uint8Array(Buffer.concat(parts));
}

function insertPngChunk(png: Uint8Array, type: string, data: Uint8Array): Uint8Array {
  const afterIhdr = 8 + 12 + 13;
  return new Uint8Array(Buffer.concat([png.subarray(0, afterIhdr), pngChunk(type, data), png.subarray(afterIhdr)]));
}

/** rocket-small.jpg with an APP1 Exif segment (IFD0 holding only Orientation) after SOI. */
function jpegWithOrientation(jpeg: Uint8Array, orientation: number, le: boolean): Uint8Array {
  const tiff = new Uint8Array(8 + 2 + 12 + 4);
  const dv = new DataView(tiff.buffer);
  tiff.set(le ? [0x49, 0x49] : [0x4d, 0x4d]);
  dv.setUint16(2, 42, le);
  dv.setUint32(4, 8, le);
  dv.setUint16(8, 1, le); // one entry
  dv.setUint16(10, 0x0112, le);
  dv.setUint16(12, 3, le); // SHORT
  dv.setUint32(14, 1, le);
  dv.setUint16(18, orientation, le);
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const seg = Buffer.concat([Buffer.from([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]), payload]);
  return new Uint8Array(Buffer.concat([jpeg.subarray(0, 2), seg, jpeg.subarray(2)]));
}

/** A simple-format (VP8) WebP rewrapped as VP8X with an EXIF chunk. */
function webpWithExif(webp: Uint8Array): Uint8Array {
  const dims = readDimensions(webp, 'webp')!;
  const vp8x = new Uint8Array(18);
  vp8x.set(new TextEncoder().encode('VP8X'));
  new DataView(vp8x.buffer).setUint32(4, 10, true);
  vp8x[8] = 0x08; // EXIF flag
  const w = dims.width - 1;
  const h = dims.height - 1;
  vp8x.set([w & 0xff, (w >> 8) & 0xff, (w >> 16) & 0xff, h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff], 12);
  const exifData = new TextEncoder().encode('MM\0*\0\0\0\x08\0\0');
  const exif = new Uint8Array(8 + exifData.length);
  exif.set(new TextEncoder().encode('EXIF'));
  new DataView(exif.buffer).setUint32(4, exifData.length, true);
  exif.set(exifData, 8);
  const body = Buffer.concat([vp8x, webp.subarray(12), exif]);
  const head = new Uint8Array(12);
  head.set(new TextEncoder().encode('RIFF'));
  new DataView(head.buffer).setUint32(4, body.length + 4, true);
  head.set(new TextEncoder().encode('WEBP'), 8);
  return new Uint8Array(Buffer.concat([head, body]));
}

describe('embind glue', () => {
  it('loads every codec glue that has the byte-at-a-time copy with the faster one', async () => {
    const { patchedGlue } = await import('../workers/codecs.js');
    await CODECS.webp.encode(await CODECS.jpeg.decode(fixture('rocket-small.jpg')), { quality: 50 });
    // If a codec release drops the pattern this fails: check bench/diag/embind-copy.ts again.
    // (JPEG is libjpeg-turbo and MozJPEG as plain WASI modules, no embind glue: WebP's encoder)
    expect([...patchedGlue].some((g) => /^@jsquash\/webp\/codec\/enc\/webp_enc(_simd)?\.js$/.test(g))).toBe(true);
  });

  it('loads the wasm-bindgen glue so that a dropped instance is replaced, not kept (its init guard removed)', async () => {
    const { patchedGlue, releaseGrown, instanceStats } = await import('../workers/codecs.js');
    await CODECS.png.encode(await CODECS.png.decode(fixture('chelsea.png')), { quality: 50 });
    expect([...patchedGlue]).toEqual(expect.arrayContaining(['@jsquash/png/codec/pkg/squoosh_png.js', '@jsquash/oxipng/codec/pkg/squoosh_oxipng.js', 'libimagequant-wasm/wasm/libimagequant_wasm.js']));
    const made = instanceStats().made['png-dec']!;
    releaseGrown(0); // drop every instance
    expect(instanceStats().live['png-dec']).toBeUndefined();
    expect((await CODECS.png.decode(fixture('chelsea.png'))).width).toBe(451);
    expect(instanceStats().made['png-dec']).toBe(made + 1);
  });

  it("gives a dropped wasm-bindgen instance's grown memory back to the system (the glue no longer holds it)", async () => {
    const { releaseGrown, instanceStats } = await import('../workers/codecs.js');
    const { collectGarbage } = await import('../src/runtime/collect-garbage.js');
    const sharp = (await import('sharp')).default;
    const [width, height] = [2500, 2000];
    const noise = Buffer.alloc(width * height * 3);
    for (let i = 0, s = 1; i < noise.length; i++) noise[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    let png: Uint8Array | null = new Uint8Array(await sharp(noise, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer());
    releaseGrown(0);
    expect((await CODECS.png.decode(png)).width).toBe(width);
    png = null;
    const grown = instanceStats().live['png-dec']!;
    expect(grown).toBeGreaterThan(40 * 2 ** 20);
    collectGarbage();
    const before = process.memoryUsage().rss;
    releaseGrown(0);
    collectGarbage();
    expect(before - process.memoryUsage().rss).toBeGreaterThan(grown / 2);
  });
});

describe('the table answers for every part of the service', () => {
  it('gives storage its keys and content types, and the image route its MIME types', async () => {
    const { blobKey, BLOB_KEY, contentTypeOf } = await import('../src/storage/types.js');
    const { ROWS } = await import('../src/codecs/table.js');
    const hash = 'a'.repeat(64);
    for (const row of ROWS) {
      const key = blobKey(hash, row.format);
      expect(key).toBe(`${hash}.${row.extension}`);
      expect(BLOB_KEY.test(key)).toBe(true);
      expect(contentTypeOf(key)).toBe(row.mime);
    }
    expect(() => blobKey(hash, 'gif')).toThrow();
    expect(BLOB_KEY.test(`${hash}.gif`)).toBe(false);
  });

  it('detects an AVIF and reads its declared size from the ispe box', async () => {
    const { default: sharp } = await import('sharp');
    const avif = new Uint8Array(await sharp({ create: { width: 97, height: 61, channels: 3, background: '#369' } }).avif({ effort: 0 }).toBuffer());
    expect(detectFormat(avif)).toBe('avif');
    expect(readDimensions(avif, 'avif')).toEqual({ width: 97, height: 61 });
    for (let n = 0; n < avif.length; n += 5) {
      const got = readDimensions(avif.subarray(0, n), 'avif');
      if (got) expect(got).toEqual({ width: 97, height: 61 });
    }
    const decoded = await CODECS.avif.decode(avif);
    expect([decoded.width, decoded.height]).toEqual([97, 61]);
  });

  it('loads no WebAssembly when the main thread imports the table, sniff and storage', async () => {
    const { execFileSync } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const dist = fileURLToPath(new URL('../dist/src/', import.meta.url));
    const script = `
      let compiled = 0;
      const M = WebAssembly.Module;
      WebAssembly.Module = function (...a) { compiled++; return new M(...a); };
      WebAssembly.compile = async () => { compiled++; throw new Error('no'); };
      WebAssembly.instantiate = async () => { compiled++; throw new Error('no'); };
      const t = await import(${JSON.stringify(dist + 'codecs/table.js')});
      await import(${JSON.stringify(dist + 'codecs/sniff.js')});
      await import(${JSON.stringify(dist + 'storage/types.js')});
      t.rowFor(new Uint8Array([0xff, 0xd8, 0xff]));
      console.log(JSON.stringify({ compiled, imageData: typeof globalThis.ImageData }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
    expect(out).toEqual({ compiled: 0, imageData: 'undefined' });
  });
});

describe('ICC profiles in the containers', () => {
  const profile = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 255;
    return b;
  };

  it('JPEG: a profile larger than one APP2 segment is split and reassembled in order', async () => {
    const icc = profile(150_000); // three ICC_PROFILE chunks
    const src = fixture('rocket-small.jpg');
    const out = embedJpegIcc(src, icc);
    expect(Buffer.from(readJpegIcc(out)!).equals(Buffer.from(icc))).toBe(true);
    expect(Buffer.from(readJpegIcc(stripJpeg(out)!)!).equals(Buffer.from(icc))).toBe(true);
    expect((await independentDecode(out)).width).toBe(640);
  });

  it('JPEG: stripping drops APP2 segments that are not ICC (e.g. MPF with its previews)', () => {
    const src = fixture('rocket-small.jpg');
    const mpf = new Uint8Array([0xff, 0xe2, 0x00, 0x0a, ...new TextEncoder().encode('MPF\0'), 1, 2, 3, 4]);
    const withMpf = new Uint8Array([...src.subarray(0, 2), ...mpf, ...src.subarray(2)]);
    const out = stripJpeg(withMpf)!;
    expect(Buffer.from(out).includes(Buffer.from('MPF\0'))).toBe(false);
    expect(out.length).toBe(stripJpeg(src)!.length);
  });

  it('PNG: iCCP written after IHDR, compressed, read back', async () => {
    const icc = profile(3000);
    const out = await embedPngIcc(fixture('chelsea.png'), icc);
    expect(Buffer.from((await readPngIcc(out))!).equals(Buffer.from(icc))).toBe(true);
    expect(out.length).toBeLessThan(fixture('chelsea.png').length + 3000);
    expect((await independentDecode(out)).width).toBe(451);
  });

  it('WebP: a simple-format file is rewrapped as VP8X with an ICCP chunk', async () => {
    const icc = profile(1001); // odd size: the chunk gets its padding byte
    const src = fixture('Kite.webp');
    const out = embedWebpIcc(src, icc);
    expect(String.fromCharCode(...out.subarray(12, 16))).toBe('VP8X');
    expect(out[20]! & 0x20).toBe(0x20);
    expect(Buffer.from(readWebpIcc(out)!).equals(Buffer.from(icc))).toBe(true);
    expect(new DataView(out.buffer, out.byteOffset).getUint32(4, true)).toBe(out.length - 8);
    const img = await independentDecode(out);
    expect([img.width, img.height]).toEqual([1500, 937]);
    expect(readDimensions(out, 'webp')).toEqual({ width: 1500, height: 937 });
  });
});

describe('estimateJpegQuality (as ImageMagick identify)', () => {
  it('reads back the quality of libjpeg\'s standard tables, colour and greyscale', async () => {
    const { default: sharp } = await import('sharp');
    const { estimateJpegQuality } = await import('../src/codecs/jpeg.js');
    const raw = Buffer.alloc(64 * 64 * 3, 90);
    for (const q of [5, 10, 30, 49, 50, 51, 75, 90, 98]) {
      const colour = new Uint8Array(await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).jpeg({ quality: q }).toBuffer());
      expect(estimateJpegQuality(colour)).toBe(q);
      const grey = new Uint8Array(await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).greyscale().jpeg({ quality: q }).toBuffer());
      expect(estimateJpegQuality(grey)).toBe(q);
    }
    expect(estimateJpegQuality(new TextEncoder().encode('not a jpeg'))).toBeNull();
  });
});
