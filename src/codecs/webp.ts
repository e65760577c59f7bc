// WebP at the container level (RIFF): declared size, metadata stripping and the ICC profile (ICCP).
import type { Dimensions } from './types.js';
import { ascii, concat, fourcc, le32, startsWith, u16le, u24le, u32le } from './bytes.js';

export const detectWebp = (b: Uint8Array) => startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8);

export function webpDimensions(b: Uint8Array): Dimensions | null {
  if (b.length < 30) return null;
  const chunk = fourcc(b, 12);
  if (chunk === 'VP8X') {
    // flags(4), canvas width-1 (24 bit LE), canvas height-1 (24 bit LE)
    return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  }
  if (chunk === 'VP8 ') {
    // frame tag (3 bytes) then start code 9d 01 2a, then 14-bit width and height
    if (!startsWith(b, [0x9d, 0x01, 0x2a], 23)) return null;
    const width = u16le(b, 26) & 0x3fff;
    const height = u16le(b, 28) & 0x3fff;
    return width > 0 && height > 0 ? { width, height } : null;
  }
  if (chunk === 'VP8L') {
    if (b[20] !== 0x2f) return null;
    const bits = u32le(b, 21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  return null;
}

interface Chunk {
  type: string;
  /** the whole chunk, header and padding included */
  bytes: Uint8Array;
  payload: Uint8Array;
}

function chunks(b: Uint8Array): Chunk[] | null {
  if (!detectWebp(b) || b.length < 20) return null;
  const riffEnd = Math.min(b.length, 8 + u32le(b, 4));
  const out: Chunk[] = [];
  let i = 12;
  while (i + 8 <= riffEnd) {
    const size = u32le(b, i + 4);
    if (i + 8 + size > riffEnd) return null;
    const end = Math.min(i + 8 + size + (size & 1), riffEnd);
    out.push({ type: fourcc(b, i), bytes: b.subarray(i, end), payload: b.subarray(i + 8, i + 8 + size) });
    i = end;
  }
  return out;
}

function riff(body: Uint8Array[]): Uint8Array {
  const payload = concat(body);
  return concat([new Uint8Array(ascii('RIFF')), le32(payload.length + 4), new Uint8Array(ascii('WEBP')), payload]);
}

const VP8X_ICC = 0x20;
const VP8X_ALPHA = 0x10;
const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;

/** The same WebP without EXIF and XMP chunks (their VP8X flags cleared); ICCP stays. */
export function stripWebp(b: Uint8Array): Uint8Array | null {
  const list = chunks(b);
  if (!list) return null;
  return riff(list.filter((c) => c.type !== 'EXIF' && c.type !== 'XMP ').map((c) => {
    if (c.type !== 'VP8X' || c.bytes.length <= 8) return c.bytes;
    const copy = c.bytes.slice();
    copy[8] = copy[8]! & ~(VP8X_EXIF | VP8X_XMP);
    return copy;
  }));
}

export function readWebpIcc(b: Uint8Array): Uint8Array | null {
  const icc = chunks(b)?.find((c) => c.type === 'ICCP');
  return icc && icc.payload.length > 0 ? icc.payload : null;
}

/**
 * The WebP with an ICCP chunk. A simple-format file (one VP8 or VP8L chunk, which is what the
 * encoder writes for opaque images) is first rewrapped as extended format: VP8X (flags, canvas
 * size), then ICCP, then the image chunks, in the order the container spec requires.
 */
export function embedWebpIcc(b: Uint8Array, icc: Uint8Array): Uint8Array {
  const list = chunks(b);
  const dims = webpDimensions(b);
  if (!list || !dims || icc.length === 0) return b;
  const iccChunk = concat([new Uint8Array(ascii('ICCP')), le32(icc.length), icc, new Uint8Array(icc.length & 1)]);
  const rest = list.filter((c) => c.type !== 'VP8X' && c.type !== 'ICCP').map((c) => c.bytes);
  const old = list.find((c) => c.type === 'VP8X');
  let vp8x: Uint8Array;
  if (old && old.bytes.length >= 18) {
    vp8x = old.bytes.slice();
  } else {
    // VP8L carries its own alpha hint (bit 28 of its header); VP8 has none
    const vp8l = list.find((c) => c.type === 'VP8L');
    const alpha = !!vp8l && vp8l.payload.length >= 5 && (u32le(vp8l.payload, 1) >>> 28) & 1;
    const w = dims.width - 1;
    const h = dims.height - 1;
    vp8x = new Uint8Array([...ascii('VP8X'), 10, 0, 0, 0, alpha ? VP8X_ALPHA : 0, 0, 0, 0, w & 0xff, (w >> 8) & 0xff, (w >> 16) & 0xff, h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]);
  }
  vp8x[8] = vp8x[8]! | VP8X_ICC;
  return riff([vp8x, iccChunk, ...rest]);
}
