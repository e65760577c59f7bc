// PNG at the container level: declared size, metadata stripping and the ICC profile (iCCP).
import type { Dimensions } from './types.js';
import { ascii, be32, concat, fourcc, startsWith, u32be, zlibDeflate, zlibInflate } from './bytes.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

export const detectPng = (b: Uint8Array) => startsWith(b, SIGNATURE);

export function pngDimensions(b: Uint8Array): Dimensions | null {
  // signature, then IHDR must be the first chunk: length(4)=13, "IHDR", width(4), height(4)
  if (b.length < 24 || !detectPng(b) || !startsWith(b, ascii('IHDR'), 12)) return null;
  const width = u32be(b, 16);
  const height = u32be(b, 20);
  return width > 0 && height > 0 ? { width, height } : null;
}

interface Chunk {
  type: string;
  start: number;
  data: number;
  end: number;
}

/** Chunks up to and including IEND; null when the structure is broken. */
function chunks(b: Uint8Array): Chunk[] | null {
  if (!detectPng(b)) return null;
  const out: Chunk[] = [];
  let i = 8;
  while (i + 12 <= b.length) {
    const len = u32be(b, i);
    const end = i + 12 + len;
    if (end > b.length) return null;
    const type = fourcc(b, i + 4);
    out.push({ type, start: i, data: i + 8, end });
    i = end;
    if (type === 'IEND') return out;
  }
  return null;
}

/** Text (incl. XMP in iTXt), EXIF and time stamps; iCCP, gAMA, cHRM, sRGB stay (they change colours). */
const DROP = new Set(['tEXt', 'zTXt', 'iTXt', 'eXIf', 'tIME']);

export function stripPng(b: Uint8Array): Uint8Array | null {
  const list = chunks(b);
  if (!list) return null;
  return concat([b.subarray(0, 8), ...list.filter((c) => !DROP.has(c.type)).map((c) => b.subarray(c.start, c.end))]);
}

/** Profiles larger than this are not carried over (real ones are a few KB; a bomb is not). */
const MAX_ICC_BYTES = 4 * 1024 * 1024;

export async function readPngIcc(b: Uint8Array): Promise<Uint8Array | null> {
  const iccp = chunks(b)?.find((c) => c.type === 'iCCP');
  if (!iccp) return null;
  const body = b.subarray(iccp.data, iccp.end - 4);
  const nul = body.indexOf(0);
  if (nul < 1 || nul > 79 || body[nul + 1] !== 0) return null;
  return zlibInflate(body.subarray(nul + 2), MAX_ICC_BYTES);
}

export async function embedPngIcc(b: Uint8Array, icc: Uint8Array): Promise<Uint8Array> {
  const list = chunks(b);
  if (!list || list[0]?.type !== 'IHDR' || icc.length === 0) return b;
  const body = concat([new Uint8Array([...ascii('ICC profile'), 0, 0]), await zlibDeflate(icc)]);
  const rest = list.slice(1).filter((c) => c.type !== 'iCCP' && c.type !== 'sRGB');
  return concat([b.subarray(0, list[0].end), pngChunk('iCCP', body), ...rest.map((c) => b.subarray(c.start, c.end))]);
}

export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const typed = concat([new Uint8Array(ascii(type)), data]);
  return concat([be32(data.length), typed, be32(crc32(typed))]);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
