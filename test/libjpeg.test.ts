// The libjpeg-turbo WebAssembly decoder (workers/codecs/libjpeg.ts, wasm/libjpeg/): full-size
// decodes against the @jsquash decoder, every shrink-on-load scale against full decode plus box
// shrink, on an odd-sized photo (partial edge blocks and MCUs) in 4:2:0, 4:2:2, 4:4:4,
// progressive and greyscale; the scaled size against libjpeg's own; EXIF orientation 1-8 applied
// after a scaled decode, against sharp's auto-orient; CMYK samples against sharp's; cut-off and
// broken input; the instance kept between images and remade after an error; and the module
// loading in a Piscina pool thread from dist/ and under Bun and Deno.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JPEG_SCALES, jpegFrame, jpegScaledSize, libjpegDecodeBytes, type JpegScale } from '../src/codecs/jpeg-scale.js';
import { readExifOrientation } from '../src/codecs/jpeg.js';
import { CodecError, type Raster } from '../src/codecs/types.js';
import { decodeJpeg, decodeJpegCmyk, instances, jpegHeader } from '../workers/codecs/libjpeg.js';
import { applyOrientation } from '../workers/codecs/orientation.js';
import { boxShrink } from '../workers/codecs/resize.js';
import { fixture, independentDecode } from './helpers/decode.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const [libjpeg] = instances;

/** Mean absolute difference over the R, G and B channels of two same-sized RGBA rasters. */
function mad(a: { data: Uint8ClampedArray; width: number; height: number }, b: typeof a): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    sum += Math.abs(a.data[i]! - b.data[i]!) + Math.abs(a.data[i + 1]! - b.data[i + 1]!) + Math.abs(a.data[i + 2]! - b.data[i + 2]!);
  }
  return sum / ((a.data.length / 4) * 3);
}

const rgba = async (s: ReturnType<typeof sharp>): Promise<Raster> => {
  const { data, info } = await s.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, opaque: true };
};

// A real photo at an odd size: 333 = 20*16 + 13 and 251 = 15*16 + 11, so the last MCU column and
// row are partial in every subsampling, and every scale rounds up.
const crop = () => sharp(fixture('chelsea.png')).extract({ left: 60, top: 30, width: 333, height: 251 }).removeAlpha();

const photos: Record<string, Uint8Array> = {};
beforeAll(async () => {
  photos['4:2:0'] = new Uint8Array(await crop().jpeg({ quality: 90, chromaSubsampling: '4:2:0' }).toBuffer());
  photos['4:4:4'] = new Uint8Array(await crop().jpeg({ quality: 90, chromaSubsampling: '4:4:4' }).toBuffer());
  photos['4:2:2'] = fixture('chelsea-422.jpg'); // cjpeg -sample 2x1 (test/fixtures/LICENSES.md)
  photos['progressive 4:2:0'] = new Uint8Array(await crop().jpeg({ quality: 90, progressive: true }).toBuffer());
  photos['greyscale'] = new Uint8Array(await crop().toColourspace('b-w').jpeg({ quality: 90 }).toBuffer());
});

describe('the libjpeg-turbo decoder', () => {
  it('reads the fixtures the way the cases say (sampling, progressive, grey)', async () => {
    for (const [name, bytes] of Object.entries(photos)) {
      const h = await jpegHeader(bytes);
      expect([h.width, h.height], name).toEqual([333, 251]);
      expect(h.colorSpace, name).toBe(name === 'greyscale' ? 'grey' : 'ycbcr');
      expect(h.progressive, name).toBe(name.startsWith('progressive'));
      expect(h.precision, name).toBe(8);
    }
    // the sampling factors (HV) of the first two components, from the frame header: FF Cn, length,
    // precision, height, width, count, then (id, HV, table) per component
    const sampling = (b: Uint8Array) => {
      let i = 2;
      while (b[i] === 0xff && !(b[i + 1] === 0xc0 || b[i + 1] === 0xc2)) i += 2 + ((b[i + 2]! << 8) | b[i + 3]!);
      return b[i + 11]!.toString(16).padStart(2, '0') + b[i + 14]!.toString(16).padStart(2, '0');
    };
    expect(sampling(photos['4:2:0']!)).toBe('2211');
    expect(sampling(photos['4:2:2']!)).toBe('2111');
    expect(sampling(photos['4:4:4']!)).toBe('1111');
  });

  it('decodes full size like the @jsquash (MozJPEG) decoder the pipeline uses today', async () => {
    for (const [name, bytes] of Object.entries(photos)) {
      const ours = await decodeJpeg(bytes);
      expect(ours.opaque).toBe(true);
      const reference = await independentDecode(bytes);
      // the same IDCT and upsampling (libjpeg-turbo 3.1 vs MozJPEG 4): at most rounding apart
      expect(mad(ours, reference), name).toBeLessThan(0.05);
    }
  });

  it('shrinks on load at every scale: the size libjpeg computes, and the pixels of full decode + box shrink', async () => {
    const worst: Record<string, number> = {};
    for (const [name, bytes] of Object.entries(photos)) {
      const full = await decodeJpeg(bytes);
      for (const scale of JPEG_SCALES) {
        const scaled = await decodeJpeg(bytes, { scale });
        expect({ width: scaled.width, height: scaled.height }).toEqual(jpegScaledSize({ width: 333, height: 251 }, scale));
        expect(scaled.data.length).toBe(scaled.width * scaled.height * 4);
        const d = mad(scaled, boxShrink(full, scale));
        worst[`${name} 1/${scale}`] = Number(d.toFixed(2));
        // a DCT-domain shrink is not an exact box average (it low-passes differently), but a
        // shifted, swapped or garbled image is tens of levels away
        expect(d, `${name} 1/${scale}`).toBeLessThan(scale === 1 ? 0.001 : 2);
        if (name === 'greyscale') {
          for (let i = 0; i < scaled.data.length; i += 4) {
            if (scaled.data[i] !== scaled.data[i + 1] || scaled.data[i] !== scaled.data[i + 2] || scaled.data[i + 3] !== 255) {
              throw new Error(`grey pixel ${i / 4} at 1/${scale} is ${scaled.data.subarray(i, i + 4).join(',')}`);
            }
          }
        }
      }
    }
    console.log('libjpeg scaled vs full + box shrink, mean abs difference:', worst);
  });

  it('gives the scaled size jpegScaledSize says, as libjpeg computes it, for odd and tiny frames', async () => {
    for (const [width, height] of [[1, 1], [7, 9], [8, 8], [9, 17], [15, 1], [333, 251], [1001, 23]] as const) {
      const bytes = new Uint8Array(await sharp({ create: { width, height, channels: 3, background: '#3a7' } }).jpeg().toBuffer());
      for (const scale of JPEG_SCALES) {
        const h = await jpegHeader(bytes, scale);
        expect(h.scaled, `${width}x${height} 1/${scale}`).toEqual(jpegScaledSize({ width, height }, scale));
        const img = await decodeJpeg(bytes, { scale });
        expect([img.width, img.height]).toEqual([h.scaled.width, h.scaled.height]);
      }
    }
  });

  it('composes with EXIF orientation 1-8: a scaled decode turned by applyOrientation matches sharp auto-oriented', async () => {
    // MCU-aligned (320x240) so a flipped box grid lands on the same pixels as the unflipped one
    const base = sharp(fixture('chelsea.png')).extract({ left: 40, top: 20, width: 320, height: 240 }).removeAlpha();
    for (let orientation = 1; orientation <= 8; orientation++) {
      const bytes = new Uint8Array(await base.clone().jpeg({ quality: 90 }).withMetadata({ orientation }).toBuffer());
      expect(readExifOrientation(bytes)).toBe(orientation);
      const upright = await rgba(sharp(bytes).rotate());
      const scale: JpegScale = 2;
      const ours = applyOrientation(await decodeJpeg(bytes, { scale }), readExifOrientation(bytes));
      const reference = boxShrink(upright, scale);
      expect([ours.width, ours.height], `orientation ${orientation}`).toEqual(orientation >= 5 ? [120, 160] : [160, 120]);
      const right = mad(ours, reference);
      expect(right, `orientation ${orientation}`).toBeLessThan(2.5);
      // and it is this orientation: the same pixels turned another way (same shape) are far off
      const other = [0, 3, 1, 1, 1, 7, 8, 5, 6][orientation]!;
      const wrong = applyOrientation(await decodeJpeg(bytes, { scale }), other);
      expect(mad(wrong, reference), `orientation ${orientation} vs ${other}`).toBeGreaterThan(10 * right + 5);
    }
  });

  it('holds at most what libjpegDecodeBytes plans from the header, and not much less', async () => {
    const photo = sharp(fixture('chelsea.png')).resize(1500).removeAlpha(); // 1500x998
    const cases: Record<string, Uint8Array> = {
      'sequential 4:2:0': new Uint8Array(await photo.clone().jpeg({ quality: 90 }).toBuffer()),
      'progressive 4:2:0': new Uint8Array(await photo.clone().jpeg({ quality: 90, progressive: true }).toBuffer()),
      'progressive 4:4:4': new Uint8Array(await photo.clone().jpeg({ quality: 90, progressive: true, chromaSubsampling: '4:4:4' }).toBuffer()),
      'progressive grey': new Uint8Array(await photo.clone().toColourspace('b-w').jpeg({ quality: 90, progressive: true }).toBuffer()),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      const frame = jpegFrame(bytes)!;
      const header = await jpegHeader(bytes);
      expect([frame.width, frame.height, frame.progressive, frame.components.length], name).toEqual([header.width, header.height, header.progressive, header.components]);
      for (const scale of JPEG_SCALES) {
        libjpeg!.reset();
        const img = await decodeJpeg(bytes, { scale });
        const held = libjpeg!.memoryBytes + img.data.length; // the instance's memory + the pixels copied out
        const planned = libjpegDecodeBytes(frame, scale, bytes.length);
        expect(held, `${name} 1/${scale}`).toBeLessThanOrEqual(planned);
        expect(planned, `${name} 1/${scale}`).toBeLessThan(held * 1.15 + 2 * 1024 * 1024);
      }
    }
  });

  it('refuses cut-off and broken files with a clear error, and the next image decodes in a fresh instance', async () => {
    const whole = photos['4:2:0']!;
    const progressive = photos['progressive 4:2:0']!;
    const cases: [string, Uint8Array, RegExp][] = [
      ['cut in the scan data', whole.subarray(0, whole.length >> 1), /^JPEG decode failed: truncated: Premature end of JPEG file$/],
      ['cut before the end-of-image marker', whole.subarray(0, whole.length - 2), /^JPEG decode failed: truncated/],
      ['progressive, cut after some scans', progressive.subarray(0, (progressive.length * 2) / 3), /^JPEG decode failed: truncated/],
      ['cut in the header', whole.subarray(0, 100), /^JPEG decode failed: truncated/],
      ['not a JPEG', new TextEncoder().encode('GIF89a, or anything else'), /^JPEG decode failed: Not a JPEG file/],
      ['empty', new Uint8Array(0), /^JPEG decode failed: /],
    ];
    for (const [what, bytes, message] of cases) {
      const made = libjpeg!.made;
      await expect(decodeJpeg(bytes, { scale: 2 }), what).rejects.toThrow(CodecError);
      await expect(decodeJpeg(bytes), what).rejects.toThrow(message);
      expect(libjpeg!.live, what).toBe(false); // dropped after the error
      const next = await decodeJpeg(whole, { scale: 4 });
      expect([next.width, next.height]).toEqual([84, 63]);
      expect(libjpeg!.made, what).toBe(made + 2);
    }
    await expect(decodeJpeg(whole, { scale: 3 as JpegScale })).rejects.toThrow(/scale must be 1, 2, 4 or 8/);
  });

  it('refuses a progressive file of more than 500 scans (repeated scans: each walks every block) and decodes one of 500', async () => {
    const progressive = photos['progressive 4:2:0']!;
    const scans = scansOf(progressive);
    // a first AC scan (Ss > 0, Ah = 0) repeated until the file holds `total` scans: each repeat
    // decodes the same band again, and libjpeg only warns of it
    const sos = (scan: { start: number }) => {
      const at = scan.start + 5 + 2 * progressive[scan.start + 4]!; // past the marker, length, Ns and the components
      return { ss: progressive[at]!, ah: progressive[at + 2]! >> 4 };
    };
    const band = scans.find((scan) => sos(scan).ss > 0 && sos(scan).ah === 0)!;
    const withScans = (total: number) => {
      const repeat = progressive.subarray(band.start, band.end);
      const parts = [progressive.subarray(0, band.end), ...Array.from({ length: total - scans.length }, () => repeat), progressive.subarray(band.end)];
      return new Uint8Array(Buffer.concat(parts));
    };
    expect(scansOf(withScans(501))).toHaveLength(501);
    await expect(decodeJpeg(withScans(501))).rejects.toThrow(/^JPEG decode failed: .*more than 500 scans/);
    expect(libjpeg!.live).toBe(false); // dropped after the error
    const ok = await decodeJpeg(withScans(500), { scale: 4 });
    expect([ok.width, ok.height]).toEqual([84, 63]);
  });

  it('keeps one instance between images; its memory grows to fit and is reused', async () => {
    await decodeJpeg(photos['4:4:4']!);
    const made = libjpeg!.made;
    const big = new Uint8Array(await sharp(fixture('chelsea.png')).resize(1800).jpeg().toBuffer());
    const small = await decodeJpeg(photos['4:2:0']!, { scale: 8 });
    const before = libjpeg!.memoryBytes;
    const large = await decodeJpeg(big);
    expect(libjpeg!.memoryBytes).toBeGreaterThan(before);
    expect(libjpeg!.memoryBytes).toBeGreaterThanOrEqual(large.data.length);
    const grown = libjpeg!.memoryBytes;
    await decodeJpeg(big);
    expect(libjpeg!.memoryBytes).toBe(grown); // the freed space is used again
    expect(libjpeg!.made).toBe(made);
    // outputs own their buffers (transferable), never a view of the instance's memory
    expect(large.data.byteLength).toBe(large.data.buffer.byteLength);
    expect(small.data.byteLength).toBe(small.data.buffer.byteLength);
  });

  it('gives CMYK files as ink amounts (Adobe inversion undone), like sharp reads them; RGBA decodes refuse them', async () => {
    const source = crop().toColourspace('cmyk');
    const cmyk = new Uint8Array(await source.clone().jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer());
    const inks = await source.clone().raw().toBuffer({ resolveWithObject: true });
    expect(inks.info.channels).toBe(4);
    const h = await jpegHeader(cmyk);
    expect([h.colorSpace, h.adobe]).toEqual(['cmyk', true]);
    const ours = await decodeJpegCmyk(cmyk);
    expect([ours.width, ours.height, ours.colorSpace, ours.adobe]).toEqual([333, 251, 'cmyk', true]);
    let sum = 0;
    for (let i = 0; i < ours.data.length; i++) sum += Math.abs(ours.data[i]! - inks.data[i]!);
    expect(sum / ours.data.length).toBeLessThan(1.5); // inverted it would be ~100 levels off
    const half = await decodeJpegCmyk(cmyk, { scale: 2 });
    expect([half.width, half.height]).toEqual([167, 126]);
    await expect(decodeJpeg(cmyk)).rejects.toThrow(/CMYK\/YCCK JPEG: needs colour conversion/);
    await expect(decodeJpegCmyk(photos['4:2:0']!)).rejects.toThrow(/not a CMYK or YCCK JPEG/);
  });
});

describe('the libjpeg-turbo decoder outside vitest', () => {
  const dist = join(ROOT, 'dist/workers/codecs/libjpeg.js');
  let dir = '';
  let probe = '';
  beforeAll(() => {
    if (!existsSync(dist)) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    dir = mkdtempSync(join(tmpdir(), 'libjpeg-probe-'));
    writeFileSync(join(dir, 'photo.jpg'), photos['4:2:0']!);
    // decodes at every scale and prints sizes and a checksum of the pixels
    probe = join(dir, 'probe.mjs');
    writeFileSync(probe, `
      import { readFileSync } from 'node:fs';
      import { createHash } from 'node:crypto';
      import { decodeJpeg } from ${JSON.stringify(pathToFileURL(dist).href)};
      export default async function run(file) {
        const bytes = new Uint8Array(readFileSync(file));
        const out = [];
        for (const scale of [1, 2, 4, 8]) {
          const img = await decodeJpeg(bytes, { scale });
          out.push(img.width + 'x' + img.height + ':' + createHash('sha256').update(img.data).digest('hex').slice(0, 16));
        }
        // an error thrown from inside the module, then a decode in the fresh instance
        const err = await decodeJpeg(bytes.subarray(0, bytes.length >> 1)).then(() => 'no error', (e) => e.name + ': ' + e.message);
        const again = await decodeJpeg(bytes, { scale: 8 });
        return out.join(' ') + ' | ' + err + ' | ' + again.width + 'x' + again.height;
      }
      if (process.argv[2]) console.log(await run(process.argv[2]));
    `);
  });
  afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

  const inVitest = async () => {
    const out: string[] = [];
    const { createHash } = await import('node:crypto');
    for (const scale of JPEG_SCALES) {
      const img = await decodeJpeg(photos['4:2:0']!, { scale });
      out.push(`${img.width}x${img.height}:${createHash('sha256').update(img.data).digest('hex').slice(0, 16)}`);
    }
    return `${out.join(' ')} | CodecError: JPEG decode failed: truncated: Premature end of JPEG file | 42x32`;
  };

  it('loads and decodes in a Piscina pool thread from the dist build', async () => {
    const pool = new Piscina({ filename: pathToFileURL(probe).href, maxThreads: 1 });
    try {
      expect(await pool.run(join(dir, 'photo.jpg'))).toBe(await inVitest());
    } finally {
      await pool.destroy();
    }
  });

  for (const runtime of ['bun', 'deno'] as const) {
    it(`loads unchanged under ${runtime} and decodes the same pixels`, async () => {
      const bin = join(ROOT, 'node_modules/.bin', runtime);
      const args = runtime === 'deno' ? ['run', '--allow-read', probe, join(dir, 'photo.jpg')] : [probe, join(dir, 'photo.jpg')];
      const out = execFileSync(bin, args, { encoding: 'utf8', timeout: 60_000 }).trim();
      expect(out).toBe(await inVitest());
    });
  }
});

/** The scans of a JPEG: each SOS segment with its entropy-coded data, as byte ranges. */
function scansOf(jpeg: Uint8Array): Array<{ start: number; end: number }> {
  const scans: Array<{ start: number; end: number }> = [];
  let pos = 2;
  while (pos + 4 <= jpeg.length && jpeg[pos] === 0xff && jpeg[pos + 1] !== 0xd9) {
    const marker = jpeg[pos + 1]!;
    let end = pos + 2 + ((jpeg[pos + 2]! << 8) | jpeg[pos + 3]!);
    if (marker === 0xda) {
      // entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a restart marker
      while (end + 1 < jpeg.length && !(jpeg[end] === 0xff && jpeg[end + 1] !== 0 && (jpeg[end + 1]! < 0xd0 || jpeg[end + 1]! > 0xd7))) end++;
      scans.push({ start: pos, end });
    }
    pos = end;
  }
  return scans;
}
