// Large images: an 8000x6000 PNG with alpha and three 8000x6000 JPEG photos (gradients + noise,
// made here with sharp, never stored) through a CompressPool at default settings (MAX_DECODE_MEMORY_MB default,
// WORKER_THREADS threads), all submitted at once, in a child process that samples its own RSS.
// Targets: peak RSS <= 1.2 GB (the memory budget admits one such image at a time) and RSS 30 s
// after the last image <= idle + 150 MB (grown codec instances are dropped and collected).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { generatedPhoto } from './generated-photo.js';

/** One alpha byte per pixel, 64..255 from left to right. */
async function alphaRamp(width: number, height: number): Promise<Buffer> {
  const row = Buffer.alloc(width);
  for (let x = 0; x < width; x++) row[x] = 64 + Math.floor((191 * x) / (width - 1));
  const out = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) row.copy(out, y * width);
  return out;
}
import { figure, type Figure } from './report.js';
import { round } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface LargeImagesResult {
  idleMB: number;
  peakMB: number;
  afterLastMB: number;
  settledMB: number;
  seconds: number;
  outputs: unknown[];
  liveInstancesMB: Record<string, number>;
}

export async function largeImagesBench(threads: number, opts: { quick: boolean; log: (s: string) => void }) {
  const [width, height] = [8000, 6000];
  const count = 4;
  const settleMs = opts.quick ? 10_000 : 30_000;
  const dir = mkdtempSync(join(tmpdir(), 'icp-bench-large-'));
  try {
    const files: string[] = [];
    for (let k = 0; k < count; k++) {
      const photo = await generatedPhoto(width, height, k + 1, { quality: 85 });
      // the first: a packshot PNG with alpha (a horizontal alpha ramp over the photo)
      const file = join(dir, k === 0 ? 'large-0.png' : `large-${k}.jpg`);
      writeFileSync(file, k === 0 ? await sharp(photo).joinChannel(await alphaRamp(width, height), { raw: { width, height, channels: 1 } }).png({ compressionLevel: 6 }).toBuffer() : photo);
      files.push(file);
    }
    opts.log(`large: a generated ${width}x${height} PNG with alpha and ${count - 1} JPEGs through a ${threads}-thread pool, settle ${settleMs / 1000} s`);
    const child = spawn(process.execPath, [join(here, 'large-images-child.js'), String(threads), String(settleMs), ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`large-images child exited with ${code}`);
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as LargeImagesResult;
    const ok = r.outputs.every((o) => (o as { width?: number; outcome?: string }).width === width && (o as { outcome?: string }).outcome === 'compressed');
    const figures: Figure[] = [
      figure('large.peak_rss', `Large images (a ${width}x${height} PNG with alpha and ${count - 1} JPEGs, ${threads} threads): peak RSS`, round(r.peakMB, 0), 'MiB', '<= 1.2 GB (1144 MiB)', r.peakMB <= 1144),
      figure('large.idle_rss', 'Large images: RSS before (pool idle, threads warm)', round(r.idleMB, 0), 'MiB'),
      figure('large.settled_rss', `Large images: RSS ${settleMs / 1000} s after the last image`, round(r.settledMB, 0), 'MiB', `<= idle + 150 MB (${round(r.idleMB + 143, 0)} MiB)`, r.settledMB <= r.idleMB + 143),
      figure('large.seconds', 'Large images: seconds for all four', round(r.seconds, 1), 's', 'all compressed, right size', ok),
    ];
    return { figures, detail: { ...r, width, height, count, threads, settleMs } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
