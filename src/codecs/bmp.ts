// BMP at the container level: the file and DIB headers, read without decoding. Pure and
// bounds-checked; the pixel reader (workers/codecs/bmp.ts) trusts only what bmpHeader accepted.
import type { Dimensions } from './types.js';
import { ascii, startsWith, u16le, u32le } from './bytes.js';

/** DIB header sizes: BITMAPCOREHEADER, INFO, V2, V3, V4, V5. */
const HEADER_SIZES = new Set([12, 40, 52, 56, 108, 124]);

export const detectBmp = (b: Uint8Array) => startsWith(b, ascii('BM')) && b.length >= 26 && HEADER_SIZES.has(u32le(b, 14));

export interface BmpHeader {
  width: number;
  height: number;
  /** rows are stored top row first (negative height in the header) */
  topDown: boolean;
  bitCount: number;
  /** 0 BI_RGB, 3 BI_BITFIELDS, 6 BI_ALPHABITFIELDS */
  compression: number;
  dataOffset: number;
  /** bytes per stored row, padded to 4 */
  stride: number;
  /** offset and entry size (3 or 4 bytes) of the colour table, for 1/4/8-bit images */
  palette: { offset: number; entrySize: number; count: number } | null;
  /** channel masks for 16/32-bit images (BITFIELDS); alpha 0 when the file has none */
  masks: { r: number; g: number; b: number; a: number } | null;
}

const i32le = (b: Uint8Array, i: number) => u32le(b, i) | 0;

/** The header, or a reason (safe to show) why the file is refused. */
export function bmpHeader(b: Uint8Array): BmpHeader | string {
  if (!detectBmp(b)) return 'BMP decode failed: unreadable header';
  const dib = u32le(b, 14);
  const core = dib === 12;
  const width = core ? u16le(b, 18) : i32le(b, 18);
  const rawHeight = core ? u16le(b, 20) : i32le(b, 22);
  const bitCount = core ? u16le(b, 24) : u16le(b, 28);
  const compression = core ? 0 : u32le(b, 30);
  if (width <= 0 || rawHeight === 0 || rawHeight === -0x80000000) return `BMP refused: invalid size ${width}x${rawHeight}`;
  const height = Math.abs(rawHeight);
  if (compression === 1 || compression === 2) return 'BMP refused: RLE-compressed BMP is not supported';
  if (compression === 4 || compression === 5) return 'BMP refused: BMP with embedded JPEG or PNG is not supported';
  if (compression !== 0 && compression !== 3 && compression !== 6) return `BMP refused: compression ${compression} is not supported`;
  if (![1, 4, 8, 16, 24, 32].includes(bitCount)) return `BMP refused: ${bitCount} bits per pixel is not supported`;
  const stride = Math.ceil((width * bitCount) / 32) * 4;
  const dataOffset = u32le(b, 10);
  if (dataOffset + stride * height > b.length) return 'BMP decode failed: truncated (pixel data past the end of the file)';
  let palette: BmpHeader['palette'] = null;
  if (bitCount <= 8) {
    const entrySize = core ? 3 : 4;
    const declared = core ? 0 : u32le(b, 46);
    const count = declared > 0 && declared <= 1 << bitCount ? declared : 1 << bitCount;
    const offset = 14 + dib;
    if (offset + count * entrySize > b.length) return 'BMP decode failed: truncated colour table';
    palette = { offset, entrySize, count };
  }
  let masks: BmpHeader['masks'] = null;
  if (bitCount === 16 || bitCount === 32) {
    if (compression === 3 || compression === 6) {
      // masks follow a 40-byte header, or sit inside a V2+ header at the same place
      const a = compression === 6 || dib >= 56 ? u32le(b, 54 + 12) : 0;
      masks = { r: u32le(b, 54), g: u32le(b, 58), b: u32le(b, 62), a };
    } else if (bitCount === 16) masks = { r: 0x7c00, g: 0x03e0, b: 0x001f, a: 0 };
    else masks = { r: 0xff0000, g: 0xff00, b: 0xff, a: 0 }; // BI_RGB 32-bit: the fourth byte is unused
    if (!masks.r || !masks.g || !masks.b) return 'BMP refused: empty colour masks';
  }
  return { width, height, topDown: rawHeight < 0, bitCount, compression, dataOffset, stride, palette, masks };
}

export function bmpDimensions(b: Uint8Array): Dimensions | null {
  const h = bmpHeader(b);
  return typeof h === 'string' ? null : { width: h.width, height: h.height };
}

export const bmpRefusal = (b: Uint8Array): string | null => {
  const h = bmpHeader(b);
  return typeof h === 'string' ? h : null;
};
