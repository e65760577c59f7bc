// ISO BMFF (the HEIF family: AVIF, HEIC) box walking, shared by the AVIF and HEIF rows. Every size
// is checked against its parent's end; at most 1000 boxes per level are read.
import { fourcc, u16be, u32be } from './bytes.js';

export interface Box {
  type: string;
  /** payload start (after size, type and, for full boxes, version+flags when the caller skips them) */
  data: number;
  end: number;
}

export function boxes(b: Uint8Array, start: number, end: number): Box[] {
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

export const child = (b: Uint8Array, parent: Box | undefined, type: string, fullBox = false): Box | undefined =>
  parent && boxes(b, parent.data + (fullBox ? 4 : 0), parent.end).find((x) => x.type === type);

/** The item properties (ipco children) of the file's meta box. */
export function itemProperties(b: Uint8Array): Box[] {
  const meta = boxes(b, 0, b.length).find((x) => x.type === 'meta');
  const ipco = child(b, child(b, meta, 'iprp', true), 'ipco');
  return ipco ? boxes(b, ipco.data, ipco.end) : [];
}

/** The ICC profile of a colr property (prof or rICC); nclx colour descriptions carry none. */
export function readColrIcc(b: Uint8Array): Uint8Array | null {
  for (const p of itemProperties(b)) {
    if (p.type !== 'colr' || p.end - p.data <= 4) continue;
    const kind = fourcc(b, p.data);
    if (kind === 'prof' || kind === 'rICC') return b.subarray(p.data + 4, p.end);
  }
  return null;
}

/**
 * The properties associated (ipma) with the primary item (pitm), in order; the whole ipco list
 * when either box is missing. A HEIC holds other images too (thumbnails, padded tiles).
 */
export function primaryProperties(b: Uint8Array): Box[] {
  const all = itemProperties(b);
  const meta = boxes(b, 0, b.length).find((x) => x.type === 'meta');
  const pitm = child(b, meta, 'pitm', true);
  const iprp = child(b, meta, 'iprp', true);
  const ipma = child(b, iprp, 'ipma');
  if (!pitm || !ipma) return all;
  const primary = b[pitm.data] === 0 ? u16be(b, pitm.data + 4) : u32be(b, pitm.data + 4);
  const version = b[ipma.data]!;
  const wide = (b[ipma.data + 3]! & 1) === 1;
  let i = ipma.data + 8;
  const entries = u32be(b, ipma.data + 4);
  for (let e = 0; e < entries && i < ipma.end; e++) {
    const id = version < 1 ? u16be(b, i) : u32be(b, i);
    i += version < 1 ? 2 : 4;
    const n = b[i] ?? 0;
    i += 1;
    const picked: Box[] = [];
    for (let k = 0; k < n && i < ipma.end; k++) {
      const index = wide ? u16be(b, i) & 0x7fff : b[i]! & 0x7f;
      i += wide ? 2 : 1;
      if (index > 0 && all[index - 1]) picked.push(all[index - 1]!);
    }
    if (id === primary) return picked;
  }
  return all;
}
