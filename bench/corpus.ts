// The benchmark corpus: image files of a directory, classified by magic bytes.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectFormat, readDimensions, type InputFormat as ImageFormat } from '../src/codecs/sniff.js';

export interface CorpusImage {
  name: string;
  format: ImageFormat;
  bytes: Uint8Array;
  width: number;
  height: number;
}

export function loadCorpus(dir: string): CorpusImage[] {
  const out: CorpusImage[] = [];
  for (const name of readdirSync(dir).sort()) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(join(dir, name)));
    } catch {
      continue; // a directory or unreadable entry
    }
    const format = detectFormat(bytes);
    if (!format) continue;
    const dims = readDimensions(bytes, format);
    if (!dims) continue;
    out.push({ name, format, bytes, width: dims.width, height: dims.height });
  }
  if (out.length === 0) throw new Error(`no images in ${dir}`);
  return out;
}

export const ofFormat = (images: CorpusImage[], f: ImageFormat) => images.filter((i) => i.format === f);
