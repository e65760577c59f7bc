// AVIF (ISO BMFF / HEIF) at the container level: brand check, declared size (ispe) and the ICC
// profile (colr prof). Boxes are walked with every size checked against its parent's end.
import type { Dimensions } from './types.js';
import { fourcc, u32be } from './bytes.js';

interface Box {
  type: string;
  /** payload start (after size, type and, for full boxes, version+flags when the caller skips them) */
  data: number;
  end: number;
}

function boxes(b: Uint8Array, start: number, end: number): Box[] {
  const out: Box[] = [];
  let i = start;
  while (i + 8 <= end && out.length < 1000) {
    let size = u32be(b, i);
    let header = 8;
    if (size === 1) {
      // 64-bit size: only the low 32 bits can be meaningful for a file we hold in memory
      if (u32be(b, i + 8) !== 0) return out;
      size = u32be(b, i + 12);
      header = 16;
    } else if (size === 0) size = end - i;
    if (size < header || i + size > end) return out;
    out.push({ type: fourcc(b, i + 4), data: i + header, end: i + size });
    i += size;
  }
  return out;
}

const child = (b: Uint8Array, parent: Box | undefined, type: string, fullBox = false): Box | undefined =>
  parent && boxes(b, parent.data + (fullBox ? 4 : 0), parent.end).find((x) => x.type === type);

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

function itemProperties(b: Uint8Array): Box[] {
  const meta = boxes(b, 0, b.length).find((x) => x.type === 'meta');
  const ipco = child(b, child(b, meta, 'iprp', true), 'ipco');
  return ipco ? boxes(b, ipco.data, ipco.end) : [];
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

export function readAvifIcc(b: Uint8Array): Uint8Array | null {
  for (const p of itemProperties(b)) {
    if (p.type !== 'colr' || p.end - p.data <= 4) continue;
    const kind = fourcc(b, p.data);
    if (kind === 'prof' || kind === 'rICC') return b.subarray(p.data + 4, p.end);
  }
  return null;
}
