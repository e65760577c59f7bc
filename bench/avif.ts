// AVIF encoder speed trade-off: the pipeline's AVIF row (libaom via @jsquash/avif, one thread) at
// quality 50 with each `speed`, on the corpus photos, every output decoded by sharp and checked
// (size, PSNR). Then one generated 12-megapixel photo at the chosen speed, to extrapolate the
// time for the largest image MAX_IMAGE_PIXELS admits against the 120 s per-image limit.
import sharp from 'sharp';
import { applyOrientation, AVIF_OPTIONS, CODECS, codecFor } from '../workers/codecs.js';
import { measureVariants, type Variant } from './codec.js';
import type { CorpusImage } from './corpus.js';
import { figure, type Figure } from './report.js';
import { now, round } from './stats.js';

const Q = 50;
const SPEEDS = [5, 6, 7, 8, 9, 10];
const TIME_LIMIT_S = 120;
const MAX_PIXELS = 50_000_000;

function avifAtSpeed(speed: number): (img: CorpusImage) => Promise<Uint8Array> {
  return async (img) => {
    const row = codecFor(img.bytes)!;
    const upright = applyOrientation(await row.decode(img.bytes), row.orientation(img.bytes));
    const saved = AVIF_OPTIONS.speed;
    AVIF_OPTIONS.speed = speed;
    try {
      return await CODECS.avif.encode(upright, { quality: Q });
    } finally {
      AVIF_OPTIONS.speed = saved;
    }
  };
}

export async function avifBench(corpus: CorpusImage[], opts: { quick: boolean; log: (s: string) => void }) {
  sharp.concurrency(1);
  const photos = corpus.filter((i) => i.format === 'jpeg' && i.width >= 1000).slice(0, opts.quick ? 2 : 4);
  const speeds = opts.quick ? [6, 8, 10] : SPEEDS;
  const chosen = AVIF_OPTIONS.speed;
  opts.log(`avif: ${photos.length} photos x speeds ${speeds.join(', ')}, quality ${Q}`);
  const variants: Variant[] = speeds.map((s) => ({ name: `speed ${s}${s === chosen ? ' (chosen)' : ''}`, encode: avifAtSpeed(s) }));
  const jpeg: Variant = { name: 'JPEG (pipeline, for reference)', encode: async (img) => CODECS.jpeg.encode(applyOrientation(await CODECS.jpeg.decode(img.bytes), CODECS.jpeg.orientation(img.bytes)), { quality: Q }) };
  const results = await measureVariants(photos, [...variants, jpeg], 1);
  const pixels = photos.reduce((a, i) => a + i.width * i.height, 0);
  const jpegBytes = results.at(-1)!.bytes;
  const rows = results.map((r) => ({
    name: r.name, msPerMegapixel: round(r.msPerPass / (pixels / 1e6), 0), bytesVsJpeg: round(r.bytes / jpegBytes, 3),
    minPsnr: r.minPsnr, meanPsnr: r.meanPsnr, checked: r.checked, failures: r.failures,
  }));

  // scaling check at the chosen speed: one 12 MP photo-like image
  const [w, h] = [4000, 3000];
  const raw = Buffer.alloc(w * h * 4);
  let seed = 5;
  for (let i = 0; i < w * h; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const n = ((seed >>> 24) - 128) / 12;
    const x = i % w;
    const y = (i / w) | 0;
    raw.set([128 + 100 * Math.sin(x / 200) + n, (255 * y) / h + n, 90 + 60 * Math.cos((x + y) / 300) + n, 255], i * 4);
  }
  const t0 = now();
  const big = await CODECS.avif.encode({ data: new Uint8ClampedArray(raw.buffer, raw.byteOffset, raw.length), width: w, height: h }, { quality: Q });
  const bigSeconds = (now() - t0) / 1000;
  const meta = await sharp(big).metadata();
  const atMax = (bigSeconds * MAX_PIXELS) / (w * h);
  const figures: Figure[] = [
    figure('avif.chosen_speed', 'AVIF encoder speed setting (libaom, 0-10)', chosen, ''),
    figure('avif.ms_per_mp', `AVIF speed ${chosen}: ms per megapixel (corpus photos)`, rows.find((r) => r.name.startsWith(`speed ${chosen}`))?.msPerMegapixel ?? null, 'ms'),
    figure('avif.bytes_vs_jpeg', `AVIF speed ${chosen}: bytes / JPEG bytes at q${Q}`, rows.find((r) => r.name.startsWith(`speed ${chosen}`))?.bytesVsJpeg ?? null, 'x'),
    figure('avif.12mp_seconds', `AVIF speed ${chosen}: one ${w}x${h} image`, round(bigSeconds, 1), 's', 'decodes, right size', meta.width === w && meta.height === h),
    figure('avif.50mp_estimate', `AVIF speed ${chosen}: ${MAX_PIXELS / 1e6} MP, extrapolated`, round(atMax, 0), 's', `well under ${TIME_LIMIT_S} s (<= ${TIME_LIMIT_S / 2})`, atMax <= TIME_LIMIT_S / 2),
    figure('avif.outputs_checked', 'AVIF outputs decoded + checked', rows.every((r) => r.checked) ? 1 : 0, '', 'all decode, right size, PSNR sane', rows.every((r) => r.checked)),
  ];
  return { figures, detail: { photos: photos.map((p) => p.name), megapixels: round(pixels / 1e6, 2), rows, bigSeconds, w, h } };
}

export function avifTable(rows: Awaited<ReturnType<typeof avifBench>>['detail']['rows']): string {
  return ['| setting | ms per megapixel | bytes vs JPEG q50 | min / mean PSNR (dB) | check |', '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${r.msPerMegapixel} | ${r.bytesVsJpeg.toFixed(3)}x | ${r.minPsnr} / ${r.meanPsnr} | ${r.checked ? 'ok' : r.failures.join('; ')} |`)].join('\n');
}
