// Photo-like JPEGs made by the bench with sharp, never stored: smooth gradients plus sensor-like
// noise, and with `shapes` a few hard-edged discs and bars (edges and flat areas, as in a product
// shot). Compresses like a photo, not like a flat fill.
import sharp from 'sharp';

export async function generatedPhoto(width: number, height: number, seed: number, opts: { quality: number; shapes?: boolean }): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let s = seed >>> 0;
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const n = ((s >>> 24) - 128) / 10;
      const r = Math.hypot(x - width * 0.4, y - height * 0.6) / width;
      raw[i++] = 128 + 100 * Math.sin(x / (300 + seed * 40)) + n;
      raw[i++] = 255 * (y / height) * (1 - r) + n;
      raw[i++] = 60 + 120 * r + 40 * Math.cos((x + y) / 500) + n;
    }
  }
  if (opts.shapes) {
    const u = width / 100;
    for (let k = 0; k < 6; k++) {
      const cx = ((seed * 37 + k * 23) % 90) * u + 5 * u;
      const cy = ((seed * 53 + k * 41) % 90) * (height / 100) + 5 * (height / 100);
      const radius = (4 + ((seed + k * 7) % 9)) * u;
      const colour = [(seed * 70 + k * 90) % 256, (k * 60 + 40) % 256, (seed * 30 + k * 150) % 256];
      for (let y = Math.max(0, Math.floor(cy - radius)); y < Math.min(height, cy + radius); y++) {
        for (let x = Math.max(0, Math.floor(cx - radius)); x < Math.min(width, cx + radius); x++) {
          const disc = Math.hypot(x - cx, y - cy) < radius;
          const bar = k % 2 === 0 && Math.abs(y - cy) < radius / 5;
          if (!disc && !bar) continue;
          const i = (y * width + x) * 3;
          raw[i] = (colour[0]! + raw[i]!) >> 1;
          raw[i + 1] = (colour[1]! + raw[i + 1]!) >> 1;
          raw[i + 2] = (colour[2]! + raw[i + 2]!) >> 1;
        }
      }
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: opts.quality }).toBuffer();
}
