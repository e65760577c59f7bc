// CMYK to sRGB through LittleCMS 2.19 (wasm/lcms2), in the test's own thread: the TIFF and JPEG
// decoders' CMYK output compared pixel by pixel with sharp's colour-managed conversion of the same
// file (libvips with LittleCMS 2.19, the file's own profile, perceptual intent), on a photo and on
// a sweep of the sRGB gamut; and what an unusable profile leads to.
import { describe, expect, it } from 'vitest';
import sharp, { type Sharp } from 'sharp';
import { readTiffIcc } from '../src/codecs/tiff.js';
import { cmykToSrgb, NO_PROFILE_NOTE } from '../workers/codecs/cmyk.js';
import { jpeg } from '../workers/codecs/jpeg.js';
import { tiff } from '../workers/codecs/tiff.js';
import { CodecError } from '../workers/codecs/wasm.js';
import { fixture } from './helpers/decode.js';

/** An sRGB sweep: red across, green down, blue in 16 bands and dark near the bottom rows. */
function sweep(): Sharp {
  const width = 256;
  const height = 256;
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dark = y >= 192 ? 4 : 1;
      const i = (y * width + x) * 3;
      data[i] = x / dark;
      data[i + 1] = ((y * 4) % 256) / dark;
      data[i + 2] = ((x >> 4) * 17 + ((y >> 6) * 64)) % 256 / dark;
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
}

/** libvips converts to CMYK through its built-in CMYK profile and embeds it. */
const cmykTiff = (s: Sharp) => s.toColourspace('cmyk').withIccProfile('cmyk').tiff({ compression: 'lzw' }).toBuffer();
const cmykJpeg = (s: Sharp) => s.toColourspace('cmyk').withIccProfile('cmyk').jpeg({ quality: 95 }).toBuffer();

/** Per channel, how far ours is from sharp's sRGB conversion: the largest and the mean difference. */
async function againstSharp(bytes: Buffer, ours: { data: ArrayLike<number>; width: number; height: number }) {
  const { data, info } = await sharp(bytes).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  expect([ours.width, ours.height]).toEqual([info.width, info.height]);
  let max = 0;
  let sum = 0;
  const pixels = info.width * info.height;
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) {
      const d = Math.abs(ours.data[p * 4 + c]! - data[p * 3 + c]!);
      max = Math.max(max, d);
      sum += d;
    }
  }
  return { max, mean: sum / (pixels * 3) };
}

describe('CMYK with its profile, against sharp (LittleCMS 2.19)', () => {
  for (const [name, source] of [['photo', () => sharp(fixture('rocket-small.jpg'))], ['sRGB sweep', sweep]] as const) {
    // the same samples on both sides (LZW is lossless): only the conversions differ
    it(`TIFF, ${name}: every pixel within 1 level`, async () => {
      const bytes = await cmykTiff(source());
      const ours = await tiff.decode(bytes);
      expect(ours.notes).toBeUndefined();
      const d = await againstSharp(bytes, ours);
      expect(d.max, `mean difference ${d.mean.toFixed(4)}`).toBeLessThanOrEqual(1);
      expect(d.mean).toBeLessThan(0.01);
    });
    // libjpeg-turbo decodes the samples on both sides (sharp's is native, ours WebAssembly)
    it(`JPEG, ${name}: every pixel within 1 level`, async () => {
      const bytes = await cmykJpeg(source());
      const ours = await jpeg.decode(bytes);
      expect(ours.notes).toBeUndefined();
      const d = await againstSharp(bytes, ours);
      expect(d.max, `mean difference ${d.mean.toFixed(4)}`).toBeLessThanOrEqual(1);
      expect(d.mean).toBeLessThan(0.01);
    });
  }
});

describe('CMYK with a profile that cannot be used', () => {
  /** one pixel of each ink alone, all four, and none */
  const patches = { data: new Uint8Array([255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255, 255, 0, 0, 0, 0]), width: 6, height: 1 };
  /** the plain formula's colours for the patches */
  const formula = [0, 255, 255, 255, 255, 0, 255, 255, 255, 255, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255];
  /** a copy: the TIFF reader hands out a view into the file */
  const cmykProfile = async () => new Uint8Array(readTiffIcc(await cmykTiff(sweep()))!);
  const srgbProfile = async () => new Uint8Array((await sharp(await sweep().withIccProfile('srgb').png().toBuffer()).metadata()).icc!);

  it.each([
    ['no profile', async () => null],
    ['bytes that are no ICC profile', async () => new Uint8Array(300).fill(7)],
    ['an empty profile', async () => new Uint8Array(0)],
    ['an RGB profile', srgbProfile],
  ])('%s: the plain formula, noted as approximate', async (_name, profile) => {
    const out = await cmykToSrgb(patches, await profile());
    expect(out.notes).toEqual([NO_PROFILE_NOTE]);
    expect(Array.from(out.data)).toEqual(formula);
  });

  it('a CMYK profile cut short: a clear error, and the next image converts as before', async () => {
    const good = await cmykProfile();
    const before = Array.from((await cmykToSrgb(patches, good)).data);
    expect(before).not.toEqual(formula);
    const err = await cmykToSrgb(patches, good.subarray(0, 1000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CodecError);
    expect((err as Error).message).toMatch(/CMYK conversion failed: the embedded profile cannot be used \(.+\)/);
    expect(Array.from((await cmykToSrgb(patches, good)).data)).toEqual(before);
  });
});
