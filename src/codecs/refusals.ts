// What arrived, when no row of the codec table reads it: the refusal names it, so a supplier
// can tell a PDF or an HTML error page from a broken image. Magic bytes only (after leading
// whitespace and a BOM for the text formats).
import { ascii, startsWith, u16le } from './bytes.js';

const TEXT_START = 512;

/** The first non-blank bytes of a text file, lower-cased (enough to tell SVG and HTML apart). */
function textHead(b: Uint8Array): string {
  let i = startsWith(b, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  return new TextDecoder('latin1').decode(b.subarray(i, i + TEXT_START)).toLowerCase();
}

const isSvg = (head: string) => head.startsWith('<svg') || ((head.startsWith('<?xml') || head.startsWith('<!--')) && head.includes('<svg'));
const isHtml = (head: string) => head.startsWith('<!doctype html') || head.startsWith('<html') || /^<(head|body|title|meta|script)\b/.test(head);

/** The message for bytes no row accepts. */
export function refusalFor(b: Uint8Array): string {
  if (startsWith(b, ascii('%PDF-'))) return 'unsupported image format: PDF documents are not converted';
  // ICO/CUR: reserved 0, type 1 or 2, at least one image
  if (startsWith(b, [0, 0]) && (u16le(b, 2) === 1 || u16le(b, 2) === 2) && u16le(b, 4) > 0 && b.length >= 22) {
    return 'unsupported image format: ICO (Windows icon) is not supported';
  }
  if (startsWith(b, ascii('8BPS'))) return 'unsupported image format: PSD (Photoshop) is not supported';
  if (startsWith(b, [0xff, 0x0a]) || startsWith(b, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) return 'unsupported image format: JPEG XL is not supported';
  if (startsWith(b, [0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || startsWith(b, [0xff, 0x4f, 0xff, 0x51])) return 'unsupported image format: JPEG 2000 is not supported';
  const head = textHead(b);
  if (isSvg(head)) return 'unsupported image format: SVG is not rasterised (an SVG can carry script and external references)';
  if (isHtml(head)) return 'not an image: an HTML page arrived';
  if (b.length === 0) return 'not an image: the response was empty';
  return 'not an image: the bytes match no supported format';
}
