// Codec: images per second per thread and output bytes, ours (the pipeline's codec rows, in this
// thread) against sharp (one libvips thread, one image at a time), same images, interleaved rounds.
// Every output is decoded again by sharp (an independent decoder) and checked: dimensions equal
// the upright source, and PSNR against the decoded source is sane (catches garbage output).
import sharp from 'sharp';
import { defaultOptions as jsquashJpegDefaults } from '@jsquash/jpeg/meta.js';
import { applyOrientation, codecFor, encodePng, MOZJPEG_OPTIONS, PNG_OPTIONS, type MozJpegOptions, type PngOptions } from '../workers/codecs.js';
import { readExifOrientation } from '../src/codecs/sniff.js';
import type { CorpusImage } from './corpus.js';
import { figure, type Figure } from './report.js';
import { median, now, round, sum } from './stats.js';

const Q = 50;

export interface Variant {
  name: string;
  encode(img: CorpusImage): Promise<Uint8Array>;
  /** pixels compared with alpha (PNG) or without */
  alpha?: boolean;
}

export interface VariantResult {
  name: string;
  images: number;
  /** median over rounds of the time for one pass over the images */
  msPerPass: number;
  imagesPerSecond: number;
  bytes: number;
  /** worst (lowest) PSNR over the images, dB; null when an output failed to decode */
  minPsnr: number | null;
  meanPsnr: number | null;
  checked: boolean;
  failures: string[];
  /** per-round pass times, ms */
  rounds: number[];
  /** per image: median ms over rounds */
  perImageMs: Record<string, number>;
  extra?: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Ours: exactly what workers/compress.ts does (decode, EXIF orientation, encode with the row's
// defaults and the pipeline's quality), minus the size/"never worse" bookkeeping.

export async function oursPipeline(img: CorpusImage, quality = Q): Promise<Uint8Array> {
  const row = codecFor(img.bytes);
  if (!row) throw new Error(`${img.name}: no codec`);
  const decoded = await row.decode(img.bytes);
  const upright = applyOrientation(decoded, row.orientation(img.bytes));
  return row.encode(upright, { quality });
}

/**
 * The JPEG row with some MozJPEG options changed for one call. The row spreads MOZJPEG_OPTIONS
 * at every call, so changing the shared object for the duration of the call measures exactly the
 * pipeline's code path with other settings (single-threaded here, so nothing else sees it).
 */
function oursJpegWith(overrides: Partial<MozJpegOptions>): (img: CorpusImage) => Promise<Uint8Array> {
  return async (img) => {
    const saved = { ...MOZJPEG_OPTIONS };
    Object.assign(MOZJPEG_OPTIONS, overrides);
    try {
      return await oursPipeline(img);
    } finally {
      Object.assign(MOZJPEG_OPTIONS, saved);
    }
  };
}

type JpegOptions = NonNullable<Parameters<ReturnType<typeof sharp>['jpeg']>[0]>;
const sharpJpeg = (opts: JpegOptions) => async (img: CorpusImage) =>
  new Uint8Array(await sharp(img.bytes).rotate().jpeg({ quality: Q, ...opts }).toBuffer());

// ---------------------------------------------------------------------------------------------
// Checking: decode with sharp, compare with the decoded (upright) source.

interface Reference {
  width: number;
  height: number;
  rgb: Buffer;
  rgba: Buffer;
}
const references = new Map<string, Reference>();

async function reference(img: CorpusImage): Promise<Reference> {
  let r = references.get(img.name);
  if (!r) {
    const rgb = await sharp(img.bytes).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const rgba = await sharp(img.bytes).rotate().ensureAlpha().raw().toBuffer();
    r = { width: rgb.info.width, height: rgb.info.height, rgb: rgb.data, rgba };
    references.set(img.name, r);
  }
  return r;
}

/** PSNR over RGB, or over RGBA with colour premultiplied by alpha (the colour of a fully
 * transparent pixel is invisible, and encoders may change it). */
function psnr(a: Uint8Array, b: Uint8Array, alpha: boolean): number {
  let se = 0;
  if (!alpha) {
    for (let i = 0; i < a.length; i++) {
      const d = a[i]! - b[i]!;
      se += d * d;
    }
  } else {
    for (let i = 0; i < a.length; i += 4) {
      const aa = a[i + 3]! / 255;
      const ba = b[i + 3]! / 255;
      for (let c = 0; c < 3; c++) {
        const d = a[i + c]! * aa - b[i + c]! * ba;
        se += d * d;
      }
      const d = a[i + 3]! - b[i + 3]!;
      se += d * d;
    }
  }
  const mse = se / a.length;
  return mse === 0 ? 99 : 10 * Math.log10((255 * 255) / mse);
}

/** The JPEG coding process from the frame marker: SOF0 baseline, SOF1 extended (16-bit
 * tables), SOF2 progressive. */
export function jpegProcess(b: Uint8Array): string {
  let i = 2;
  while (i + 4 <= b.length && b[i] === 0xff) {
    const m = b[i + 1]!;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return `SOF${m - 0xc0}`;
    i += 2 + ((b[i + 2]! << 8) | b[i + 3]!);
  }
  return '?';
}

/** PSNR of an output against its source, or an error string. */
async function check(img: CorpusImage, out: Uint8Array, alpha: boolean): Promise<number | string> {
  const ref = await reference(img);
  try {
    const pipeline = sharp(out);
    const { data, info } = await (alpha ? pipeline.ensureAlpha() : pipeline.removeAlpha()).raw().toBuffer({ resolveWithObject: true });
    if (info.width !== ref.width || info.height !== ref.height) return `${img.name}: ${info.width}x${info.height}, expected ${ref.width}x${ref.height}`;
    const p = psnr(data, alpha ? ref.rgba : ref.rgb, alpha);
    if (p < 25) return `${img.name}: PSNR ${p.toFixed(1)} dB (garbage?)`;
    return p;
  } catch (err) {
    return `${img.name}: output does not decode (${(err as Error).message.split('\n')[0]})`;
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring: `rounds` passes; in each pass every variant encodes every image once, variants in a
// rotating order so none is always first after a GC or a noisy neighbour's burst.

export async function measureVariants(images: CorpusImage[], variants: Variant[], rounds: number, repsPerImage = 1): Promise<VariantResult[]> {
  const results: VariantResult[] = [];
  // warm-up + bytes + checks (outputs are deterministic)
  for (const v of variants) {
    const failures: string[] = [];
    const psnrs: number[] = [];
    let bytes = 0;
    const processes = new Set<string>();
    for (const img of images) {
      let out: Uint8Array;
      try {
        out = await v.encode(img);
      } catch (err) {
        failures.push(`${img.name}: encode failed (${(err as Error).message})`);
        continue;
      }
      bytes += out.length;
      if (img.format === 'jpeg') processes.add(jpegProcess(out));
      const c = await check(img, out, v.alpha ?? false);
      if (typeof c === 'string') failures.push(c);
      else psnrs.push(c);
    }
    results.push({
      name: v.name, images: images.length * repsPerImage, msPerPass: NaN, imagesPerSecond: NaN, bytes,
      minPsnr: psnrs.length === images.length ? round(Math.min(...psnrs), 2) : null,
      meanPsnr: psnrs.length ? round(sum(psnrs) / psnrs.length, 2) : null,
      checked: failures.length === 0, failures, rounds: [], perImageMs: {},
      ...(processes.size ? { extra: { jpegProcess: [...processes].join('+') } } : {}),
    });
  }
  const perImage = variants.map(() => new Map<string, number[]>());
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < variants.length; k++) {
      const i = (k + r) % variants.length;
      const v = variants[i]!;
      if (results[i]!.failures.some((f) => f.includes('encode failed'))) continue;
      let ms = 0;
      for (let rep = 0; rep < repsPerImage; rep++) {
        for (const img of images) {
          const t0 = now();
          await v.encode(img);
          const t = now() - t0;
          ms += t;
          const list = perImage[i]!.get(img.name) ?? [];
          list.push(t);
          perImage[i]!.set(img.name, list);
        }
      }
      results[i]!.rounds.push(ms);
    }
  }
  for (const [i, res] of results.entries()) {
    for (const [name, ts] of perImage[i]!) res.perImageMs[name] = round(median(ts), 1);
    res.msPerPass = median(res.rounds);
    res.imagesPerSecond = res.images / (res.msPerPass / 1000);
  }
  return results;
}

/** Median over rounds of (b's time / a's time): a's speed relative to b, same round. */
export function speedRatio(a: VariantResult, b: VariantResult): number {
  const n = Math.min(a.rounds.length, b.rounds.length);
  const ratios: number[] = [];
  for (let i = 0; i < n; i++) ratios.push(b.rounds[i]! / a.rounds[i]!);
  return median(ratios);
}

// ---------------------------------------------------------------------------------------------

const PNG_VARIANTS = 7;

/** Ours at the pipeline's PNG settings and the rule's alternatives, against sharp palette:true. */
export async function pngBench(pngs: CorpusImage[], rounds: number) {
  const modes: Record<string, Record<string, string>> = {};
  const ours = (name: string, o: Partial<PngOptions>): Variant => ({
    name, alpha: true,
    async encode(img) {
      const row = codecFor(img.bytes)!;
      const rep = await encodePng(await row.decode(img.bytes), { ...PNG_OPTIONS, ...o });
      const ssim = rep.ssim === null ? '' : `, SSIM ${rep.ssim.toFixed(3)}`;
      (modes[name] ??= {})[img.name] = rep.mode === 'palette' ? `palette ${rep.colours} colours, q${rep.quality}${ssim}` : `lossless (palette q${rep.quality}${ssim})`;
      return rep.bytes;
    },
  });
  const variants: Variant[] = [
    ours('ours (pipeline settings)', {}),
    { name: 'sharp png palette:true', alpha: true, encode: async (img) => new Uint8Array(await sharp(img.bytes).png({ palette: true }).toBuffer()) },
    ours('ours, old rule (libimagequant 65-80, lossless below 65)', { minQuality: 65, targetQuality: 80, minSsim: 0 }),
    ours('ours, target 80', { targetQuality: 80 }),
    ours('ours, libimagequant speed 4 (sharp palette:true\'s)', { speed: 4 }),
    ours('ours, libimagequant speed 8', { speed: 8 }),
    ours('ours, OxiPNG level 1', { oxipngLevel: 1 }),
  ];
  const pr = await measureVariants(pngs, variants, rounds);
  for (const v of pr) if (modes[v.name]) v.extra = { modes: modes[v.name] };
  return pr.map((v) => ({ ...v, speedVsSharp: round(speedRatio(v, pr[1]!), 3), bytesVsSharp: round(v.bytes / pr[1]!.bytes, 4) }));
}

export function pngTradeOffTable(rows: CodecBenchResult['png']['variants']): string {
  const head = '| settings | img/s/thread | speed vs sharp palette:true | bytes vs sharp palette:true | min / mean PSNR (dB) | check |';
  const lines = rows.map((r) => `| ${r.name} | ${r.imagesPerSecond.toFixed(2)} | ${r.speedVsSharp.toFixed(2)}x | ${r.bytesVsSharp.toFixed(3)}x | ${r.minPsnr ?? 'n/a'} / ${r.meanPsnr ?? 'n/a'} | ${r.checked ? 'ok' : 'FAIL: ' + r.failures[0]} |`);
  return [head, '|---|---|---|---|---|---|', ...lines].join('\n');
}

export interface CodecBenchResult {
  figures: Figure[];
  jpeg: { images: string[]; variants: (VariantResult & { speedVsSharpMoz: number; bytesVsSharpMoz: number })[] };
  png: { images: string[]; variants: (VariantResult & { speedVsSharp: number; bytesVsSharp: number })[] };
  webp: { images: string[]; variants: (VariantResult & { speedVsSharp: number; bytesVsSharp: number })[] };
}

export async function codecBench(corpus: CorpusImage[], opts: { quick: boolean; log: (s: string) => void }): Promise<CodecBenchResult> {
  sharp.concurrency(1); // one libvips thread per image
  sharp.cache(false); // no result caching across repeated inputs
  const rounds = opts.quick ? 2 : 5;
  let jpegs = corpus.filter((i) => i.format === 'jpeg');
  let pngs = corpus.filter((i) => i.format === 'png');
  if (opts.quick) pngs = pngs.filter((i) => /alpha|chelsea/.test(i.name)).concat(pngs).slice(0, 2);
  const webps = corpus.filter((i) => i.format === 'webp');
  const figures: Figure[] = [];

  // -- JPEG: the three contenders plus the MozJPEG trade-off table, all in the same rounds.
  const libDefaults: Partial<MozJpegOptions> = { ...(jsquashJpegDefaults as MozJpegOptions), quality: Q, chroma_quality: Q };
  const jpegVariants: Variant[] = [
    { name: 'ours (pipeline settings)', encode: (img) => oursPipeline(img) },
    { name: 'sharp mozjpeg:true', encode: sharpJpeg({ mozjpeg: true }) },
    { name: 'sharp libjpeg-turbo (default)', encode: sharpJpeg({}) },
    { name: 'ours, library defaults (progressive:true, baseline:false)', encode: oursJpegWith(libDefaults) },
    { name: 'ours + progressive:true (baseline:true kept)', encode: oursJpegWith({ progressive: true }) },
    { name: 'ours, baseline:false (16-bit DQT)', encode: oursJpegWith({ baseline: false }) },
    { name: 'ours, optimize_coding:false', encode: oursJpegWith({ optimize_coding: false }) },
    { name: 'ours + trellis_opt_zero/opt_table', encode: oursJpegWith({ trellis_opt_zero: true, trellis_opt_table: true }) },
    { name: 'ours + trellis_multipass', encode: oursJpegWith({ trellis_multipass: true }) },
    { name: 'ours, trellis_loops:2', encode: oursJpegWith({ trellis_loops: 2 }) },
    { name: 'ours, trellis_loops:0 (trellis "off")', encode: oursJpegWith({ trellis_loops: 0 }) },
    { name: 'sharp mozjpeg, optimiseScans:false (preset keeps progressive)', encode: sharpJpeg({ mozjpeg: true, progressive: false, optimiseScans: false }) },
  ];
  const used = opts.quick ? jpegVariants.slice(0, 4) : jpegVariants;
  // --quick: four of the photos plus the EXIF-rotated one
  if (opts.quick) jpegs = [...jpegs.filter((i) => i.width >= 1000).slice(0, 4), ...jpegs.filter((i) => orientationOf(i) !== 1).slice(0, 1)];
  opts.log(`codec: JPEG, ${jpegs.length} images x ${used.length} variants x ${rounds} rounds`);
  const jr = await measureVariants(jpegs, used, rounds);
  const ours = jr[0]!;
  const moz = jr[1]!;
  const turbo = jr[2]!;
  const jpegRows = jr.map((v) => ({ ...v, speedVsSharpMoz: round(speedRatio(v, moz), 3), bytesVsSharpMoz: round(v.bytes / moz.bytes, 4) }));
  const sp = speedRatio(ours, moz);
  const by = ours.bytes / moz.bytes;
  figures.push(
    figure('codec.jpeg.ours_ips', 'JPEG ours: images/s per thread', round(ours.imagesPerSecond, 2), 'img/s'),
    figure('codec.jpeg.sharp_mozjpeg_ips', 'JPEG sharp mozjpeg: images/s per thread', round(moz.imagesPerSecond, 2), 'img/s'),
    figure('codec.jpeg.sharp_turbo_ips', 'JPEG sharp libjpeg-turbo: images/s per thread', round(turbo.imagesPerSecond, 2), 'img/s'),
    figure('codec.jpeg.speed_vs_mozjpeg', 'JPEG ours speed / sharp mozjpeg', round(sp, 3), 'x', '>= 1.0x', sp >= 1.0),
    figure('codec.jpeg.bytes_vs_mozjpeg', 'JPEG ours bytes / sharp mozjpeg', round(by, 4), 'x', '<= 1.03x', by <= 1.03),
    figure('codec.jpeg.bytes_vs_turbo', 'JPEG ours bytes / sharp libjpeg-turbo', round(ours.bytes / turbo.bytes, 4), 'x', 'well below 1 (report)', null),
    figure('codec.jpeg.checked', 'JPEG outputs decoded + checked (ours, sharp x2)', [ours, moz, turbo].every((v) => v.checked) ? 1 : 0, '', 'all decode, right size, PSNR sane', [ours, moz, turbo].every((v) => v.checked)),
  );

  // -- PNG: ours (libimagequant palette kept at SSIM >= 0.90, else lossless) vs sharp palette:true,
  // plus the rule's trade-offs in the same rounds
  opts.log(`codec: PNG, ${pngs.length} images x ${PNG_VARIANTS} variants x ${opts.quick ? 1 : 4} rounds`);
  const pngRows = pngs.length ? await pngBench(pngs, opts.quick ? 1 : 4) : [];
  const pr = pngRows;
  if (pngRows.length) {
    const o = pngRows[0]!;
    figures.push(
      figure('codec.png.ours_ips', 'PNG ours: images/s per thread', round(o.imagesPerSecond, 2), 'img/s'),
      figure('codec.png.sharp_ips', 'PNG sharp palette:true: images/s per thread', round(pr[1]!.imagesPerSecond, 2), 'img/s'),
      figure('codec.png.speed_vs_sharp', 'PNG ours speed / sharp palette:true', o.speedVsSharp, 'x', '>= 1.0x (JPEG yardstick)', o.speedVsSharp >= 1),
      figure('codec.png.bytes_vs_sharp', 'PNG ours bytes / sharp palette:true', o.bytesVsSharp, 'x', '<= 1.03x (JPEG yardstick)', o.bytesVsSharp <= 1.03),
      figure('codec.png.checked', 'PNG outputs decoded + checked', pr.every((v) => v.checked) ? 1 : 0, '', 'all decode, right size, PSNR sane', pr.every((v) => v.checked)),
    );
  }

  // -- WebP: ours (libwebp q50 method 2) vs sharp webp q50 (effort 4). Method 2 writes ~5% more
  // bytes at the same nominal q and scores higher: bytes are compared at matched quality in the
  // quality and convert sections, so the nominal ratio here is information, not a target.
  const webpVariants: Variant[] = [
    { name: 'ours (pipeline settings)', alpha: true, encode: (img) => oursPipeline(img) },
    { name: 'sharp webp q50', alpha: true, encode: async (img) => new Uint8Array(await sharp(img.bytes).webp({ quality: Q }).toBuffer()) },
  ];
  const reps = opts.quick ? 2 : 6;
  opts.log(`codec: WebP, ${webps.length} images x ${reps} reps x ${webpVariants.length} variants x ${rounds} rounds`);
  const wr = webps.length ? await measureVariants(webps, webpVariants, rounds, reps) : [];
  const webpRows = wr.map((v) => ({ ...v, speedVsSharp: round(speedRatio(v, wr[1]!), 3), bytesVsSharp: round(v.bytes / wr[1]!.bytes, 4) }));
  if (webpRows.length) {
    const o = webpRows[0]!;
    figures.push(
      figure('codec.webp.ours_ips', 'WebP ours: images/s per thread', round(o.imagesPerSecond, 2), 'img/s'),
      figure('codec.webp.sharp_ips', 'WebP sharp q50: images/s per thread', round(wr[1]!.imagesPerSecond, 2), 'img/s'),
      figure('codec.webp.speed_vs_sharp', 'WebP ours speed / sharp q50', o.speedVsSharp, 'x', '>= 1.0x (JPEG yardstick)', o.speedVsSharp >= 1),
      figure('codec.webp.bytes_vs_sharp', 'WebP ours bytes / sharp q50, same nominal q (method 2 vs 4; matched quality: quality section)', o.bytesVsSharp, 'x'),
      figure('codec.webp.checked', 'WebP outputs decoded + checked', wr.every((v) => v.checked) ? 1 : 0, '', 'all decode, right size, PSNR sane', wr.every((v) => v.checked)),
    );
  }

  return {
    figures,
    jpeg: { images: jpegs.map((i) => i.name), variants: jpegRows },
    png: { images: pngs.map((i) => i.name), variants: pngRows },
    webp: { images: webps.map((i) => i.name), variants: webpRows },
  };
}

export function tradeOffTable(rows: CodecBenchResult['jpeg']['variants']): string {
  const head = '| settings | img/s/thread | speed vs sharp-mozjpeg | bytes vs sharp-mozjpeg | coding | min / mean PSNR (dB) | check |';
  const lines = rows.map((r) =>
    `| ${r.name} | ${Number.isFinite(r.imagesPerSecond) ? r.imagesPerSecond.toFixed(2) : 'n/a'} | ${Number.isFinite(r.speedVsSharpMoz) ? r.speedVsSharpMoz.toFixed(2) + 'x' : 'n/a'} | ${r.bytesVsSharpMoz.toFixed(3)}x | ${String(r.extra?.jpegProcess ?? '')} | ${r.minPsnr ?? 'n/a'} / ${r.meanPsnr ?? 'n/a'} | ${r.checked ? 'ok' : 'FAIL: ' + r.failures[0]} |`);
  return [head, '|---|---|---|---|---|---|---|', ...lines].join('\n');
}

// re-exported for the JSON: which EXIF orientations the JPEG set contains
export const orientationOf = (img: CorpusImage) => (img.format === 'jpeg' ? readExifOrientation(img.bytes) : 1);
