// Animated PNG and WebP at the container level: how many frames the file declares, and for WebP
// the first frame as a still file (libwebp's still decoder refuses animations). Only the first
// frame is ever decoded: the status notes "first frame of N".
import { ascii, concat, fourcc, le32, startsWith, u24le, u32be, u32le } from './bytes.js';
import { detectPng } from './png.js';
import { detectWebp } from './webp.js';

/** APNG: acTL's num_frames, when acTL comes before the image data; 1 otherwise. */
export function pngFrames(b: Uint8Array): number {
  if (!detectPng(b)) return 1;
  for (let i = 8; i + 12 <= b.length; ) {
    const len = u32be(b, i);
    const type = fourcc(b, i + 4);
    if (type === 'IDAT' || type === 'IEND') return 1;
    if (type === 'acTL' && len >= 8) return Math.max(1, u32be(b, i + 8));
    i += 12 + len;
  }
  return 1;
}

interface WebpChunk {
  type: string;
  start: number;
  payload: number;
  size: number;
}

function webpChunks(b: Uint8Array): WebpChunk[] {
  const out: WebpChunk[] = [];
  if (!detectWebp(b)) return out;
  const end = Math.min(b.length, 8 + u32le(b, 4));
  for (let i = 12; i + 8 <= end && out.length < 100_000; ) {
    const size = u32le(b, i + 4);
    if (i + 8 + size > end) break;
    out.push({ type: fourcc(b, i), start: i, payload: i + 8, size });
    i += 8 + size + (size & 1);
  }
  return out;
}

const VP8X_ANIMATION = 0x02;
const VP8X_ALPHA = 0x10;

export function webpFrames(b: Uint8Array): number {
  const chunks = webpChunks(b);
  const vp8x = chunks.find((c) => c.type === 'VP8X');
  if (!vp8x || !(b[vp8x.payload]! & VP8X_ANIMATION)) return 1;
  return Math.max(1, chunks.filter((c) => c.type === 'ANMF').length);
}

export interface WebpFrame {
  /** a still WebP file holding the frame */
  still: Uint8Array;
  x: number;
  y: number;
  canvasWidth: number;
  canvasHeight: number;
}

/** The first frame of an animated WebP as a still file and its place on the canvas; null if not animated or unreadable. */
export function firstWebpFrame(b: Uint8Array): WebpFrame | null {
  const chunks = webpChunks(b);
  const vp8x = chunks.find((c) => c.type === 'VP8X');
  const anmf = chunks.find((c) => c.type === 'ANMF');
  if (!vp8x || !anmf || vp8x.size < 10 || anmf.size < 16 || !(b[vp8x.payload]! & VP8X_ANIMATION)) return null;
  const p = anmf.payload;
  const x = 2 * u24le(b, p);
  const y = 2 * u24le(b, p + 3);
  const w = u24le(b, p + 6) + 1;
  const h = u24le(b, p + 9) + 1;
  const frameData = b.subarray(p + 16, anmf.payload + anmf.size);
  const hasAlpha = startsWith(frameData, ascii('ALPH'));
  let body: Uint8Array = frameData;
  if (hasAlpha) {
    const header = new Uint8Array([...ascii('VP8X'), 10, 0, 0, 0, VP8X_ALPHA, 0, 0, 0, (w - 1) & 0xff, ((w - 1) >> 8) & 0xff, ((w - 1) >> 16) & 0xff, (h - 1) & 0xff, ((h - 1) >> 8) & 0xff, ((h - 1) >> 16) & 0xff]);
    body = concat([header, frameData]);
  }
  const still = concat([new Uint8Array(ascii('RIFF')), le32(body.length + 4), new Uint8Array(ascii('WEBP')), body]);
  return { still, x, y, canvasWidth: u24le(b, vp8x.payload + 4) + 1, canvasHeight: u24le(b, vp8x.payload + 7) + 1 };
}
