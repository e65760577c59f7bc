// Rate against quality: every output (ours at the pipeline's settings; sharp at several settings)
// is decoded by sharp and scored against the decoded source with SSIMULACRA2 and SSIM
// (quality-metric.ts). Bytes are compared at matched quality, not at the same nominal setting:
// for each image, sharp's quality setting is searched (bracket from q50, then bisection) for the
// lowest one whose SSIMULACRA2 reaches ours, and sharp's bytes at exactly our score are
// interpolated between the two neighbouring settings. Ratio = our total bytes / sharp's total
// matched bytes over the images of a format. Sizes are deterministic: no rounds, no timing.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { rowFor } from '../src/codecs/table.js';
import { oursPipeline } from './codec.js';
import type { CorpusImage } from './corpus.js';
import type { Quality, QualityTask } from './quality-metric.js';
import { figure, type Figure } from './report.js';
import { mapLimit, round, sum } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface Point extends Quality {
  /** the nominal setting (sharp's quality), null for ours */
  q: number | null;
  bytes: number;
}

export interface Match {
  /** sharp's lowest setting reaching our score, and the one below it (null at the ends) */
  hi: Point | null;
  lo: Point | null;
  /** sharp's bytes at exactly our SSIMULACRA2, interpolated between lo and hi */
  bytes: number | null;
  /** how many settings were encoded and scored */
  evaluations: number;
}

export interface ImageRow {
  name: string;
  ours: Point;
  /** sharp at the same nominal setting as ours (q50; PNG: palette:true defaults) */
  sharpSame: Point;
  matched: Match;
}

interface Contender {
  format: 'jpeg' | 'webp' | 'png';
  label: string;
  /** our pipeline's output */
  ours(img: CorpusImage): Promise<Uint8Array>;
  /** sharp at quality q */
  sharp(img: CorpusImage, q: number): Promise<Buffer>;
  /** sharp's setting that corresponds to ours nominally (q50; PNG: palette:true's default) */
  sameQ: number;
  alpha: boolean;
}

/** Ours as workers/compress.ts writes it: the pipeline's encode, then the source's ICC profile
 * embedded (sharp converts to sRGB instead; without the profile, sharp would read our pixels as
 * sRGB and score a colour shift: rocket-small.jpg, 30 instead of 45). */
async function oursWithIcc(img: CorpusImage): Promise<Uint8Array> {
  const out = await oursPipeline(img);
  const row = rowFor(img.bytes)!;
  const icc = await row.readIcc(img.bytes);
  return icc && row.embedIcc ? row.embedIcc(out, icc) : out;
}

const CONTENDERS: Contender[] = [
  {
    format: 'jpeg', label: 'sharp mozjpeg:true', alpha: false,
    ours: oursWithIcc,
    sharp: (img, q) => sharp(img.bytes).rotate().jpeg({ quality: q, mozjpeg: true }).toBuffer(),
    sameQ: 50,
  },
  {
    format: 'webp', label: 'sharp webp', alpha: true,
    ours: oursWithIcc,
    sharp: (img, q) => sharp(img.bytes).webp({ quality: q }).toBuffer(),
    sameQ: 50,
  },
  {
    format: 'png', label: 'sharp png palette:true', alpha: true,
    ours: oursWithIcc,
    // palette:true quality is libimagequant's target (its minimum stays 0)
    sharp: (img, q) => sharp(img.bytes).png({ palette: true, quality: q }).toBuffer(),
    sameQ: 100,
  },
];

export interface QualityFormatResult {
  format: string;
  contender: string;
  images: ImageRow[];
  ours: { bytes: number; meanSsimulacra2: number; meanSsim: number };
  sharpSame: { bytes: number; meanSsimulacra2: number; meanSsim: number };
  /** sharp's total bytes at our score; where no setting reaches it, its best setting's bytes (flattering sharp) */
  sharpMatchedBytes: number;
  bytesVsSharpMatched: number;
  bytesVsSharpSame: number;
  unmatched: string[];
}

/**
 * When no setting reaches our score but sharp's best is at most this far below it, its best is
 * taken as the match: SSIMULACRA2 does not resolve half a point (e.g. our 256-colour palette at
 * 80.4 against sharp's at 80.0 on astronaut.png), and comparing with sharp's lossless output
 * there would flatter ours.
 */
export const TOP_TOLERANCE = 0.5;

/** Lowest q in 1..100 whose score reaches target: bracket outwards from `start`, then bisect. */
export async function matchSetting(target: number, at: (q: number) => Promise<Point>, start = 50, known: Point[] = []): Promise<Match> {
  const seen = new Map<number, Point>(known.map((p) => [p.q!, p]));
  const evalAt = async (q: number) => {
    let p = seen.get(q);
    if (!p) seen.set(q, (p = await at(q)));
    return p;
  };
  let lo: Point | null = null;
  let hi: Point | null = null;
  const first = await evalAt(start);
  if (first.ssimulacra2 >= target) hi = first;
  else lo = first;
  for (let step = 8; !hi; step *= 2) {
    const q = Math.min(100, lo!.q! + step);
    const p = await evalAt(q);
    if (p.ssimulacra2 >= target) hi = p;
    else if (q === 100) {
      if (p.ssimulacra2 >= target - TOP_TOLERANCE) return { hi: p, lo: null, bytes: p.bytes, evaluations: seen.size };
      return { hi: null, lo: p, bytes: null, evaluations: seen.size };
    }
    else lo = p;
  }
  hi = hi as Point;
  for (let step = 8; !lo && hi.q! > 1; step *= 2) {
    const p = await evalAt(Math.max(1, hi.q! - step));
    if (p.ssimulacra2 >= target) hi = p;
    else lo = p;
  }
  while (lo && hi.q! - lo.q! > 1) {
    const p = await evalAt(Math.floor((lo.q! + hi.q!) / 2));
    if (p.ssimulacra2 >= target) hi = p;
    else lo = p;
  }
  let bytes = hi.bytes;
  if (lo && hi.ssimulacra2 > lo.ssimulacra2) {
    const t = (target - lo.ssimulacra2) / (hi.ssimulacra2 - lo.ssimulacra2);
    bytes = lo.bytes + Math.min(1, Math.max(0, t)) * (hi.bytes - lo.bytes);
  }
  return { hi, lo, bytes, evaluations: seen.size };
}

export async function qualityBench(corpus: CorpusImage[], threads: number, opts: { quick: boolean; log: (s: string) => void }) {
  sharp.concurrency(1);
  sharp.cache(false);
  const pool = new Piscina<QualityTask, Quality>({ filename: join(here, 'quality-worker.js'), minThreads: threads, maxThreads: threads, idleTimeout: 60_000 });
  const references = new Map<string, { data: Uint8Array; width: number; height: number }>();
  const reference = async (img: CorpusImage) => {
    let r = references.get(img.name);
    if (!r) {
      const { data, info } = await sharp(img.bytes).rotate().ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      references.set(img.name, (r = { data, width: info.width, height: info.height }));
    }
    return r;
  };
  /** decode with sharp (independent of our decoders), check the size, score against the source */
  const score = async (img: CorpusImage, out: Uint8Array, alpha: boolean, q: number | null): Promise<Point> => {
    const ref = await reference(img);
    const { data, info } = await sharp(out).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.width !== ref.width || info.height !== ref.height) throw new Error(`${img.name}: output ${info.width}x${info.height}, expected ${ref.width}x${ref.height}`);
    const m = await pool.run({ ref: ref.data, dist: data, width: ref.width, height: ref.height, alpha });
    return { q, bytes: out.length, ssimulacra2: round(m.ssimulacra2, 3), ssim: round(m.ssim, 5) };
  };

  const results: QualityFormatResult[] = [];
  const figures: Figure[] = [];
  const measureImage = async (c: Contender, img: CorpusImage): Promise<ImageRow> => {
    const ours = await score(img, await c.ours(img), c.alpha, null);
    const sharpAt = async (q: number) => score(img, await c.sharp(img, q), c.alpha, q);
    const sharpSame = await sharpAt(c.sameQ);
    const matched = await matchSetting(ours.ssimulacra2, sharpAt, 50, [sharpSame]);
    opts.log(`quality: ${c.format} ${img.name}: ours ${ours.bytes} B at ${ours.ssimulacra2}; sharp ${matched.hi ? `q${matched.hi.q} ${Math.round(matched.bytes!)} B` : 'no setting reaches it'} (${matched.evaluations} settings)`);
    return { name: img.name, ours, sharpSame, matched };
  };
  // One queue over every format's images, as many in flight as metric threads (each image's
  // search is sequential); the lone, slow WebP first so it does not run alone at the end.
  const jobs = CONTENDERS.flatMap((c) => {
    let images = corpus.filter((i) => i.format === c.format);
    if (opts.quick && c.format === 'jpeg') images = images.filter((i) => i.width >= 1000).slice(0, 3);
    return images.map((img) => ({ c, img }));
  }).sort((a, b) => Number(b.c.format === 'webp') - Number(a.c.format === 'webp'));
  opts.log(`quality: ${jobs.length} images (${CONTENDERS.map((c) => `${c.format} vs ${c.label}`).join(', ')}) at matched SSIMULACRA2, ${threads} metric threads`);
  try {
    const done = await mapLimit(jobs, threads, async ({ c, img }) => ({ c, row: await measureImage(c, img) }));
    for (const c of CONTENDERS) {
      const rows = done.filter((d) => d.c === c).map((d) => d.row).sort((a, b) => a.name.localeCompare(b.name));
      if (rows.length === 0) continue;
      const mean = (xs: number[]) => round(sum(xs) / xs.length, 3);
      const sharpMatchedBytes = sum(rows.map((r) => r.matched.bytes ?? r.matched.lo!.bytes));
      const r: QualityFormatResult = {
        format: c.format,
        contender: c.label,
        images: rows,
        ours: { bytes: sum(rows.map((x) => x.ours.bytes)), meanSsimulacra2: mean(rows.map((x) => x.ours.ssimulacra2)), meanSsim: round(sum(rows.map((x) => x.ours.ssim)) / rows.length, 5) },
        sharpSame: { bytes: sum(rows.map((x) => x.sharpSame.bytes)), meanSsimulacra2: mean(rows.map((x) => x.sharpSame.ssimulacra2)), meanSsim: round(sum(rows.map((x) => x.sharpSame.ssim)) / rows.length, 5) },
        sharpMatchedBytes: Math.round(sharpMatchedBytes),
        bytesVsSharpMatched: round(sum(rows.map((x) => x.ours.bytes)) / sharpMatchedBytes, 4),
        bytesVsSharpSame: round(sum(rows.map((x) => x.ours.bytes)) / sum(rows.map((x) => x.sharpSame.bytes)), 4),
        unmatched: rows.filter((x) => x.matched.hi === null).map((x) => x.name),
      };
      results.push(r);
      const F = c.format === 'jpeg' ? 'JPEG' : c.format === 'webp' ? 'WebP' : 'PNG';
      // JPEG: the limit of the JPEG benchmark; WebP: the limit for WebP outputs (conversions);
      // PNG: parity with sharp's palette within the JPEG limit
      const limit = c.format === 'webp' ? 1.05 : 1.03;
      const target = c.format === 'jpeg' ? '<= 1.03x' : c.format === 'webp' ? '<= 1.05x (WebP outputs)' : '<= 1.03x (JPEG yardstick)';
      const meanQ = rows.filter((x) => x.matched.hi).map((x) => x.matched.hi!.q!);
      figures.push(
        figure(`quality.${c.format}.ours_ssimulacra2`, `${F} ours: mean SSIMULACRA2 / SSIM`, r.ours.meanSsimulacra2, '', '', null, `SSIM ${r.ours.meanSsim}`),
        figure(`quality.${c.format}.sharp_same_ssimulacra2`, `${F} ${c.label} same setting: mean SSIMULACRA2 / SSIM`, r.sharpSame.meanSsimulacra2, '', '', null, `SSIM ${r.sharpSame.meanSsim}`),
        figure(`quality.${c.format}.sharp_matched_q`, `${F} ${c.label}: mean setting matching our SSIMULACRA2`, meanQ.length ? round(sum(meanQ) / meanQ.length, 1) : null, '',
          '', null, r.unmatched.length ? `not reached for ${r.unmatched.join(', ')} (compared with sharp's best setting there)` : undefined),
        figure(`quality.${c.format}.bytes_vs_sharp_matched`, `${F} bytes at matched SSIMULACRA2, ours / ${c.label}`, r.bytesVsSharpMatched, 'x', target, r.bytesVsSharpMatched <= limit),
        figure(`quality.${c.format}.bytes_vs_sharp_same`, `${F} bytes at the same setting, ours / ${c.label}`, r.bytesVsSharpSame, 'x'),
      );
    }
  } finally {
    await pool.destroy();
  }
  return { figures, detail: { metric: 'SSIMULACRA2 (calc-s2-rust 1.0.3, WASM) and SSIM (ssim.js)', formats: results } };
}

/** Per-image markdown table of one format's rows. */
export function qualityTable(r: QualityFormatResult): string {
  const head = `| image | ours bytes | ours SSIMULACRA2 / SSIM | ${r.contender} ${r.format === 'png' ? 'default' : 'q50'} bytes | its SSIMULACRA2 | matching setting | its bytes at our score | ours / sharp matched |`;
  const lines = r.images.map((x) => {
    const m = x.matched;
    const sharpBytes = m.bytes ?? m.lo!.bytes;
    const setting = m.hi ? `q${m.hi.q} (${m.hi.ssimulacra2})` : `none: q100 scores ${m.lo!.ssimulacra2}, its bytes taken`;
    return `| ${x.name} | ${x.ours.bytes} | ${x.ours.ssimulacra2} / ${x.ours.ssim} | ${x.sharpSame.bytes} | ${x.sharpSame.ssimulacra2} | ${setting} | ${Math.round(sharpBytes)} | ${(x.ours.bytes / sharpBytes).toFixed(3)}x |`;
  });
  const total = `| **total** | ${r.ours.bytes} | ${r.ours.meanSsimulacra2} / ${r.ours.meanSsim} (mean) | ${r.sharpSame.bytes} | ${r.sharpSame.meanSsimulacra2} (mean) | | ${r.sharpMatchedBytes} | **${r.bytesVsSharpMatched.toFixed(3)}x** |`;
  return [head, '|---|---|---|---|---|---|---|---|', ...lines, total].join('\n');
}
