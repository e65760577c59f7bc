// Input-only formats (GIF, TIFF, BMP, HEIC) and CMYK JPEGs end to end over HTTP: a local image
// server on loopback serves images made here (sharp writes GIF, TIFF and CMYK; BMP is written by
// a few lines below; HEIC is a committed fixture, see test/fixtures/LICENSES.md), the service
// downloads and converts them, and every output is decoded by an independent decoder and checked
// for size and mean colour against the source photo. Also: refusals that name what arrived.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { detectFormat } from '../src/codecs/sniff.js';
import { fixture, independentDecode, type Pixels } from './helpers/decode.js';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { startTestService, upload, waitForStatus, type TestService } from './helpers/service.js';
import { hasTool } from './helpers/tools.js';

let svc: TestService;
let images: ImageServer;
const photo = fixture('rocket-small.jpg');
let rgb: { data: Buffer; width: number; height: number };

beforeAll(async () => {
  images = await startImageServer({ host: '127.0.0.9' });
  svc = await startTestService({ FETCH_ALLOWLIST: '127.0.0.9/32' });
  const { data, info } = await sharp(photo).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  rgb = { data, width: info.width, height: info.height };
}, 60_000);
afterAll(async () => {
  await svc?.stop();
  await images?.close();
});

function meanRgb(p: { data: ArrayLike<number>; width: number; height: number }, channels: number): number[] {
  const sum = [0, 0, 0];
  for (let i = 0; i < p.width * p.height; i++) for (let c = 0; c < 3; c++) sum[c]! += p.data[i * channels + c]!;
  return sum.map((s) => s / (p.width * p.height));
}

/** A BMP written here: 24-bit BGR, or 8-bit with a 256-grey palette, bottom-up rows. */
function writeBmp(src: { data: Buffer; width: number; height: number }, bits: 24 | 8): Uint8Array {
  const { width, height, data } = src;
  const stride = Math.ceil((width * bits) / 32) * 4;
  const paletteBytes = bits === 8 ? 1024 : 0;
  const offset = 54 + paletteBytes;
  const out = Buffer.alloc(offset + stride * height);
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(offset, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(width, 18);
  out.writeInt32LE(height, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(bits, 28);
  if (bits === 8) for (let k = 0; k < 256; k++) out.writeUInt32LE(k * 0x010101, 54 + 4 * k);
  for (let y = 0; y < height; y++) {
    const row = offset + (height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      if (bits === 24) out.set([data[i + 2]!, data[i + 1]!, data[i]!], row + 3 * x);
      else out[row + x] = Math.round((data[i]! + data[i + 1]! + data[i + 2]!) / 3);
    }
  }
  return out;
}

interface Case {
  name: string;
  bytes: () => Promise<Uint8Array>;
  /** the format=original output */
  format: 'jpeg' | 'png';
  note: string;
  /** the mean colour to expect: the photo's (default), the source's as sharp reads it, or the photo's grey average */
  reference?: 'source' | 'grey' | 'unmanaged';
  tolerance: number;
  /** also within this many levels of ImageMagick's colour-managed sRGB conversion (perceptual) */
  managed?: number;
}

const fromPhoto = () => sharp(photo);
/** sharp converts to CMYK through libvips' built-in CMYK profile, and embeds it. */
const cmykTiff = () => fromPhoto().toColourspace('cmyk').withIccProfile('cmyk').tiff({ compression: 'lzw' }).toBuffer();
const CASES: Case[] = [
  { name: 'GIF', bytes: async () => fromPhoto().gif().toBuffer(), format: 'png', note: 'converted from GIF', tolerance: 6 },
  { name: 'TIFF LZW', bytes: async () => fromPhoto().tiff({ compression: 'lzw' }).toBuffer(), format: 'jpeg', note: 'converted from TIFF', tolerance: 3 },
  { name: 'TIFF Deflate with predictor', bytes: async () => fromPhoto().tiff({ compression: 'deflate', predictor: 'horizontal' }).toBuffer(), format: 'jpeg', note: 'converted from TIFF', tolerance: 3 },
  { name: 'TIFF PackBits', bytes: async () => fromPhoto().tiff({ compression: 'packbits' }).toBuffer(), format: 'jpeg', note: 'converted from TIFF', tolerance: 3 },
  { name: 'TIFF uncompressed RGBA', bytes: async () => fromPhoto().ensureAlpha(0.5).tiff({ compression: 'none' }).toBuffer(), format: 'png', note: 'converted from TIFF', tolerance: 6 },
  { name: 'TIFF 16-bit', bytes: async () => fromPhoto().toColourspace('rgb16').tiff({ compression: 'lzw' }).toBuffer(), format: 'jpeg', note: 'converted from TIFF', tolerance: 3 },
  { name: 'TIFF greyscale', bytes: async () => fromPhoto().greyscale().tiff({ compression: 'deflate' }).toBuffer(), format: 'jpeg', note: 'converted from TIFF', reference: 'source', tolerance: 3 },
  // CMYK with a profile: LittleCMS 2.19 (wasm/lcms2), perceptual, checked against two independent
  // colour-managed conversions of the same file with the same profile and intent. sharp (libvips
  // with LittleCMS 2.19): within 3 levels (measured: 0.15 on the means; test/cmyk.test.ts compares
  // every pixel). ImageMagick (its own libjpeg and libtiff, the system's LittleCMS 2.14): within 6,
  // because 2.14 renders this profile's dark colours with more blue (solid K ink: 18,4,23 against
  // 2.19's 20,5,0; the mean's blue 4.8 levels higher on this dark photo).
  { name: 'TIFF CMYK with its profile', bytes: cmykTiff, format: 'jpeg', note: 'converted from TIFF', reference: 'source', tolerance: 3, managed: 6 },
  { name: 'CMYK JPEG with its profile', bytes: async () => fromPhoto().toColourspace('cmyk').withIccProfile('cmyk').jpeg({ quality: 95 }).toBuffer(), format: 'jpeg', note: '', reference: 'source', tolerance: 3, managed: 6 },
  { name: 'BMP 24-bit', bytes: async () => writeBmp(rgb, 24), format: 'jpeg', note: 'converted from BMP', tolerance: 3 },
  { name: 'BMP 8-bit palette', bytes: async () => writeBmp(rgb, 8), format: 'jpeg', note: 'converted from BMP', reference: 'grey', tolerance: 3 },
  // heif-enc kept the photo's pixels and its (Adobe RGB) profile: compare with the photo's own pixels, not sharp's sRGB
  { name: 'HEIC', bytes: async () => fixture('rocket-small.heic'), format: 'jpeg', note: 'converted from HEIC', reference: 'unmanaged', tolerance: 4 },
];

const hasImageMagick = hasTool('convert');
if (!hasImageMagick) console.log('input-formats: ImageMagick `convert` is missing, so the Adobe CMYK JPEG without a profile and the ImageMagick colour-managed references are not tested (.ci/run installs it)');

/** ImageMagick's sRGB conversion through the file's own profile, to libvips' sRGB profile (written to a temp file). */
let srgbProfile = '';
async function imageMagickSrgb(bytes: Uint8Array): Promise<Uint8Array> {
  if (!srgbProfile) {
    const icc = (await sharp(await sharp(photo).withIccProfile('srgb').png().toBuffer()).metadata()).icc!;
    srgbProfile = join(mkdtempSync(join(tmpdir(), 'input-formats-')), 'srgb.icc');
    writeFileSync(srgbProfile, icc);
  }
  return new Uint8Array(execFileSync('convert', ['-', '-intent', 'Perceptual', '-profile', srgbProfile, '-depth', '8', 'rgb:-'], { input: bytes, maxBuffer: 1 << 28 }));
}
if (hasImageMagick) {
  CASES.push({
    // ImageMagick writes Adobe-style (inverted, APP14) CMYK with the plain formula and no profile
    name: 'Adobe CMYK JPEG without a profile (ImageMagick)',
    bytes: async () => new Uint8Array(execFileSync('convert', ['jpg:-', '+profile', '*', '-colorspace', 'CMYK', '-quality', '92', 'jpg:-'], { input: await sharp(photo).toColourspace('srgb').withIccProfile('srgb').jpeg({ quality: 95 }).toBuffer() })),
    format: 'jpeg', note: 'no CMYK profile: approximate colours', tolerance: 8,
  });
}

describe('input-only formats over HTTP', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s: converted with format=original, noted, and decodes to the photo', async (_name, c) => {
    const bytes = await c.bytes();
    const path = `/formats/${c.name.replace(/\W+/g, '-')}`;
    images.set(path, { kind: 'bytes', body: bytes, type: 'application/octet-stream' });
    const res = await upload(svc.base, `product_name,image_url\nThing,${images.url(path)}\n`);
    expect(res.status).toBe(202);
    const status = await waitForStatus(svc.base, res.body.request_id);
    const product = status.products[0];
    expect(product.errors).toEqual([null]);
    expect(product.outcomes).toEqual(['compressed']);
    if (c.note) expect(product.notes[0]).toContain(c.note);
    else expect(product.notes).toEqual([null]);
    const out = new Uint8Array(await (await fetch(product.output_urls[0])).arrayBuffer());
    expect(detectFormat(out)).toBe(c.format);
    const img: Pixels = await independentDecode(out);
    expect([img.width, img.height]).toEqual([rgb.width, rgb.height]);
    const photoMean = meanRgb(rgb, 3);
    const source = c.reference === 'source' ? await sharp(bytes).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true }) : null;
    const expected = c.reference === 'unmanaged' ? meanRgb(await independentDecode(photo), 4) : source ? meanRgb({ data: source.data, width: source.info.width, height: source.info.height }, source.info.channels)
      : c.reference === 'grey' ? photoMean.map(() => (photoMean[0]! + photoMean[1]! + photoMean[2]!) / 3) : photoMean;
    const got = meanRgb(img, 4);
    for (let k = 0; k < 3; k++) expect(Math.abs(got[k]! - expected[k]!), `mean ${got.map(Math.round)} against ${expected.map(Math.round)}`).toBeLessThanOrEqual(c.tolerance);
    if (c.managed !== undefined && hasImageMagick) {
      const managed = meanRgb({ data: await imageMagickSrgb(bytes), width: rgb.width, height: rgb.height }, 3);
      for (let k = 0; k < 3; k++) expect(Math.abs(got[k]! - managed[k]!), `mean ${got.map((v) => v.toFixed(1))} against ImageMagick's ${managed.map((v) => v.toFixed(1))}`).toBeLessThanOrEqual(c.managed);
    }
  }, 60_000);
});

/** libjpeg-turbo's jpegtran (libjpeg-turbo-progs) recodes a JPEG with arithmetic coding */
const hasJpegtran = hasTool('jpegtran');
if (!hasJpegtran) console.log('input-formats: `jpegtran` (libjpeg-turbo-progs) is missing, so arithmetic-coded JPEGs are not tested (.ci/run installs it)');
/** SOF9: arithmetic-coded sequential JPEG */
const hasSof9 = (b: Uint8Array) => Buffer.from(b).includes(Buffer.from([0xff, 0xc9]));

describe.runIf(hasJpegtran)('arithmetic-coded JPEG over HTTP', () => {
  /** Recodes a JPEG's coefficients with arithmetic coding (lossless), keeping every marker (the profile too). */
  const arithmetic = (jpeg: Uint8Array) => new Uint8Array(execFileSync('jpegtran', ['-arithmetic', '-copy', 'all'], { input: jpeg, maxBuffer: 1 << 26 }));

  async function run(bytes: Uint8Array, name: string) {
    images.set(`/arith/${name}`, { kind: 'bytes', body: bytes, type: 'image/jpeg' });
    const res = await upload(svc.base, `product_name,image_url\nThing,${images.url(`/arith/${name}`)}\n`);
    expect(res.status).toBe(202);
    return (await waitForStatus(svc.base, res.body.request_id)).products[0];
  }

  it('a YCbCr one is decoded (libjpeg-turbo has the arithmetic decoder) and compressed', async () => {
    const bytes = arithmetic(photo);
    expect(hasSof9(bytes)).toBe(true);
    const product = await run(bytes, 'ycbcr');
    expect([product.errors, product.outcomes]).toEqual([[null], ['compressed']]);
    const out = new Uint8Array(await (await fetch(product.output_urls[0])).arrayBuffer());
    expect(detectFormat(out)).toBe('jpeg');
    expect(hasSof9(out)).toBe(false);
    const img = await independentDecode(out);
    expect([img.width, img.height]).toEqual([rgb.width, rgb.height]);
    // the same coefficients as the photo: the photo's own pixels (its profile is kept, not applied)
    const expected = meanRgb(await independentDecode(photo), 4);
    const got = meanRgb(img, 4);
    for (let k = 0; k < 3; k++) expect(Math.abs(got[k]! - expected[k]!), `mean ${got.map(Math.round)} against ${expected.map(Math.round)}`).toBeLessThanOrEqual(3);
  }, 60_000);

  it('a CMYK one with its profile is decoded (libjpeg-turbo too) and converted as sharp converts it', async () => {
    const bytes = arithmetic(new Uint8Array(await fromPhoto().toColourspace('cmyk').withIccProfile('cmyk').jpeg({ quality: 95 }).toBuffer()));
    expect(hasSof9(bytes)).toBe(true);
    const product = await run(bytes, 'cmyk');
    expect([product.errors, product.outcomes]).toEqual([[null], ['compressed']]);
    const img = await independentDecode(new Uint8Array(await (await fetch(product.output_urls[0])).arrayBuffer()));
    expect([img.width, img.height]).toEqual([rgb.width, rgb.height]);
    const { data, info } = await sharp(bytes).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const expected = meanRgb({ data, width: info.width, height: info.height }, info.channels);
    const got = meanRgb(img, 4);
    for (let k = 0; k < 3; k++) expect(Math.abs(got[k]! - expected[k]!), `mean ${got.map(Math.round)} against sharp's ${expected.map(Math.round)}`).toBeLessThanOrEqual(3);
  }, 60_000);
});
