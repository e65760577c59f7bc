// HEIC/HEIF at the container level: brand check, declared size (ispe, turned by irot), ICC profile
// (colr) and the item count, read without decoding. AVIF is HEIF too but has its own row.
import type { Dimensions } from './types.js';
import { fourcc, u16be, u32be } from './bytes.js';
import { boxes, child, primaryProperties, readColrIcc } from './isobmff.js';

const HEIF_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);
const AVIF_BRANDS = new Set(['avif', 'avis']);

export function detectHeif(b: Uint8Array): boolean {
  if (b.length < 16 || fourcc(b, 4) !== 'ftyp') return false;
  const size = Math.min(u32be(b, 0), b.length);
  let heif = false;
  for (let i = 8; i + 4 <= size; i += 4) {
    if (i === 12) continue; // minor version
    const brand = fourcc(b, i);
    if (AVIF_BRANDS.has(brand)) return false;
    if (HEIF_BRANDS.has(brand)) heif = true;
  }
  return heif;
}

/**
 * The primary image's spatial extent (for a grid, the whole grid), after its clean-aperture crop, as displayed:
 * libheif applies irot/imir while decoding, so a quarter turn swaps width and height here.
 */
export function heifDimensions(b: Uint8Array): Dimensions | null {
  let best: Dimensions | null = null;
  let quarterTurn = false;
  let crop: Dimensions | null = null;
  for (const p of primaryProperties(b)) {
    if (p.type === 'irot' && p.end > p.data) quarterTurn = ((b[p.data]! & 3) % 2) === 1;
    // clean aperture: encoders pad to whole coding blocks (a 64x48 photo coded as 64x64) and crop here
    if (p.type === 'clap' && p.end - p.data >= 16) {
      const w = u32be(b, p.data) / (u32be(b, p.data + 4) || 1);
      const h = u32be(b, p.data + 8) / (u32be(b, p.data + 12) || 1);
      if (w >= 1 && h >= 1) crop = { width: Math.round(w), height: Math.round(h) };
    }
    if (p.type !== 'ispe' || p.end - p.data < 12) continue;
    const width = u32be(b, p.data + 4);
    const height = u32be(b, p.data + 8);
    if (width > 0 && height > 0 && !best) best = { width, height };
  }
  if (best && crop && crop.width <= best.width && crop.height <= best.height) best = crop;
  return best && quarterTurn ? { width: best.height, height: best.width } : best;
}

export const readHeifIcc = readColrIcc;

/** More items than this (tiles of a grid, thumbnails, metadata) is not a photo: a 48 MP iPhone grid has ~100. */
const MAX_ITEMS = 4096;

export function heifRefusal(b: Uint8Array): string | null {
  const meta = boxes(b, 0, b.length).find((x) => x.type === 'meta');
  const iinf = child(b, meta, 'iinf', true);
  if (!iinf) return 'HEIF decode failed: no item information';
  const version = b[iinf.data] ?? 0;
  const items = version === 0 ? u16be(b, iinf.data + 4) : u32be(b, iinf.data + 4);
  if (items > MAX_ITEMS) return `HEIF refused: ${items} items (tiles) declared, more than ${MAX_ITEMS}`;
  return heifDimensions(b) ? null : 'HEIF decode failed: no image size (ispe) in the header';
}
