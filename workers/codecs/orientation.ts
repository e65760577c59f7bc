// EXIF orientation applied to the pixels.
import type { Raster } from '../../src/codecs/types.js';

/**
 * Returns the image as it should be displayed for an EXIF orientation (1..8): 2 mirror, 3 rotate
 * 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 anticlockwise.
 */
export function applyOrientation(image: Raster, orientation: number): Raster {
  if (orientation < 2 || orientation > 8) return image;
  const { width: w, height: h } = image;
  // a 4-byte-aligned view when possible: no copy of the source (it may be hundreds of MB)
  const src = image.data.byteOffset % 4 === 0
    ? new Uint32Array(image.data.buffer, image.data.byteOffset, w * h)
    : new Uint32Array(image.data.slice().buffer);
  const swap = orientation >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const dst = new Uint32Array(w * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let dx: number, dy: number;
      switch (orientation) {
        case 2: dx = w - 1 - x; dy = y; break;
        case 3: dx = w - 1 - x; dy = h - 1 - y; break;
        case 4: dx = x; dy = h - 1 - y; break;
        case 5: dx = y; dy = x; break;
        case 6: dx = h - 1 - y; dy = x; break;
        case 7: dx = h - 1 - y; dy = w - 1 - x; break;
        default: dx = y; dy = w - 1 - x; break; // 8
      }
      dst[dy * ow + dx] = src[row + x]!;
    }
  }
  return { data: new Uint8ClampedArray(dst.buffer), width: ow, height: oh, ...(image.opaque ? { opaque: true } : {}) };
}
