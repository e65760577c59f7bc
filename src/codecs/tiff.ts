// TIFF at the container level: the first IFD (size, layout, orientation, ICC profile), read
// without decoding. Only the first page is ever looked at. Pure and bounds-checked: an IFD that
// points outside the file, a value array past the end or a strip past the end is refused here,
// so the decoder (workers/codecs/tiff.ts) never sees it.
import type { Dimensions } from './types.js';
import { startsWith, u16be, u16le, u32be, u32le } from './bytes.js';

export const detectTiff = (b: Uint8Array) => startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a]);
const isBigTiff = (b: Uint8Array) => startsWith(b, [0x49, 0x49, 0x2b, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2b]);

export const TAG = {
  width: 256, height: 257, bitsPerSample: 258, compression: 259, photometric: 262, stripOffsets: 273,
  orientation: 274, samplesPerPixel: 277, rowsPerStrip: 278, stripByteCounts: 279, planar: 284,
  predictor: 317, colorMap: 320, tileWidth: 322, tileOffsets: 324, tileByteCounts: 325,
  subIfds: 330, extraSamples: 338, sampleFormat: 339, icc: 34675, exifIfd: 34665, gpsIfd: 34853,
} as const;

export interface Ifd {
  littleEndian: boolean;
  /** offset of the 4-byte pointer to the next IFD (the next page) */
  nextPointer: number;
  /** offset of each entry (12 bytes), by tag */
  entries: Map<number, number>;
  values(tag: number): number[] | null;
  /** the raw bytes of an UNDEFINED/BYTE value (the ICC profile) */
  raw(tag: number): Uint8Array | null;
}

const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 16: 8 };
/** No value array of a page we accept is longer: one offset per strip or tile. */
const MAX_VALUES = 1 << 20;

export function firstIfd(b: Uint8Array): Ifd | null {
  if (!detectTiff(b) || b.length < 8) return null;
  const le = b[0] === 0x49;
  const r16 = (i: number) => (le ? u16le(b, i) : u16be(b, i));
  const r32 = (i: number) => (le ? u32le(b, i) : u32be(b, i));
  const at = r32(4);
  if (at < 8 || at + 2 > b.length) return null;
  const count = r16(at);
  const nextPointer = at + 2 + count * 12;
  if (count === 0 || nextPointer + 4 > b.length) return null;
  const entries = new Map<number, number>();
  for (let n = 0; n < count; n++) entries.set(r16(at + 2 + n * 12), at + 2 + n * 12);
  const place = (tag: number): { type: number; n: number; offset: number } | null => {
    const e = entries.get(tag);
    if (e === undefined) return null;
    const type = r16(e + 2);
    const n = r32(e + 4);
    const size = TYPE_SIZE[type];
    if (!size || n === 0 || n > MAX_VALUES) return null;
    const offset = size * n <= 4 ? e + 8 : r32(e + 8);
    return offset + size * n <= b.length ? { type, n, offset } : null;
  };
  return {
    littleEndian: le,
    nextPointer,
    entries,
    values(tag) {
      const p = place(tag);
      if (!p || ![1, 3, 4].includes(p.type)) return null;
      const out = new Array<number>(p.n);
      for (let k = 0; k < p.n; k++) out[k] = p.type === 1 ? b[p.offset + k]! : p.type === 3 ? r16(p.offset + 2 * k) : r32(p.offset + 4 * k);
      return out;
    },
    raw(tag) {
      const p = place(tag);
      return p && (p.type === 7 || p.type === 1) ? b.subarray(p.offset, p.offset + p.n) : null;
    },
  };
}

export function tiffDimensions(b: Uint8Array): Dimensions | null {
  const ifd = firstIfd(b);
  const width = ifd?.values(TAG.width)?.[0] ?? 0;
  const height = ifd?.values(TAG.height)?.[0] ?? 0;
  return width > 0 && height > 0 ? { width, height } : null;
}

export function tiffOrientation(b: Uint8Array): number {
  const v = firstIfd(b)?.values(TAG.orientation)?.[0] ?? 1;
  return v >= 1 && v <= 8 ? v : 1;
}

export const readTiffIcc = (b: Uint8Array): Uint8Array | null => firstIfd(b)?.raw(TAG.icc) ?? null;

/** Compression schemes the decoder reads: none, LZW, Adobe Deflate, Deflate, PackBits. */
const COMPRESSIONS: Record<number, string> = { 1: 'none', 5: 'LZW', 8: 'Deflate', 32946: 'Deflate', 32773: 'PackBits' };
/** Photometric interpretations the decoder reads. */
const PHOTOMETRICS: Record<number, string> = { 0: 'grey', 1: 'grey', 2: 'RGB', 3: 'palette', 5: 'CMYK' };
const PHOTOMETRIC_NAMES: Record<number, string> = { 4: 'transparency mask', 6: 'YCbCr', 8: 'CIE L*a*b*', 9: 'ICC L*a*b*', 10: 'ITU L*a*b*', 32844: 'LogL', 32845: 'LogLuv' };

/** A reason to refuse the first page from its header (safe to show), or null when it can be decoded. */
export function tiffRefusal(b: Uint8Array): string | null {
  if (isBigTiff(b)) return 'TIFF refused: BigTIFF is not supported';
  const ifd = firstIfd(b);
  if (!ifd || !tiffDimensions(b)) return 'TIFF decode failed: unreadable header';
  const { width, height } = tiffDimensions(b)!;
  const compression = ifd.values(TAG.compression)?.[0] ?? 1;
  if (!COMPRESSIONS[compression]) return `TIFF refused: compression ${compression === 7 || compression === 6 ? 'JPEG' : compression} is not supported (none, LZW, Deflate and PackBits are)`;
  const photometric = ifd.values(TAG.photometric)?.[0] ?? 1;
  if (!PHOTOMETRICS[photometric]) return `TIFF refused: ${PHOTOMETRIC_NAMES[photometric] ?? `photometric ${photometric}`} images are not supported`;
  const spp = ifd.values(TAG.samplesPerPixel)?.[0] ?? 1;
  const bps = ifd.values(TAG.bitsPerSample) ?? [1];
  if (spp < 1 || spp > 5) return `TIFF refused: ${spp} samples per pixel is not supported`;
  if (bps.some((x) => x !== bps[0]) || ![1, 2, 4, 8, 16].includes(bps[0]!)) return `TIFF refused: ${bps[0]} bits per sample is not supported (1-8 and 16 are)`;
  if (bps[0]! < 8 && spp > 1) return 'TIFF refused: fewer than 8 bits per sample is supported for one-sample images only';
  if ((ifd.values(TAG.sampleFormat)?.[0] ?? 1) === 3) return 'TIFF refused: floating-point samples are not supported';
  if ((ifd.values(TAG.planar)?.[0] ?? 1) === 2) return 'TIFF refused: planar (separate) sample layout is not supported';
  if (ifd.entries.has(TAG.tileWidth)) return 'TIFF refused: tiled TIFF is not supported';
  const need: Record<number, number> = { 0: 1, 1: 1, 2: 3, 3: 1, 5: 4 };
  if (spp < need[photometric]!) return `TIFF refused: ${spp} samples per pixel do not make a ${PHOTOMETRICS[photometric]} image`;
  if (photometric === 3 && bps[0]! > 8) return 'TIFF refused: 16-bit palette images are not supported';
  if (photometric === 3 && (ifd.values(TAG.colorMap)?.length ?? 0) < 3 * (1 << bps[0]!)) return 'TIFF decode failed: palette image without a colour map';
  const offsets = ifd.values(TAG.stripOffsets);
  const counts = ifd.values(TAG.stripByteCounts);
  const rows = Math.min(ifd.values(TAG.rowsPerStrip)?.[0] ?? height, height);
  if (!offsets || !counts || offsets.length !== counts.length || rows < 1) return 'TIFF decode failed: no strips';
  if (offsets.length !== Math.ceil(height / rows)) return `TIFF refused: ${offsets.length} strips for ${height} rows of ${rows}`;
  const rowBytes = Math.ceil((width * spp * bps[0]!) / 8);
  for (let k = 0; k < offsets.length; k++) {
    if (offsets[k]! + counts[k]! > b.length) return 'TIFF decode failed: truncated (a strip lies past the end of the file)';
    // uncompressed strips must hold their rows: the decoder would read past them otherwise
    if (compression === 1 && counts[k]! < rowBytes * Math.min(rows, height - k * rows)) return 'TIFF decode failed: a strip is shorter than its rows';
  }
  return null;
}
