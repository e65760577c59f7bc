// AVIF (ISO BMFF / HEIF) at the container level: brand check, declared size (ispe), the ICC
// profile (colr prof) and the frame count of an animation (an image sequence track). Boxes are
// walked with every size checked against its parent's end.
import type { Dimensions } from './types.js';
import { fourcc, u32be } from './bytes.js';
import { boxes, child, itemProperties, readColrIcc } from './isobmff.js';

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

/**
 * An animated AVIF (brand avis) carries its frames as samples of a picture track (handler pict)
 * in moov; the first such track (the colour one: an alpha track refers to it) gives the count
 * from its sample sizes (stsz). 1 for a still image or a file whose track cannot be read; libavif
 * decodes the first frame either way.
 */
export function avifFrames(b: Uint8Array): number {
  const moov = boxes(b, 0, b.length).find((x) => x.type === 'moov');
  if (!moov) return 1;
  for (const trak of boxes(b, moov.data, moov.end)) {
    if (trak.type !== 'trak') continue;
    const mdia = child(b, trak, 'mdia');
    const hdlr = child(b, mdia, 'hdlr');
    if (!hdlr || hdlr.end - hdlr.data < 12 || fourcc(b, hdlr.data + 8) !== 'pict') continue;
    const stsz = child(b, child(b, child(b, mdia, 'minf'), 'stbl'), 'stsz');
    if (!stsz || stsz.end - stsz.data < 12) return 1;
    return Math.max(1, u32be(b, stsz.data + 8));
  }
  return 1;
}
