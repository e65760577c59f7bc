// Header-only inspection of image bytes: format by magic bytes, declared dimensions, EXIF
// orientation, and lossless metadata stripping. Pure functions over Uint8Array, no Node APIs, so
// they run on the main thread and inside pool workers alike. Every parser is bounds-checked:
// hostile input yields null / a default, never an exception.

export type ImageFormat = 'jpeg' | 'png' | 'webp';

export interface Dimensions {
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

function startsWith(bytes: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (bytes.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (bytes[at + i] !== sig[i]) return false;
  return true;
}

const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const RIFF = ascii('RIFF');
const WEBP = ascii('WEBP');

/** The image format by magic bytes only (never by extension or Content-Type). */
export function detectFormat(bytes: Uint8Array): ImageFormat | null {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, PNG_SIGNATURE)) return 'png';
  if (startsWith(bytes, RIFF) && startsWith(bytes, WEBP, 8)) return 'webp';
  return null;
}

const u16be = (b: Uint8Array, i: number) => ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
const u16le = (b: Uint8Array, i: number) => (b[i] ?? 0) | ((b[i + 1] ?? 0) << 8);
const u24le = (b: Uint8Array, i: number) => u16le(b, i) | ((b[i + 2] ?? 0) << 16);
const u32be = (b: Uint8Array, i: number) => ((u16be(b, i) << 16) >>> 0) + u16be(b, i + 2);
const u32le = (b: Uint8Array, i: number) => u16le(b, i) + ((u16le(b, i + 2) << 16) >>> 0);

/** Start-of-frame markers carry the frame size: C0..CF except DHT (C4), JPG (C8), DAC (CC). */
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

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
function jpegSegments(b: Uint8Array): JpegSegment[] | null {
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

function jpegDimensions(b: Uint8Array): Dimensions | null {
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

function pngDimensions(b: Uint8Array): Dimensions | null {
  // signature, then IHDR must be the first chunk: length(4)=13, "IHDR", width(4), height(4)
  if (b.length < 24 || !startsWith(b, PNG_SIGNATURE) || !startsWith(b, ascii('IHDR'), 12)) return null;
  const width = u32be(b, 16);
  const height = u32be(b, 20);
  return width > 0 && height > 0 ? { width, height } : null;
}

function webpDimensions(b: Uint8Array): Dimensions | null {
  if (b.length < 30) return null;
  const chunk = String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!);
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

/** The dimensions the header declares, read without decoding; null when the header is unreadable. */
export function readDimensions(bytes: Uint8Array, format: ImageFormat): Dimensions | null {
  switch (format) {
    case 'jpeg':
      return jpegDimensions(bytes);
    case 'png':
      return pngDimensions(bytes);
    case 'webp':
      return webpDimensions(bytes);
  }
}

const EXIF_HEADER = ascii('Exif\0\0');

/** Offset of the TIFF header inside the first Exif APP1 segment, or -1. */
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

// ---------------------------------------------------------------------------------------------
// Lossless metadata stripping (the container is rewritten, the coded image is kept byte for byte).

/** JPEG segments dropped: APP1 (Exif/XMP), APP3..APP13, APP15 and COM. APP0 (JFIF), APP2 (ICC
 * colour profile) and APP14 (Adobe colour transform) are kept: they change how pixels look. */
const dropJpegMarker = (m: number) => m === 0xfe || m === 0xe1 || (m >= 0xe3 && m <= 0xed) || m === 0xef;

function stripJpeg(b: Uint8Array): Uint8Array | null {
  const segs = jpegSegments(b);
  if (!segs || segs.at(-1)?.marker !== 0xda) return null;
  const parts: Uint8Array[] = [b.subarray(0, 2)];
  for (const s of segs) {
    if (s.marker === 0xda) {
      parts.push(b.subarray(s.start));
      break;
    }
    if (!dropJpegMarker(s.marker)) parts.push(b.subarray(s.start, s.end));
  }
  return concat(parts);
}

const PNG_DROP = new Set(['tEXt', 'zTXt', 'iTXt', 'eXIf', 'tIME']);

function stripPng(b: Uint8Array): Uint8Array | null {
  if (!startsWith(b, PNG_SIGNATURE)) return null;
  const parts: Uint8Array[] = [b.subarray(0, 8)];
  let i = 8;
  while (i + 12 <= b.length) {
    const len = u32be(b, i);
    const end = i + 12 + len;
    if (end > b.length) return null;
    const type = String.fromCharCode(b[i + 4]!, b[i + 5]!, b[i + 6]!, b[i + 7]!);
    if (!PNG_DROP.has(type)) parts.push(b.subarray(i, end));
    i = end;
    if (type === 'IEND') return concat(parts);
  }
  return null;
}

function stripWebp(b: Uint8Array): Uint8Array | null {
  if (detectFormat(b) !== 'webp' || b.length < 20) return null;
  const riffEnd = Math.min(b.length, 8 + u32le(b, 4));
  const parts: Uint8Array[] = [];
  let i = 12;
  let vp8x: Uint8Array | null = null;
  while (i + 8 <= riffEnd) {
    const size = u32le(b, i + 4);
    const end = i + 8 + size + (size & 1);
    if (i + 8 + size > riffEnd) return null;
    const type = String.fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!);
    if (type === 'VP8X') {
      vp8x = b.slice(i, Math.min(end, riffEnd));
      if (vp8x.length > 8) vp8x[8] = vp8x[8]! & ~0x0c; // clear the EXIF (0x08) and XMP (0x04) flags
      parts.push(vp8x);
    } else if (type !== 'EXIF' && type !== 'XMP ') {
      parts.push(b.subarray(i, Math.min(end, riffEnd)));
    }
    i = end;
  }
  const body = concat(parts);
  const out = new Uint8Array(12 + body.length);
  out.set(b.subarray(0, 12));
  out.set(body, 12);
  const riffSize = out.length - 8;
  out[4] = riffSize & 0xff;
  out[5] = (riffSize >>> 8) & 0xff;
  out[6] = (riffSize >>> 16) & 0xff;
  out[7] = (riffSize >>> 24) & 0xff;
  return out;
}

/**
 * The same image with its privacy metadata (EXIF incl. GPS, XMP, text, comments) removed from
 * the container; null when the structure cannot be walked safely.
 */
export function stripMetadata(bytes: Uint8Array, format: ImageFormat): Uint8Array | null {
  switch (format) {
    case 'jpeg':
      return stripJpeg(bytes);
    case 'png':
      return stripPng(bytes);
    case 'webp':
      return stripWebp(bytes);
  }
}

/** True when a JPEG carries an APP1 Exif segment (used by tests and checks on outputs). */
export function jpegHasExif(b: Uint8Array): boolean {
  const segs = jpegSegments(b);
  return !!segs && exifTiffOffset(b, segs) !== null;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
