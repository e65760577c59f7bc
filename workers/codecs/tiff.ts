// TIFF decoder: utif2 (pure JS, MIT; LZW, Deflate, PackBits and uncompressed strips) for the
// decompression, and the samples turned into RGBA here: utif2's own conversion reads 16-bit
// samples in one byte order only and reaches for a browser global on CMYK. Only the first page:
// the copy utif2 reads ends after the first IFD, with the pointers to sub-IFDs, EXIF and GPS
// cut, so a chain of IFDs that loops back never reaches it. src/codecs/tiff.ts refused every
// layout this does not handle before the pool admitted the file.
import { createRequire } from 'node:module';
import { firstIfd, readTiffIcc, TAG, type Ifd } from '../../src/codecs/tiff.js';
import type { Codec, Raster } from '../../src/codecs/types.js';
import { cmykToSrgb } from './cmyk.js';
import { CodecError } from './wasm.js';

interface UtifIfd {
  width: number;
  height: number;
  data?: Uint8Array;
  [tag: string]: unknown;
}
interface Utif {
  decode(buffer: ArrayBuffer, prm?: object): UtifIfd[];
  decodeImage(buffer: ArrayBuffer, img: UtifIfd, ifds: UtifIfd[]): void;
}

const require = createRequire(import.meta.url);
const UTIF = require('utif2') as Utif;

/** A copy of the file whose first IFD is its only one: next-page pointer zeroed, sub-IFD tags renamed away. */
function firstPageOnly(bytes: Uint8Array, ifd: Ifd): Uint8Array {
  const copy = bytes.slice();
  copy.fill(0, ifd.nextPointer, ifd.nextPointer + 4);
  for (const tag of [TAG.subIfds, TAG.exifIfd, TAG.gpsIfd]) {
    const e = ifd.entries.get(tag);
    // 0xFFFF is no tag utif2 follows; the entry stays in place, so the IFD's layout is unchanged
    if (e !== undefined) copy[e] = copy[e + 1] = 0xff;
  }
  return copy;
}

/** A sample reader: 8-bit as is, 16-bit its high byte (utif2 turns 16-bit samples little-endian). */
function samples(data: Uint8Array, bps: number): (i: number) => number {
  return bps === 16 ? (i) => data[2 * i + 1]! : (i) => data[i]!;
}

export const tiff: Codec = {
  async decode(bytes) {
    const ifd = firstIfd(bytes);
    if (!ifd) throw new CodecError('TIFF decode failed: unreadable header');
    const copy = firstPageOnly(bytes, ifd);
    let page: UtifIfd;
    try {
      const ifds = UTIF.decode(copy.buffer as ArrayBuffer, { parseMN: false, debug: false });
      page = ifds[0]!;
      UTIF.decodeImage(copy.buffer as ArrayBuffer, page, ifds);
    } catch (err) {
      throw new CodecError(`TIFF decode failed: ${err instanceof Error ? err.message : String(err)}`.slice(0, 240));
    }
    const { width, height } = page;
    const data = page.data;
    const spp = ifd.values(TAG.samplesPerPixel)?.[0] ?? 1;
    const bps = ifd.values(TAG.bitsPerSample)?.[0] ?? 1;
    const photometric = ifd.values(TAG.photometric)?.[0] ?? 1;
    const rowBytes = Math.ceil((width * spp * bps) / 8);
    if (!data || data.length < rowBytes * height) throw new CodecError('TIFF decode failed: truncated (fewer samples than the header declares)');
    const pixels = width * height;
    const s = samples(data, bps);

    if (photometric === 5) {
      const cmyk = new Uint8Array(pixels * 4);
      for (let p = 0; p < pixels; p++) for (let c = 0; c < 4; c++) cmyk[p * 4 + c] = s(p * spp + c);
      const icc = readTiffIcc(bytes);
      const rgb = await cmykToSrgb({ data: cmyk, width, height }, icc);
      if (spp > 4) {
        for (let p = 0; p < pixels; p++) rgb.data[p * 4 + 3] = s(p * spp + 4);
        delete rgb.opaque;
      }
      return rgb;
    }
    const out = new Uint8ClampedArray(pixels * 4);
    let opaque = true;
    if (photometric === 2) {
      const alpha = spp >= 4;
      opaque = !alpha;
      for (let p = 0, o = 0; p < pixels; p++, o += 4) {
        const i = p * spp;
        out[o] = s(i);
        out[o + 1] = s(i + 1);
        out[o + 2] = s(i + 2);
        out[o + 3] = alpha ? s(i + 3) : 255;
      }
    } else if (photometric === 3 || bps < 8) {
      // palette, or 1/2/4-bit grey: indices packed in bytes, rows padded to a byte
      const map = photometric === 3 ? ifd.values(TAG.colorMap)! : null;
      const n = 1 << bps;
      const grey = (v: number) => (photometric === 0 ? 255 - Math.round((v * 255) / (n - 1)) : Math.round((v * 255) / (n - 1)));
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const o = (y * width + x) * 4;
          let v: number;
          if (bps === 8) v = data[y * rowBytes + x * spp]!;
          else {
            const bit = x * bps;
            v = (data[y * rowBytes + (bit >> 3)]! >> (8 - bps - (bit & 7))) & (n - 1);
          }
          if (map) {
            out[o] = map[v]! >> 8;
            out[o + 1] = map[n + v]! >> 8;
            out[o + 2] = map[2 * n + v]! >> 8;
          } else out[o] = out[o + 1] = out[o + 2] = grey(v);
          out[o + 3] = 255;
        }
      }
    } else {
      // 8/16-bit grey, with alpha when there is a second sample
      const alpha = spp >= 2;
      opaque = !alpha;
      for (let p = 0, o = 0; p < pixels; p++, o += 4) {
        const v = s(p * spp);
        out[o] = out[o + 1] = out[o + 2] = photometric === 0 ? 255 - v : v;
        out[o + 3] = alpha ? s(p * spp + 1) : 255;
      }
    }
    const raster: Raster = { data: out, width, height, ...(opaque ? { opaque } : {}) };
    return raster;
  },
  async encode() {
    throw new CodecError('TIFF is an input format only');
  },
  defaults: {},
};
