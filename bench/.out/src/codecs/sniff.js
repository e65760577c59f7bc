const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
function startsWith(bytes, sig, at = 0) {
  if (bytes.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (bytes[at + i] !== sig[i]) return false;
  return true;
}
const ascii = (s) => Array.from(s, (c) => c.charCodeAt(0));
const RIFF = ascii("RIFF");
const WEBP = ascii("WEBP");
function detectFormat(bytes) {
  if (startsWith(bytes, [255, 216, 255])) return "jpeg";
  if (startsWith(bytes, PNG_SIGNATURE)) return "png";
  if (startsWith(bytes, RIFF) && startsWith(bytes, WEBP, 8)) return "webp";
  return null;
}
const u16be = (b, i) => (b[i] ?? 0) << 8 | (b[i + 1] ?? 0);
const u16le = (b, i) => (b[i] ?? 0) | (b[i + 1] ?? 0) << 8;
const u24le = (b, i) => u16le(b, i) | (b[i + 2] ?? 0) << 16;
const u32be = (b, i) => (u16be(b, i) << 16 >>> 0) + u16be(b, i + 2);
const u32le = (b, i) => u16le(b, i) + (u16le(b, i + 2) << 16 >>> 0);
const isSof = (m) => m >= 192 && m <= 207 && m !== 196 && m !== 200 && m !== 204;
function jpegSegments(b) {
  if (!startsWith(b, [255, 216])) return null;
  const out = [];
  let i = 2;
  while (i < b.length) {
    if (b[i] !== 255) return null;
    const start = i;
    while (i < b.length && b[i] === 255) i++;
    if (i >= b.length) return null;
    const marker = b[i];
    i++;
    if (marker === 216 || marker === 1 || marker >= 208 && marker <= 215) continue;
    if (marker === 217) return out;
    if (i + 2 > b.length) return null;
    const len = u16be(b, i);
    if (len < 2 || i + len > b.length) return null;
    out.push({ marker, start, end: i + len, data: i + 2 });
    i += len;
    if (marker === 218) return out;
  }
  return null;
}
function jpegDimensions(b) {
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
function pngDimensions(b) {
  if (b.length < 24 || !startsWith(b, PNG_SIGNATURE) || !startsWith(b, ascii("IHDR"), 12)) return null;
  const width = u32be(b, 16);
  const height = u32be(b, 20);
  return width > 0 && height > 0 ? { width, height } : null;
}
function webpDimensions(b) {
  if (b.length < 30) return null;
  const chunk = String.fromCharCode(b[12], b[13], b[14], b[15]);
  if (chunk === "VP8X") {
    return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  }
  if (chunk === "VP8 ") {
    if (!startsWith(b, [157, 1, 42], 23)) return null;
    const width = u16le(b, 26) & 16383;
    const height = u16le(b, 28) & 16383;
    return width > 0 && height > 0 ? { width, height } : null;
  }
  if (chunk === "VP8L") {
    if (b[20] !== 47) return null;
    const bits = u32le(b, 21);
    return { width: (bits & 16383) + 1, height: (bits >>> 14 & 16383) + 1 };
  }
  return null;
}
function readDimensions(bytes, format) {
  switch (format) {
    case "jpeg":
      return jpegDimensions(bytes);
    case "png":
      return pngDimensions(bytes);
    case "webp":
      return webpDimensions(bytes);
  }
}
const EXIF_HEADER = ascii("Exif\0\0");
function exifTiffOffset(b, segs) {
  for (const s of segs) {
    if (s.marker === 225 && startsWith(b, EXIF_HEADER, s.data)) return { tiff: s.data + 6, end: s.end };
  }
  return null;
}
function readExifOrientation(jpegBytes) {
  const segs = jpegSegments(jpegBytes);
  if (!segs) return 1;
  const exif = exifTiffOffset(jpegBytes, segs);
  if (!exif) return 1;
  const { tiff, end } = exif;
  const b = jpegBytes;
  if (tiff + 8 > end) return 1;
  let le;
  if (b[tiff] === 73 && b[tiff + 1] === 73) le = true;
  else if (b[tiff] === 77 && b[tiff + 1] === 77) le = false;
  else return 1;
  const r16 = (i) => le ? u16le(b, i) : u16be(b, i);
  const r32 = (i) => le ? u32le(b, i) : u32be(b, i);
  if (r16(tiff + 2) !== 42) return 1;
  const ifd = tiff + r32(tiff + 4);
  if (ifd < tiff + 8 || ifd + 2 > end) return 1;
  const count = r16(ifd);
  for (let n = 0; n < count; n++) {
    const e = ifd + 2 + n * 12;
    if (e + 12 > end) return 1;
    if (r16(e) !== 274) continue;
    const type = r16(e + 2);
    if (type !== 3 || r32(e + 4) < 1) return 1;
    const v = r16(e + 8);
    return v >= 1 && v <= 8 ? v : 1;
  }
  return 1;
}
function jpegHasEnd(b) {
  const segs = jpegSegments(b);
  const sos = segs?.at(-1);
  if (!sos || sos.marker !== 218) return false;
  for (let i = b.length - 2; i >= sos.end; i--) if (b[i] === 255 && b[i + 1] === 217) return true;
  return false;
}
const dropJpegMarker = (m) => m === 254 || m === 225 || m >= 227 && m <= 237 || m === 239;
function stripJpeg(b) {
  const segs = jpegSegments(b);
  if (!segs || segs.at(-1)?.marker !== 218) return null;
  const parts = [b.subarray(0, 2)];
  for (const s of segs) {
    if (s.marker === 218) {
      parts.push(b.subarray(s.start));
      break;
    }
    if (!dropJpegMarker(s.marker)) parts.push(b.subarray(s.start, s.end));
  }
  return concat(parts);
}
const PNG_DROP = /* @__PURE__ */ new Set(["tEXt", "zTXt", "iTXt", "eXIf", "tIME"]);
function stripPng(b) {
  if (!startsWith(b, PNG_SIGNATURE)) return null;
  const parts = [b.subarray(0, 8)];
  let i = 8;
  while (i + 12 <= b.length) {
    const len = u32be(b, i);
    const end = i + 12 + len;
    if (end > b.length) return null;
    const type = String.fromCharCode(b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
    if (!PNG_DROP.has(type)) parts.push(b.subarray(i, end));
    i = end;
    if (type === "IEND") return concat(parts);
  }
  return null;
}
function stripWebp(b) {
  if (detectFormat(b) !== "webp" || b.length < 20) return null;
  const riffEnd = Math.min(b.length, 8 + u32le(b, 4));
  const parts = [];
  let i = 12;
  let vp8x = null;
  while (i + 8 <= riffEnd) {
    const size = u32le(b, i + 4);
    const end = i + 8 + size + (size & 1);
    if (i + 8 + size > riffEnd) return null;
    const type = String.fromCharCode(b[i], b[i + 1], b[i + 2], b[i + 3]);
    if (type === "VP8X") {
      vp8x = b.slice(i, Math.min(end, riffEnd));
      if (vp8x.length > 8) vp8x[8] = vp8x[8] & ~12;
      parts.push(vp8x);
    } else if (type !== "EXIF" && type !== "XMP ") {
      parts.push(b.subarray(i, Math.min(end, riffEnd)));
    }
    i = end;
  }
  const body = concat(parts);
  const out = new Uint8Array(12 + body.length);
  out.set(b.subarray(0, 12));
  out.set(body, 12);
  const riffSize = out.length - 8;
  out[4] = riffSize & 255;
  out[5] = riffSize >>> 8 & 255;
  out[6] = riffSize >>> 16 & 255;
  out[7] = riffSize >>> 24 & 255;
  return out;
}
function stripMetadata(bytes, format) {
  switch (format) {
    case "jpeg":
      return stripJpeg(bytes);
    case "png":
      return stripPng(bytes);
    case "webp":
      return stripWebp(bytes);
  }
}
function jpegHasExif(b) {
  const segs = jpegSegments(b);
  return !!segs && exifTiffOffset(b, segs) !== null;
}
function concat(parts) {
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
export {
  detectFormat,
  jpegHasEnd,
  jpegHasExif,
  readDimensions,
  readExifOrientation,
  stripMetadata
};
//# sourceMappingURL=sniff.js.map
