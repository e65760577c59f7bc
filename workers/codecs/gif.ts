// GIF decoder: omggif (pure JS, MIT). Its reader indexes every frame's position up front but
// decodes only what is asked: here the first frame, painted into the logical screen (the rest of
// an animation is never decoded, so a 300-frame GIF costs one frame).
import { createRequire } from 'node:module';
import type { Codec } from '../../src/codecs/types.js';
import { CodecError } from './wasm.js';

interface FrameInfo {
  x: number;
  y: number;
  width: number;
  height: number;
  transparent_index: number | null;
}
interface GifReader {
  width: number;
  height: number;
  numFrames(): number;
  frameInfo(i: number): FrameInfo;
  decodeAndBlitFrameRGBA(i: number, pixels: Uint8Array | Uint8ClampedArray): void;
}

const require = createRequire(import.meta.url);
const { GifReader } = require('omggif') as { GifReader: new (b: Uint8Array) => GifReader };

export const gif: Codec = {
  async decode(bytes) {
    let reader: GifReader;
    try {
      reader = new GifReader(bytes);
    } catch (err) {
      throw new CodecError(`GIF decode failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    const frames = reader.numFrames();
    if (frames < 1) throw new CodecError('GIF decode failed: no image in the file');
    const { width, height } = reader;
    const frame = reader.frameInfo(0);
    // the header check (src/codecs/gif.ts) refused frames outside the screen; this guards the blit
    if (frame.x + frame.width > width || frame.y + frame.height > height) throw new CodecError('GIF decode failed: frame outside the screen');
    const data = new Uint8ClampedArray(width * height * 4);
    try {
      reader.decodeAndBlitFrameRGBA(0, data);
    } catch (err) {
      throw new CodecError(`GIF decode failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    const covers = frame.x === 0 && frame.y === 0 && frame.width === width && frame.height === height;
    const opaque = covers && frame.transparent_index === null;
    return { data, width, height, ...(opaque ? { opaque } : {}), ...(frames > 1 ? { notes: [`first frame of ${frames}`] } : {}) };
  },
  async encode() {
    throw new CodecError('GIF is an input format only');
  },
  defaults: {},
};
