// node dist/bench/diag/auto-guess-sim.js <corpus dir> [--curves FILE] [--factors r2,r3,r4,m128.3]
// (AUTO_SIM_TOLERANCE=N: replay the full-size searches with that stopping tolerance)
//
// Which first guess makes the quality=auto search (workers/auto-quality.ts) stop soonest: every
// corpus image (upright, flattened on white as bench/auto.ts does) and a small copy of it (rN: our
// resizer, 1/N per side; mT.N: full-resolution T-px tiles on the MCU grid, one per N x N) are encoded with MozJPEG at every quality 20..100 and scored once by the
// search's scorer; then the full-size search is replayed on those curves (target 70, bench/auto.ts's
// order) from each first guess: the previous image's answer (as today), and the small copy's own
// search's answer plus an offset (fixed, or the previous image's full - small). Prints mean full-size
// encodes, small-copy encodes, and bytes against the lowest passing qualities; and the CPU time of
// one full-size attempt, one small-copy attempt and making the copy, to price the small search.
// Also replays guesses off the lowest passing quality by d ("oracle"): how close a guess must be.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpuUsage } from 'node:process';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { Raster } from '../../src/codecs/types.js';
import { jpeg } from '../../workers/codecs/jpeg.js';
import { resize } from '../../workers/codecs/resize.js';
import { MARGIN, searchQuality } from '../../workers/auto-quality.js';
import { ssimulacra2Scorer } from '../../workers/metrics/ssimulacra2-wasm.js';
import { loadCorpus } from '../corpus.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { curves: { type: 'string' }, factors: { type: 'string', default: 'r2,r3,r4' } },
});
const dir = positionals[0];
if (!dir) throw new Error('usage: auto-guess-sim <corpus dir> [--curves FILE] [--factors 2,3,4]');
const TARGET = 70;
const LOWEST = 20;
/** estimators: rN = resized to 1/N per side; mT.N = a mosaic of T-px full-resolution tiles, one per N x N tiles */
const factors = values.factors.split(',');

/** quality -> score, bytes */
type Curve = Record<number, [number, number]>;
interface ImageCurves {
  full: Curve;
  small: Record<string, Curve>;
  /** CPU ms: a full attempt (encode, decode, prepared score), per estimator a small attempt and making the small copy */
  cpu: { full: number; small: Record<string, number>; resize: Record<string, number> };
}

async function upright(bytes: Uint8Array): Promise<Raster> {
  const { data, info } = await sharp(bytes).rotate().flatten({ background: '#ffffff' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, opaque: true };
}

const cpuMs = (from: NodeJS.CpuUsage) => {
  const d = cpuUsage(from);
  return (d.user + d.system) / 1000;
};

async function curveOf(img: Raster): Promise<{ curve: Curve; attemptMs: number }> {
  const scorer = await ssimulacra2Scorer(img);
  const curve: Curve = {};
  let ms = 0;
  for (let q = 100; q >= LOWEST; q--) {
    const t = cpuUsage();
    const encoded = await jpeg.encode(img, { quality: q });
    curve[q] = [scorer.score(await jpeg.decode(encoded)), encoded.length];
    if (q < 100) ms += cpuMs(t); // q100: the first score, which also prepares the source
  }
  scorer.close();
  return { curve, attemptMs: ms / (100 - LOWEST) };
}

/** T x T tiles of the source at full resolution (origins on the 16-px MCU grid), one per n x n tiles, side by side */
function mosaic(img: Raster, tile: number, n: number): Raster {
  const nx = Math.max(1, Math.round(img.width / (tile * n)));
  const ny = Math.max(1, Math.round(img.height / (tile * n)));
  const tw = Math.min(tile, img.width);
  const th = Math.min(tile, img.height);
  const out = new Uint8ClampedArray(nx * tw * ny * th * 4);
  const ow = nx * tw;
  for (let j = 0; j < ny; j++) {
    const y0 = Math.min(img.height - th, Math.floor((((j + 0.5) * img.height) / ny - th / 2) / 16) * 16);
    for (let i = 0; i < nx; i++) {
      const x0 = Math.min(img.width - tw, Math.max(0, Math.floor((((i + 0.5) * img.width) / nx - tw / 2) / 16) * 16));
      for (let y = 0; y < th; y++) {
        const from = ((Math.max(0, y0) + y) * img.width + x0) * 4;
        out.set(img.data.subarray(from, from + tw * 4), ((j * th + y) * ow + i * tw) * 4);
      }
    }
  }
  return { data: out, width: ow, height: ny * th, opaque: true };
}

async function smallCopy(img: Raster, f: string): Promise<Raster> {
  if (f.startsWith('r')) {
    const k = Number(f.slice(1));
    return resize(img, Math.max(8, Math.round(img.width / k)), Math.max(8, Math.round(img.height / k)));
  }
  const [tile, n] = f.slice(1).split('.').map(Number);
  return mosaic(img, tile!, n!);
}

async function measure(): Promise<Record<string, ImageCurves>> {
  const out: Record<string, ImageCurves> = {};
  const cached: Record<string, ImageCurves> = values.curves && existsSync(values.curves) ? JSON.parse(readFileSync(values.curves, 'utf8')) : {};
  for (const c of loadCorpus(dir!)) {
    const img = await upright(c.bytes);
    const full = cached[c.name] ? { curve: cached[c.name]!.full, attemptMs: cached[c.name]!.cpu.full } : await curveOf(img);
    const entry: ImageCurves = { full: full.curve, small: cached[c.name]?.small ?? {}, cpu: { full: full.attemptMs, small: cached[c.name]?.cpu.small ?? {}, resize: cached[c.name]?.cpu.resize ?? {} } };
    for (const f of factors) {
      if (entry.small[f]) continue;
      const t = cpuUsage();
      const small = await smallCopy(img, f);
      entry.cpu.resize[f] = cpuMs(t);
      const s = await curveOf(small);
      entry.small[f] = s.curve;
      entry.cpu.small[f] = s.attemptMs;
    }
    out[c.name] = entry;
    console.log(`${c.name}: full attempt ${entry.cpu.full.toFixed(0)} ms CPU; ` + factors.map((f) => `${f}: attempt ${entry.cpu.small[f]!.toFixed(1)} ms, copy ${entry.cpu.resize[f]!.toFixed(1)} ms`).join('; '));
  }
  return out;
}

// (cached curves are reused; estimators not in the cache are measured and added)
const curves: Record<string, ImageCurves> = await measure();
if (values.curves) writeFileSync(values.curves, JSON.stringify(curves));

const at = (c: Curve, q: number) => c[Math.max(LOWEST, Math.min(100, q))]!;
const score = (c: Curve, q: number) => (q < LOWEST ? c[LOWEST]![0] - (LOWEST - q) : at(c, q)[0]);
const lowest = (c: Curve) => {
  let q = 100;
  while (q > 1 && score(c, q - 1) >= TARGET + MARGIN) q--;
  return q;
};
const tiny: Raster = { data: new Uint8ClampedArray(8 * 8 * 4), width: 8, height: 8 };

/** AUTO_SIM_TOLERANCE: the search's stopping tolerance for the full-size replays (default the search's own) */
const tolerance = process.env.AUTO_SIM_TOLERANCE ? Number(process.env.AUTO_SIM_TOLERANCE) : undefined;

async function replay(c: Curve, start: number, full = false) {
  let last = 0;
  const r = await searchQuality({
    source: tiny, target: TARGET, start, ...(full && tolerance !== undefined ? { tolerance } : {}),
    encode: (q) => {
      last = q;
      return Promise.resolve(new Uint8Array([q]));
    },
    decode: () => Promise.resolve(tiny),
    score: () => score(c, last),
  });
  return r;
}

const names = Object.keys(curves);
const lowestBytes = names.reduce((a, n) => a + at(curves[n]!.full, lowest(curves[n]!.full))[1], 0);
const fullMs = names.reduce((a, n) => a + curves[n]!.cpu.full, 0);

console.log('image: lowest passing full / small per factor');
for (const n of names) console.log(`  ${n}: q${lowest(curves[n]!.full)} / ` + factors.map((f) => `${f} q${lowest(curves[n]!.small[f]!)}`).join(', '));

type Guess = (n: string, prev: { full: number; small: number } | null) => Promise<{ start: number; small: number; smallEncodes: number; smallMs: number }>;

async function strategy(label: string, guess: Guess) {
  let prev: { full: number; small: number } | null = null;
  let encodes = 0, worst = 0, total = 0, failed = 0, smallEncodes = 0, smallMs = 0, firstHits = 0;
  for (const n of names) {
    const g = await guess(n, prev);
    const r = await replay(curves[n]!.full, Math.min(100, Math.max(1, g.start)), true);
    prev = { full: r.quality, small: g.small };
    encodes += r.encodes;
    if (r.encodes === 1) firstHits++;
    worst = Math.max(worst, r.encodes);
    total += at(curves[n]!.full, r.quality)[1];
    if (score(curves[n]!.full, r.quality) < TARGET + MARGIN) failed++;
    smallEncodes += g.smallEncodes;
    smallMs += g.smallMs;
  }
  const k = names.length;
  console.log(
    `${label}: full encodes mean ${(encodes / k).toFixed(2)} (worst ${worst}, ${firstHits} of ${k} at the first), small encodes mean ${(smallEncodes / k).toFixed(2)}, ` +
      `small-copy CPU ${((100 * smallMs) / fullMs).toFixed(0)} % of one full attempt; bytes ${(total / lowestBytes).toFixed(3)}x the lowest passing; ${failed} under`,
  );
}

await strategy('previous answer (today)', async (_n, prev) => ({ start: prev?.full ?? TARGET, small: 0, smallEncodes: 0, smallMs: 0 }));
// bounds: how good must a guess be? the lowest passing quality itself ("oracle"), off by d
const none = { small: 0, smallEncodes: 0, smallMs: 0 };
for (const d of [-4, -2, -1, 0, 1, 2, 4]) await strategy(`oracle ${d >= 0 ? '+' : ''}${d}`, async (n) => ({ start: lowest(curves[n]!.full) + d, ...none }));
for (const b of [-2, 2, 4]) await strategy(`previous answer ${b > 0 ? '+' : ''}${b}`, async (_n, prev) => ({ start: (prev?.full ?? TARGET) + b, ...none }));
for (const f of factors) {
  const small = async (n: string, start: number) => {
    const r = await replay(curves[n]!.small[f]!, start);
    return { small: r.quality, smallEncodes: r.encodes, smallMs: curves[n]!.cpu.resize[f]! + r.encodes * curves[n]!.cpu.small[f]! };
  };
  const offsets = names.map((n) => lowest(curves[n]!.full) - lowest(curves[n]!.small[f]!));
  const meanOffset = Math.round(offsets.reduce((a, b) => a + b, 0) / offsets.length);
  console.log(`${f}: full - small lowest passing: ${offsets.join(' ')} (mean ${meanOffset})`);
  for (const offset of [0, meanOffset]) {
    await strategy(`${f} small search, + fixed ${offset}`, async (n, prev) => {
      const s = await small(n, prev?.small ?? TARGET);
      return { start: s.small + offset, ...s };
    });
  }
  await strategy(`${f} small search, + previous offset`, async (n, prev) => {
    const s = await small(n, prev?.small ?? TARGET);
    return { start: s.small + (prev ? prev.full - prev.small : meanOffset), ...s };
  });
  await strategy(`${f} small search + fixed ${meanOffset}, averaged with the previous answer`, async (n, prev) => {
    const s = await small(n, prev?.small ?? TARGET);
    return { start: Math.round(prev ? (s.small + meanOffset + prev.full) / 2 : s.small + meanOffset), ...s };
  });
}
