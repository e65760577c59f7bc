// JPEG at the container level: marker segments, declared size, EXIF orientation, metadata
// stripping, the ICC profile (APP2 ICC_PROFILE) and the quality its DQT tables show. Pure and
// bounds-checked: hostile input yields null / a default, never an exception.
import type { Dimensions } from './types.js';
import { ascii, concat, startsWith, u16be, u16le, u32be, u32le } from './bytes.js';

export const detectJpeg = (b: Uint8Array) => startsWith(b, [0xff, 0xd8, 0xff]);

/** Start-of-frame markers carry the frame size: C0..CF except DHT (C4), JPG (C8), DAC (CC). */
export const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

interface JpegSegment {
  marker: number;
  /** offset of the 0xFF that starts the marker */
  start: number;
  /** offset just past the segment (marker + length field + payload) */
  end: number;
  /** offset of the payload (after the 2-byte length) */
  data: number;
}

/**
 * Walks JPEG marker segments from SOI up to (and including) the first SOS. Returns null when the
 * structure is broken before that point (bad marker, length past the end).
 */
export function jpegSegments(b: Uint8Array): JpegSegment[] | null {
  if (!startsWith(b, [0xff, 0xd8])) return null;
  const out: JpegSegment[] = [];
  let i = 2;
  while (i < b.length) {
    if (b[i] !== 0xff) return null;
    const start = i;
    while (i < b.length && b[i] === 0xff) i++; // fill bytes
    if (i >= b.length) return null;
    const marker = b[i]!;
    i++;
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no length
    if (marker === 0xd9) return out; // EOI before SOS
    if (i + 2 > b.length) return null;
    const len = u16be(b, i);
    if (len < 2 || i + len > b.length) return null;
    out.push({ marker, start, end: i + len, data: i + 2 });
    i += len;
    if (marker === 0xda) return out;
  }
  return null;
}

export function jpegDimensions(b: Uint8Array): Dimensions | null {
  const segs = jpegSegments(b);
  if (!segs) return null;
  for (const s of segs) {
    if (isSof(s.marker) && s.end - s.data >= 5) {
      const height = u16be(b, s.data + 1);
      const width = u16be(b, s.data + 3);
      return width > 0 && height > 0 ? { width, height } : null;
    }
  }
  return null;
}

/** The number of colour components the frame declares (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK); 0 when unreadable. */
export function jpegComponents(b: Uint8Array): number {
  const sof = jpegSegments(b)?.find((s) => isSof(s.marker) && s.end - s.data >= 6);
  return sof ? b[sof.data + 5]! : 0;
}

const EXIF_HEADER = ascii('Exif\0\0');
const ICC_HEADER = ascii('ICC_PROFILE\0');

function exifTiffOffset(b: Uint8Array, segs: JpegSegment[]): { tiff: number; end: number } | null {
  for (const s of segs) {
    if (s.marker === 0xe1 && startsWith(b, EXIF_HEADER, s.data)) return { tiff: s.data + 6, end: s.end };
  }
  return null;
}

/**
 * EXIF orientation (1..8) from a JPEG's APP1 Exif segment, IFD0 tag 0x0112; 1 when absent or
 * unreadable. Both byte orders; every read is checked against the segment's end.
 */
export function readExifOrientation(jpegBytes: Uint8Array): number {
  const segs = jpegSegments(jpegBytes);
  if (!segs) return 1;
  const exif = exifTiffOffset(jpegBytes, segs);
  if (!exif) return 1;
  const { tiff, end } = exif;
  const b = jpegBytes;
  if (tiff + 8 > end) return 1;
  let le: boolean;
  if (b[tiff] === 0x49 && b[tiff + 1] === 0x49) le = true;
  else if (b[tiff] === 0x4d && b[tiff + 1] === 0x4d) le = false;
  else return 1;
  const r16 = (i: number) => (le ? u16le(b, i) : u16be(b, i));
  const r32 = (i: number) => (le ? u32le(b, i) : u32be(b, i));
  if (r16(tiff + 2) !== 42) return 1;
  const ifd = tiff + r32(tiff + 4);
  if (ifd < tiff + 8 || ifd + 2 > end) return 1;
  const count = r16(ifd);
  for (let n = 0; n < count; n++) {
    const e = ifd + 2 + n * 12;
    if (e + 12 > end) return 1;
    if (r16(e) !== 0x0112) continue;
    const type = r16(e + 2);
    if (type !== 3 || r32(e + 4) < 1) return 1; // SHORT, at least one value, stored inline
    const v = r16(e + 8);
    return v >= 1 && v <= 8 ? v : 1;
  }
  return 1;
}

/**
 * True when a JPEG has an EOI marker after its first scan, i.e. it was not cut short. Entropy-coded
 * data stuffs every 0xFF as FF 00 and restart markers are FF D0..D7, so FF D9 only appears as EOI.
 */
export function jpegHasEnd(b: Uint8Array): boolean {
  const segs = jpegSegments(b);
  const sos = segs?.at(-1);
  if (!sos || sos.marker !== 0xda) return false;
  for (let i = b.length - 2; i >= sos.end; i--) if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  return false;
}

/** True when a JPEG carries an APP1 Exif segment (used by tests and checks on outputs). */
export function jpegHasExif(b: Uint8Array): boolean {
  const segs = jpegSegments(b);
  return !!segs && exifTiffOffset(b, segs) !== null;
}

const isIccSegment = (b: Uint8Array, s: JpegSegment) => s.marker === 0xe2 && startsWith(b, ICC_HEADER, s.data);

/**
 * Segments kept when stripping: everything that changes how the pixels look or decode (DQT, DHT,
 * SOF, DRI, APP0 JFIF, APP14 Adobe colour transform, APP2 ICC_PROFILE). Dropped: APP1 (Exif incl.
 * GPS, XMP), other APP2 (FlashPix, MPF with its embedded previews), APP3..APP13, APP15 and COM.
 */
const keepSegment = (b: Uint8Array, s: JpegSegment) =>
  !(s.marker === 0xfe || s.marker === 0xe1 || (s.marker === 0xe2 && !isIccSegment(b, s)) || (s.marker >= 0xe3 && s.marker <= 0xed) || s.marker === 0xef);

/** The same JPEG with its metadata segments removed; null when the structure cannot be walked. */
export function stripJpeg(b: Uint8Array): Uint8Array | null {
  const segs = jpegSegments(b);
  if (!segs || segs.at(-1)?.marker !== 0xda) return null;
  const parts: Uint8Array[] = [b.subarray(0, 2)];
  for (const s of segs) {
    if (s.marker === 0xda) {
      parts.push(b.subarray(s.start));
      break;
    }
    if (keepSegment(b, s)) parts.push(b.subarray(s.start, s.end));
  }
  return concat(parts);
}

/** The ICC profile from the APP2 ICC_PROFILE chunks, reassembled in sequence order; null if absent or inconsistent. */
export function readJpegIcc(b: Uint8Array): Uint8Array | null {
  const segs = jpegSegments(b);
  if (!segs) return null;
  const chunks = new Map<number, Uint8Array>();
  let count = 0;
  for (const s of segs) {
    if (!isIccSegment(b, s) || s.end - s.data < 14) continue;
    const seq = b[s.data + 12]!;
    count = b[s.data + 13]!;
    chunks.set(seq, b.subarray(s.data + 14, s.end));
  }
  if (chunks.size === 0 || count === 0 || chunks.size !== count) return null;
  const parts: Uint8Array[] = [];
  for (let i = 1; i <= count; i++) {
    const c = chunks.get(i);
    if (!c) return null;
    parts.push(c);
  }
  return concat(parts);
}

const ICC_CHUNK = 65535 - 2 - ICC_HEADER.length - 2;

/** The JPEG with this ICC profile as APP2 chunks right after SOI (and APP0 JFIF, which must come first). */
export function embedJpegIcc(b: Uint8Array, icc: Uint8Array): Uint8Array {
  const segs = jpegSegments(b);
  const count = Math.ceil(icc.length / ICC_CHUNK);
  if (!segs || icc.length === 0 || count > 255) return b;
  const rest = segs.filter((s) => s.marker !== 0xda && !isIccSegment(b, s));
  const sos = segs.at(-1)!;
  const app0 = rest[0]?.marker === 0xe0 ? [rest.shift()!] : [];
  const iccSegs: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const data = icc.subarray(i * ICC_CHUNK, (i + 1) * ICC_CHUNK);
    const len = 2 + ICC_HEADER.length + 2 + data.length;
    iccSegs.push(new Uint8Array([0xff, 0xe2, len >> 8, len & 0xff, ...ICC_HEADER, i + 1, count]), data);
  }
  return concat([
    b.subarray(0, 2),
    ...app0.map((s) => b.subarray(s.start, s.end)),
    ...iccSegs,
    ...rest.map((s) => b.subarray(s.start, s.end)),
    b.subarray(sos.start),
  ]);
}

/** The DQT tables in natural (row-major) order by table id, as libjpeg holds them. */
export function jpegQuantTables(b: Uint8Array): Map<number, number[]> | null {
  const segs = jpegSegments(b);
  if (!segs) return null;
  const tables = new Map<number, number[]>();
  for (const s of segs) {
    if (s.marker !== 0xdb) continue;
    let p = s.data;
    while (p < s.end) {
      const wide = b[p]! >> 4;
      const id = b[p]! & 15;
      p++;
      if (id > 3 || p + (wide ? 128 : 64) > s.end) return null;
      const natural = new Array<number>(64);
      for (let k = 0; k < 64; k++) natural[ZIGZAG[k]!] = wide ? u16be(b, p + 2 * k) : b[p + k]!;
      p += wide ? 128 : 64;
      tables.set(id, natural);
    }
  }
  return tables.size > 0 ? tables : null;
}

/** Natural index of the k-th coefficient in zigzag order (ITU T.81 figure A.6). */
const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

// ImageMagick's estimate (coders/jpeg.c, JPEGSetImageQuality): per quality 1..100, the expected
// sum of all quantisation values and a "hash" of four (colour) or two (grey) sample values, for
// the IJG tables scaled to that quality.
const HASH_COLOUR = [
  1020, 1015, 932, 848, 780, 735, 702, 679, 660, 645, 632, 623, 613, 607, 600, 594, 589, 585, 581, 571, 555, 542, 529, 514, 494,
  474, 457, 439, 424, 410, 397, 386, 373, 364, 351, 341, 334, 324, 317, 309, 299, 294, 287, 279, 274, 267, 262, 257, 251, 247,
  243, 237, 232, 227, 222, 217, 213, 207, 202, 198, 192, 188, 183, 177, 173, 168, 163, 157, 153, 148, 143, 139, 132, 128, 125,
  119, 115, 108, 104, 99, 94, 90, 84, 79, 74, 70, 64, 59, 55, 49, 45, 40, 34, 30, 25, 20, 15, 11, 6, 4, 0,
];
const SUMS_COLOUR = [
  32640, 32635, 32266, 31495, 30665, 29804, 29146, 28599, 28104, 27670, 27225, 26725, 26210, 25716, 25240, 24789, 24373, 23946,
  23572, 22846, 21801, 20842, 19949, 19121, 18386, 17651, 16998, 16349, 15800, 15247, 14783, 14321, 13859, 13535, 13081, 12702,
  12423, 12056, 11779, 11513, 11135, 10955, 10676, 10392, 10208, 9928, 9747, 9564, 9369, 9193, 9017, 8822, 8639, 8458, 8270,
  8084, 7896, 7710, 7527, 7347, 7156, 6977, 6788, 6607, 6422, 6236, 6054, 5867, 5684, 5495, 5305, 5128, 4945, 4751, 4638, 4442,
  4248, 4065, 3888, 3698, 3509, 3326, 3139, 2957, 2775, 2586, 2405, 2216, 2037, 1846, 1666, 1483, 1297, 1109, 927, 735, 554,
  375, 201, 128, 0,
];
const HASH_GREY = [
  510, 505, 422, 380, 355, 338, 326, 318, 311, 305, 300, 297, 293, 291, 288, 286, 284, 283, 281, 280, 279, 278, 277, 273, 262,
  251, 243, 233, 225, 218, 211, 205, 198, 193, 186, 181, 177, 172, 168, 164, 158, 156, 152, 148, 145, 142, 139, 136, 133, 131,
  129, 126, 123, 120, 118, 115, 113, 110, 107, 105, 102, 100, 97, 94, 92, 89, 87, 83, 81, 79, 76, 74, 70, 68, 66, 63, 61, 57,
  55, 52, 50, 48, 44, 42, 39, 37, 34, 31, 29, 26, 24, 21, 18, 16, 13, 11, 8, 6, 3, 2, 0,
];
const SUMS_GREY = [
  16320, 16315, 15946, 15277, 14655, 14073, 13623, 13230, 12859, 12560, 12240, 11861, 11456, 11081, 10714, 10360, 10027, 9679,
  9368, 9056, 8680, 8331, 7995, 7668, 7376, 7084, 6823, 6562, 6345, 6125, 5939, 5756, 5571, 5421, 5240, 5086, 4976, 4829, 4719,
  4616, 4463, 4393, 4280, 4166, 4092, 3980, 3909, 3835, 3755, 3688, 3621, 3541, 3467, 3396, 3323, 3247, 3170, 3096, 3021, 2952,
  2874, 2804, 2727, 2657, 2583, 2509, 2437, 2362, 2290, 2211, 2136, 2068, 1996, 1915, 1858, 1773, 1692, 1620, 1552, 1477, 1398,
  1326, 1251, 1179, 1109, 1031, 961, 884, 814, 736, 667, 592, 518, 441, 369, 292, 221, 151, 86, 64, 0,
];

/**
 * The quality (1..100) a JPEG's quantisation tables show, estimated as ImageMagick's `identify`
 * does; null when there are no tables or no estimate (identify then reports none either).
 */
export function estimateJpegQuality(b: Uint8Array): number | null {
  const tables = jpegQuantTables(b);
  if (!tables) return null;
  let sum = 0;
  for (const t of tables.values()) for (const v of t) sum += v;
  const t0 = tables.get(0);
  const t1 = tables.get(1);
  if (!t0) return null;
  const [hash, sums, q] = t1
    ? [HASH_COLOUR, SUMS_COLOUR, t0[2]! + t0[53]! + t1[0]! + t1[63]!]
    : [HASH_GREY, SUMS_GREY, t0[2]! + t0[53]!];
  for (let i = 0; i < 100; i++) {
    if (q < hash[i]! && sum < sums[i]!) continue;
    return (q <= hash[i]! && sum <= sums[i]!) || i >= 50 ? i + 1 : null;
  }
  return null;
}
