// The lean PNG path: for an image whose usual PNG encode (libimagequant or OxiPNG, 26-72 B/px)
// does not fit the memory budget, a plain PNG written here: each row Paeth-filtered and fed to the
// runtime's zlib (CompressionStream) a batch of rows at a time, so besides the pixels it holds only
// the compressed output twice at the end (its IDAT chunks, then the file: at most ~8 B/px) and a
// few rows. Larger files than OxiPNG's
// (no filter search, zlib's default level), but the image is processed instead of refused.
import { pngChunk } from '../../src/codecs/png.js';
import { be32, concat } from '../../src/codecs/bytes.js';
import type { Raster } from '../../src/codecs/types.js';

/** Rows handed to zlib per write: ~1 MB of filtered bytes for an 8000 px wide RGBA row batch. */
const BATCH_BYTES = 1 << 20;

function paethRow(data: Uint8ClampedArray, y: number, stride: number, out: Uint8Array, at: number): void {
  out[at] = 4; // filter type Paeth
  const row = y * stride;
  const prev = row - stride;
  for (let x = 0; x < stride; x++) {
    const a = x >= 4 ? data[row + x - 4]! : 0;
    const b = y > 0 ? data[prev + x]! : 0;
    const c = x >= 4 && y > 0 ? data[prev + x - 4]! : 0;
    const p = a + b - c;
    const pa = Math.abs(p - a);
    const pb = Math.abs(p - b);
    const pc = Math.abs(p - c);
    const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    out[at + 1 + x] = (data[row + x]! - pred) & 0xff;
  }
}

export async function encodePngLean(image: Raster): Promise<Uint8Array> {
  const { width, height, data } = image;
  const stride = width * 4;
  const rowsPerBatch = Math.max(1, Math.floor(BATCH_BYTES / (stride + 1)));
  const stream = new CompressionStream('deflate');
  const writer = stream.writable.getWriter();
  const parts: Uint8Array[] = [];
  const reading = (async () => {
    const reader = stream.readable.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      // each piece zlib hands back becomes its own IDAT chunk (PNG allows many): no second copy of the stream
      parts.push(pngChunk('IDAT', value));
    }
  })();
  for (let y0 = 0; y0 < height; y0 += rowsPerBatch) {
    const rows = Math.min(rowsPerBatch, height - y0);
    const batch = new Uint8Array(rows * (stride + 1));
    for (let k = 0; k < rows; k++) paethRow(data, y0 + k, stride, batch, k * (stride + 1));
    await writer.ready;
    await writer.write(batch);
  }
  await writer.close();
  await reading;
  const ihdr = concat([be32(width), be32(height), new Uint8Array([8, 6, 0, 0, 0])]);
  return concat([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), ...parts, pngChunk('IEND', new Uint8Array(0))]);
}
