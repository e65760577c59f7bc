// GIF at the container level: the logical screen and the first frame's descriptor, read without
// decoding. Pure and bounds-checked.
import type { Dimensions } from './types.js';
import { ascii, startsWith, u16le } from './bytes.js';

export const detectGif = (b: Uint8Array) => startsWith(b, ascii('GIF87a')) || startsWith(b, ascii('GIF89a'));

export function gifDimensions(b: Uint8Array): Dimensions | null {
  if (b.length < 13 || !detectGif(b)) return null;
  const width = u16le(b, 6);
  const height = u16le(b, 8);
  return width > 0 && height > 0 ? { width, height } : null;
}

interface FrameRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The first image descriptor, after the global palette and any extension blocks; null if none. */
function firstFrame(b: Uint8Array): FrameRect | null {
  const flags = b[10] ?? 0;
  let i = 13 + (flags & 0x80 ? 3 * (1 << ((flags & 7) + 1)) : 0);
  while (i < b.length) {
    const block = b[i];
    if (block === 0x2c) {
      if (i + 10 > b.length) return null;
      return { x: u16le(b, i + 1), y: u16le(b, i + 3), width: u16le(b, i + 5), height: u16le(b, i + 7) };
    }
    if (block !== 0x21) return null; // trailer or garbage before any image
    i += 2; // introducer, label
    while (i < b.length && b[i] !== 0) i += b[i]! + 1; // data sub-blocks
    i += 1;
  }
  return null;
}

/**
 * A reason to refuse from the header alone: decoders paint the first frame into the logical
 * screen, so a frame reaching outside it (a tiny file can declare 65535x65535) is refused.
 */
export function gifRefusal(b: Uint8Array): string | null {
  const screen = gifDimensions(b);
  const frame = firstFrame(b);
  if (!screen || !frame) return 'GIF decode failed: no image in the file';
  if (frame.width === 0 || frame.height === 0 || frame.x + frame.width > screen.width || frame.y + frame.height > screen.height) {
    return `GIF refused: its first frame (${frame.width}x${frame.height} at ${frame.x},${frame.y}) reaches outside its ${screen.width}x${screen.height} screen`;
  }
  return null;
}
