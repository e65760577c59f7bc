// Our Lanczos3 resizer (wasm/resize/resize.c through workers/codecs/resize.ts) against sharp's
// Lanczos3 on the same pixels, at odd sizes, 1-pixel edges and with alpha; its WASM memory against
// the plan's model. Outputs go through a PNG encode and the independent decoder.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_OPTIONS } from '../src/codecs/output-options.js';
import { planImage, resizeMemory } from '../src/codecs/plan.js';
import type { Raster } from '../src/codecs/types.js';
import { instanceStats, releaseGrown, resize } from '../workers/codecs.js';
import { encodePngLean } from '../workers/codecs/png-lean.js';
import { lanczos3Resize } from '../workers/codecs/resize.js';
import { fixture, independentDecode } from './helpers/decode.js';

/** Fixture pixels stretched to width x height by sharp: real photo detail at any size. */
async function photo(name: string, width: number, height: number): Promise<Raster & { opaque?: true }> {
  const buf = await sharp(fixture(name)).resize(width, height, { fit: 'fill' }).ensureAlpha().raw().toBuffer();
  return { data: new Uint8ClampedArray(buf.buffer, buf.byteOffset, buf.length), width, height, opaque: true };
}

/** sharp's Lanczos3 of the same RGBA (libvips premultiplies alpha when there is some). */
async function sharpLanczos3(image: Raster, width: number, height: number): Promise<Uint8Array> {
  const raw = { raw: { width: image.width, height: image.height, channels: 4 as const } };
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.length), raw).resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, channels: number[] = [0, 1, 2]): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i += 4) {
    for (const c of channels) {
      d += Math.abs(a[i + c]! - b[i + c]!);
      n++;
    }
  }
  return d / n;
}

/** The output through a lossless PNG, read back by the independent decoder: the same pixels. */
async function roundTrip(out: Raster): Promise<void> {
  const decoded = await independentDecode(await encodePngLean(out));
  expect([decoded.width, decoded.height]).toEqual([out.width, out.height]);
  expect(Buffer.from(decoded.data).equals(Buffer.from(out.data))).toBe(true);
}

describe('Lanczos3 resizer (wasm/resize)', () => {
  it.each([
    [1001, 667, 600, 400], // 1.67x, odd source
    [640, 427, 333, 223], // 1.92x, odd output
    [999, 1001, 997, 1000], // barely reduced: support 3 taps each side
    [1500, 937, 311, 194], // 4.8x: the support widened 4.8 times
  ])('%ix%i -> %ix%i matches sharp\'s Lanczos3 and stays opaque', async (iw, ih, ow, oh) => {
    const image = await photo('rocket-small.jpg', iw, ih);
    const out = await lanczos3Resize(image, ow, oh);
    expect([out.width, out.height, out.opaque, out.data.length]).toEqual([ow, oh, true, ow * oh * 4]);
    for (let i = 3; i < out.data.length; i += 4) if (out.data[i] !== 255) expect.fail(`alpha ${out.data[i]} at ${i}`);
    expect(meanAbsDiff(out.data, await sharpLanczos3(image, ow, oh))).toBeLessThan(0.6);
    await roundTrip(out);
  });

  it('keeps a flat colour exactly flat (the taps of every pixel sum to 1, edges included)', async () => {
    const data = new Uint8ClampedArray(203 * 101 * 4);
    for (let i = 0; i < data.length; i += 4) data.set([200, 17, 93, 255], i);
    const out = await lanczos3Resize({ data, width: 203, height: 101, opaque: true }, 37, 19);
    for (let i = 0; i < out.data.length; i += 4) expect(Array.from(out.data.subarray(i, i + 4))).toEqual([200, 17, 93, 255]);
    // 40000 -> 3 with no box pre-shrink: 40000 taps per pixel, more than the module's stack holds
    const wide = new Uint8ClampedArray(40000 * 2 * 4);
    for (let i = 0; i < wide.length; i += 4) wide.set([9, 250, 120, 255], i);
    const few = await lanczos3Resize({ data: wide, width: 40000, height: 2, opaque: true }, 3, 1);
    expect(Array.from(few.data)).toEqual([9, 250, 120, 255, 9, 250, 120, 255, 9, 250, 120, 255]);
  });

  it.each([
    [1, 300, 1, 77],
    [300, 1, 77, 1],
    [5, 5, 1, 1],
    [301, 2, 150, 1],
  ])('1-pixel edges: %ix%i -> %ix%i', async (iw, ih, ow, oh) => {
    const data = new Uint8ClampedArray(iw * ih * 4);
    for (let i = 0; i < iw * ih; i++) data.set([(i * 37) % 256, (i * 11) % 256, 255 - ((i * 5) % 256), 255], i * 4);
    const image = { data, width: iw, height: ih, opaque: true as const };
    const out = await lanczos3Resize(image, ow, oh);
    expect([out.width, out.height]).toEqual([ow, oh]);
    // sharp's edge rule differs (it extends the edge pixels, this drops the taps outside): a looser bound
    expect(meanAbsDiff(out.data, await sharpLanczos3(image, ow, oh))).toBeLessThan(4);
    await roundTrip(out);
  });

  it('premultiplies alpha: a transparent neighbour lends no colour, and the result matches sharp', async () => {
    const { data, info } = await sharp(fixture('astronaut-alpha.png')).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    const image: Raster = { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
    const ow = Math.round(info.width / 2.3);
    const oh = Math.round(info.height / 2.3);
    const out = await resize(image, ow, oh);
    expect(out.opaque).toBeUndefined();
    const ref = await sharpLanczos3(image, ow, oh);
    expect(meanAbsDiff(out.data, ref, [3])).toBeLessThan(0.5);
    // colour compared where it shows (alpha > 32); where alpha is ~0 the colour is meaningless
    let d = 0;
    let n = 0;
    for (let i = 0; i < ref.length; i += 4) {
      if (ref[i + 3]! <= 32) continue;
      for (let c = 0; c < 3; c++) d += Math.abs(out.data[i + c]! - ref[i + c]!);
      n += 3;
    }
    expect(n).toBeGreaterThan(1000);
    expect(d / n).toBeLessThan(2);
    await roundTrip(out);

    // red, then a fully transparent green column: without premultiplying, green bleeds into red
    const w = 40;
    const px = new Uint8ClampedArray(w * 4 * 4);
    for (let i = 0; i < w * 4; i++) px.set(i % w < w / 2 ? [255, 0, 0, 255] : [0, 255, 0, 0], i * 4);
    const small = await lanczos3Resize({ data: px, width: w, height: 4 }, 13, 2);
    for (let i = 0; i < small.data.length; i += 4) if (small.data[i + 3]! > 0) expect(small.data[i + 1]).toBe(0);
  });

  it('holds the output and a ring of rows, never a copy of the input, within the plan\'s model', async () => {
    const image = await photo('rocket-small.jpg', 3000, 2000);
    releaseGrown(0);
    await lanczos3Resize(image, 1600, 1067);
    const held = instanceStats().live.resize!;
    releaseGrown(0);
    expect(held).toBeLessThanOrEqual(resizeMemory(image, { width: 1600, height: 1067 }));
    expect(held).toBeLessThan(4 * 1600 * 1067 + 4 * 1024 * 1024); // the 24 MB input would not fit
  });

  it('is never asked to enlarge: the plan fits the output inside the source', () => {
    const plan = planImage(fixture('rocket-small.jpg'), { ...DEFAULT_OUTPUT_OPTIONS, format: 'jpeg', max_width: 5000 }, 1e9);
    expect(plan.output).toEqual({ width: 640, height: 427 });
  });
});
