// AVIF (ISO BMFF / HEIF) at the container level: brand check, declared size (ispe) and the ICC
// profile (colr prof). Boxes are walked with every size checked against its parent's end.
import type { Dimensions } from './types.js';
import { fourcc, u32be } from './bytes.js';
import { itemProperties, readColrIcc } from './isobmff.js';

export function detectAvif(b: Uint8Array): boolean {
  if (b.length < 16 || fourcc(b, 4) !== 'ftyp') return false;
  const size = Math.min(u32be(b, 0), b.length);
  for (let i = 8; i + 4 <= size; i += 4) {
    if (i === 12) continue; // minor version
    const brand = fourcc(b, i);
    if (brand === 'avif' || brand === 'avis') return true;
  }
  return false;
}

/** The largest image spatial extent (ispe) declared: the primary image or a bigger auxiliary one. */
export function avifDimensions(b: Uint8Array): Dimensions | null {
  let best: Dimensions | null = null;
  for (const p of itemProperties(b)) {
    if (p.type !== 'ispe' || p.end - p.data < 12) continue;
    const width = u32be(b, p.data + 4);
    const height = u32be(b, p.data + 8);
    if (width > 0 && height > 0 && (!best || width * height > best.width * best.height)) best = { width, height };
  }
  return best;
}

export const readAvifIcc = readColrIcc;
