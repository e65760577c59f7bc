// The lean PNG path: for an image whose usual PNG encode (libimagequant or OxiPNG, 26-72 B/px)
// does not fit the memory budget, a plain PNG written here: each row Paeth-filtered and fed to the
// runtime's zlib (CompressionStream) a batch of rows at a time, so besides the pixels it holds only
// the compressed output twice at the end (its IDAT chunks, then the file: at most ~8 B/px) and a
// few rows. Larger files than OxiPNG's
// (no filter search, zlib's default level), but the image is processed instead of refused.
import { crc32, pngChunk } from '../../src/codecs/png.js';
import { be32, concat } from '../../src/codecs/bytes.js';
import type { Raster } from '../../src/codecs/types.js';

/** Rows handed to zlib per write: ~1 MB of filtered bytes for an 8000 px wide RGBA row batch. */
const BATCH_BYTES = 1 << 20;

/**
 * The IDAT chunks are written into blocks this large, not kept as one small buffer per piece zlib
 * hands back: glibc serves blocks of 32 MiB with their own mmap (its threshold never passes
 * 32 MiB), so they go back to the system when collected, while 67 MB of 16 KiB pieces (an 8000x6000
 * photo with alpha) filled the thread's malloc arena and 120 MiB of it stayed resident after the
 * image (bench/diag/large-memory.ts).
 */
const BLOCK_BYTES = 32 << 20;

/** Appends IDAT chunks (length, type, data, CRC) to a list of large blocks. */
class IdatBlocks {
  readonly used: Uint8Array[] = [];
  private block = new Uint8Array(0);
  private at = 0;

  add(data: Uint8Array): void {
    const size = data.length + 12;
    if (this.at + size > this.block.length) {
      this.close();
      this.block = new Uint8Array(Math.max(BLOCK_BYTES, size));
      this.at = 0;
    }
    const b = this.block;
    const view = new DataView(b.buffer);
    view.setUint32(this.at, data.length);
    b.set(IDAT, this.at + 4);
    b.set(data, this.at + 8);
    view.setUint32(this.at + 8 + data.length, crc32(b.subarray(this.at + 4, this.at + 8 + data.length)));
    this.at += size;
  }

  /** the blocks' written parts, in order */
  close(): Uint8Array[] {
    if (this.at > 0) this.used.push(this.block.subarray(0, this.at));
    this.block = new Uint8Array(0);
    this.at = 0;
    return this.used;
  }
}

const IDAT = new Uint8Array([0x49, 0x44, 0x41, 0x54]);

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
  const idat = new IdatBlocks();
  const reading = (async () => {
    const reader = stream.readable.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      // each piece zlib hands back becomes its own IDAT chunk (PNG allows many): no second copy of the stream
      idat.add(value);
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
  return concat([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), ...idat.close(), pngChunk('IEND', new Uint8Array(0))]);
}
