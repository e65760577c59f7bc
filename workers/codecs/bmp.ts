// BMP reader, written here: uncompressed 1/4/8-bit palette, 16-bit (555 or bit fields), 24-bit and
// 32-bit (bit fields, alpha when the header has an alpha mask). The packages on npm either pull
// in Node's Buffer (bmp-js) or decode to their own layouts; the format is simple enough that
// forty lines over a header already checked by src/codecs/bmp.ts are the smaller risk.
import { bmpHeader, type BmpHeader } from '../../src/codecs/bmp.js';
import type { Codec } from '../../src/codecs/types.js';
import { CodecError } from './wasm.js';

/** A channel's value scaled to 0-255 from wherever its mask puts it. */
function channel(mask: number): (px: number) => number {
  if (!mask) return () => 255;
  const shift = 31 - Math.clz32(mask & -mask);
  const max = mask >>> shift;
  return (px) => Math.round((((px & mask) >>> shift) * 255) / max);
}

function decodeBmp(b: Uint8Array, h: BmpHeader): Uint8ClampedArray {
  const { width, height, bitCount, stride, dataOffset, palette, masks, topDown } = h;
  const out = new Uint8ClampedArray(width * height * 4);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const [r, g, bl, a] = masks ? [channel(masks.r), channel(masks.g), channel(masks.b), channel(masks.a)] : [];
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * stride;
    let o = y * width * 4;
    for (let x = 0; x < width; x++, o += 4) {
      if (palette) {
        const bit = x * bitCount;
        const byte = b[row + (bit >> 3)]!;
        const index = bitCount === 8 ? byte : (byte >> (8 - bitCount - (bit & 7))) & ((1 << bitCount) - 1);
        const e = palette.offset + Math.min(index, palette.count - 1) * palette.entrySize;
        out[o] = b[e + 2]!;
        out[o + 1] = b[e + 1]!;
        out[o + 2] = b[e]!;
        out[o + 3] = 255;
      } else if (bitCount === 24) {
        const i = row + x * 3;
        out[o] = b[i + 2]!;
        out[o + 1] = b[i + 1]!;
        out[o + 2] = b[i]!;
        out[o + 3] = 255;
      } else {
        const px = bitCount === 32 ? view.getUint32(row + x * 4, true) : view.getUint16(row + x * 2, true);
        out[o] = r!(px);
        out[o + 1] = g!(px);
        out[o + 2] = bl!(px);
        out[o + 3] = a!(px);
      }
    }
  }
  return out;
}

export const bmp: Codec = {
  async decode(bytes) {
    const h = bmpHeader(bytes);
    if (typeof h === 'string') throw new CodecError(h);
    const data = decodeBmp(bytes, h);
    const opaque = !h.masks?.a;
    return { data, width: h.width, height: h.height, ...(opaque ? { opaque } : {}) };
  },
  async encode() {
    throw new CodecError('BMP is an input format only');
  },
  defaults: {},
};
