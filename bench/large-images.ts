// Large images: an 8000x6000 PNG with alpha and three 8000x6000 JPEG photos (gradients + noise,
// made here with sharp, never stored) through a CompressPool at default settings (MAX_DECODE_MEMORY_MB default,
// WORKER_THREADS threads), all submitted at once, in a child process that samples its own RSS.
// Targets: peak RSS <= 1.2 GB (the memory budget admits one such image at a time) and RSS 30 s
// after the last image <= idle + 150 MB (grown codec instances are dropped and collected).
// Shrink-on-load: one of them at max_width=1600 alone, with the pool's shrinkOnLoad on and off
// (today's full-size path), sequential and progressive: the plan's reservation and the measured
// peak RSS above idle, ratio on / off (issue 22: <= 1/8).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import sharp from 'sharp';
import { DEFAULT_OUTPUT_OPTIONS } from '../src/codecs/output-options.js';
import { planImage } from '../src/codecs/plan.js';
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

const MiB = 1024 * 1024;

async function runChild(threads: number, settleMs: number, settings: object, files: string[]): Promise<LargeImagesResult> {
  const child = spawn(process.execPath, [join(here, 'large-images-child.js'), String(threads), String(settleMs), JSON.stringify(settings), ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`large-images child exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as LargeImagesResult;
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
    const r = await runChild(threads, settleMs, { options: {}, shrinkOnLoad: true }, files);
    const ok = r.outputs.every((o) => (o as { width?: number; outcome?: string }).width === width && (o as { outcome?: string }).outcome === 'compressed');
    const load0 = loadavg()[0]!.toFixed(2);

    // shrink-on-load against the full-size path, one image alone
    const progressiveFile = join(dir, 'large-progressive.jpg');
    writeFileSync(progressiveFile, await sharp(readFileSync(files[1]!)).jpeg({ quality: 85, progressive: true }).toBuffer());
    const options = { max_width: 1600 };
    const shrink: Record<string, { plannedMB: number; peakAboveIdleMB: number; width: number | undefined; loadavg1: number }> = {};
    for (const [kind, file] of [['sequential', files[1]!], ['progressive', progressiveFile]] as const) {
      for (const on of [true, false]) {
        const plan = planImage(new Uint8Array(readFileSync(file)), { ...DEFAULT_OUTPUT_OPTIONS, ...options }, 50_000_000, [], { shrinkOnLoad: on });
        const run = await runChild(threads, 2000, { options, shrinkOnLoad: on }, [file]);
        const key = `${kind}.${on ? 'on' : 'off'}`;
        shrink[key] = { plannedMB: round(plan.memoryBytes / MiB, 1), peakAboveIdleMB: round(run.peakMB - run.idleMB, 1), width: (run.outputs[0] as { width?: number }).width, loadavg1: round(loadavg()[0]!, 2) };
        opts.log(`large: ${kind} ${width}x${height} -> 1600 px, shrink-on-load ${on ? 'on' : 'off'} (decode 1/${plan.decodeScale}): planned ${shrink[key]!.plannedMB} MiB, peak ${shrink[key]!.peakAboveIdleMB} MiB above idle`);
      }
    }
    const ratio = (kind: string, f: 'plannedMB' | 'peakAboveIdleMB') => round(shrink[`${kind}.on`]![f] / shrink[`${kind}.off`]![f], 3);
    const loadNote = (kind: string) => `load avg ${shrink[`${kind}.on`]!.loadavg1}/${shrink[`${kind}.off`]!.loadavg1} (1 min, after each run)`;
    const shrinkOk = Object.values(shrink).every((x) => x.width === 1600);
    const figures: Figure[] = [
      figure('large.peak_rss', `Large images (a ${width}x${height} PNG with alpha and ${count - 1} JPEGs, ${threads} threads): peak RSS`, round(r.peakMB, 0), 'MiB', '<= 1.2 GB (1144 MiB)', r.peakMB <= 1144),
      figure('large.idle_rss', 'Large images: RSS before (pool idle, threads warm)', round(r.idleMB, 0), 'MiB'),
      figure('large.settled_rss', `Large images: RSS ${settleMs / 1000} s after the last image`, round(r.settledMB, 0), 'MiB', `<= idle + 150 MB (${round(r.idleMB + 143, 0)} MiB)`, r.settledMB <= r.idleMB + 143),
      figure('large.seconds', 'Large images: seconds for all four', round(r.seconds, 1), 's', 'all compressed, right size', ok, `load avg ${load0}`),
      ...(['sequential', 'progressive'] as const).flatMap((kind) => [
        figure(`large.shrink.${kind}.planned_ratio`, `48 MP ${kind} JPEG at max_width=1600: planned reservation, shrink-on-load / full size`, ratio(kind, 'plannedMB'), 'x',
          kind === 'sequential' ? '<= 0.125x' : '', kind === 'sequential' ? ratio(kind, 'plannedMB') <= 0.125 : null,
          `${shrink[`${kind}.on`]!.plannedMB} / ${shrink[`${kind}.off`]!.plannedMB} MiB; ${loadNote(kind)}`),
        figure(`large.shrink.${kind}.peak_ratio`, `48 MP ${kind} JPEG at max_width=1600: peak RSS above idle, shrink-on-load / full size`, ratio(kind, 'peakAboveIdleMB'), 'x',
          kind === 'sequential' ? '<= 0.125x' : '', kind === 'sequential' ? ratio(kind, 'peakAboveIdleMB') <= 0.125 : null,
          `${shrink[`${kind}.on`]!.peakAboveIdleMB} / ${shrink[`${kind}.off`]!.peakAboveIdleMB} MiB; ${loadNote(kind)}`),
      ]),
      figure('large.shrink.checked', 'Large images at max_width=1600: outputs 1600 px wide', shrinkOk ? 1 : 0, '', 'all', shrinkOk),
    ];
    return { figures, detail: { ...r, width, height, count, threads, settleMs, shrinkOnLoad: shrink } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
