// node dist/bench/diag/ssimulacra2-speed.js <photo> [--baseline OLD.wasm] [--build exact|fma] [--runs N] [--mp12 0|1]
//
// CPU per score of the quality=auto scorer (wasm/ssimulacra2) and how far its scores moved: a
// corpus photo (decoded by sharp) and a generated 4000x3000 photo (bench/mp12.ts's), each against
// its JPEG q30/50/70/90 and WebP q75 decodes. Times (process.cpuUsage, median of --runs, 5 by
// default; the q50 candidate): the one-call s2_score, a search's first score (s2_prepare_scoring:
// the source prepared while the first candidate is scored) and each later one
// (s2_score_prepared), and a 3-candidate search's scorer cost. --build: the current build timed
// (default: the one ssimulacra2Build picks, relaxed SIMD turned on as the auto bench does).
// --baseline: an older build timed the same way in the same run, the two taking turns, and the
// largest |new - old| score. Also the largest |new - TypeScript reference| on the photo.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { Raster } from '../../src/codecs/types.js';
import { jpeg } from '../../workers/codecs/jpeg.js';
import { webp } from '../../workers/codecs/webp.js';
import { ssimulacra2 } from '../../workers/metrics/ssimulacra2.js';
import { generatedPhoto } from '../generated-photo.js';
import { cpuMsOf, median } from '../stats.js';
import { enableRelaxedSimd } from '../relaxed-simd.js';
import { ssimulacra2Build } from '../../workers/metrics/ssimulacra2-wasm.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { baseline: { type: 'string' }, build: { type: 'string' }, runs: { type: 'string', default: '5' }, mp12: { type: 'string', default: '1' } },
});
if (!positionals[0]) throw new Error('usage: ssimulacra2-speed <photo> [--baseline OLD.wasm] [--build exact|fma] [--runs N] [--mp12 0|1]');
if (values.build && values.build !== 'exact' && values.build !== 'fma') throw new Error('--build is exact or fma');
const runs = Number(values.runs);
sharp.concurrency(1);

interface Exports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  s2_malloc(n: number): number;
  s2_free(p: number): void;
  s2_score(ref: number, dist: number, w: number, h: number, bg: number): number;
  s2_prepare?(ref: number, w: number, h: number, bg: number): number;
  s2_prepare_scoring?(ref: number, dist: number, w: number, h: number, bg: number, score: number): number;
  s2_score_prepared?(prep: number, dist: number): number;
  s2_prepared_free?(prep: number): void;
}

function load(file: string | URL): Exports {
  const e = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), {}).exports as unknown as Exports;
  e._initialize();
  return e;
}

function put(e: Exports, img: Raster): number {
  const p = e.s2_malloc(img.data.length);
  if (p === 0) throw new Error('out of memory');
  new Uint8Array(e.memory.buffer, p, img.data.length).set(img.data);
  return p;
}

async function raster(bytes: Uint8Array | Buffer): Promise<Raster> {
  const { data, info } = await sharp(bytes).rotate().ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

enableRelaxedSimd();
const which = (values.build as 'exact' | 'fma' | undefined) ?? ssimulacra2Build();
const current = load(new URL(`../../wasm/ssimulacra2/${which === 'fma' ? 'ssimulacra2-fma' : 'ssimulacra2'}.wasm`, import.meta.url));
const baseline = values.baseline ? load(values.baseline) : undefined;
if (!current.s2_prepare || !current.s2_score_prepared || !current.s2_prepared_free || !current.s2_prepare_scoring) throw new Error('this build has no s2_prepare_scoring');
console.log(`current build: ${which}`);

const sources: { name: string; img: Raster; reference: boolean }[] = [{ name: positionals[0].split('/').pop()!, img: await raster(readFileSync(positionals[0])), reference: true }];
if (values.mp12 !== '0') sources.push({ name: 'generated-12mp-1', img: await raster(await generatedPhoto(4000, 3000, 1, { quality: 90, shapes: true })), reference: false });

const f = (n: number, d = 0) => n.toFixed(d);
for (const s of sources) {
  const { img } = s;
  const candidates: Raster[] = [];
  for (const q of [30, 50, 70, 90]) candidates.push(await jpeg.decode(await jpeg.encode(img, { quality: q })));
  candidates.push(await webp.decode(await webp.encode(img, { quality: 75 })));
  const ref = put(current, img);
  const prep = current.s2_prepare(ref, img.width, img.height, -1);
  if (prep === 0) throw new Error('out of memory preparing');
  let worstOld = 0;
  let worstTs = 0;
  let worstPrepared = 0;
  for (const cand of candidates) {
    const d = put(current, cand);
    const one = current.s2_score(ref, d, img.width, img.height, -1);
    const prepared = current.s2_score_prepared(prep, d);
    worstPrepared = Math.max(worstPrepared, Math.abs(one - prepared));
    current.s2_free(d);
    if (baseline) {
      const r = put(baseline, img);
      const bd = put(baseline, cand);
      worstOld = Math.max(worstOld, Math.abs(prepared - baseline.s2_score(r, bd, img.width, img.height, -1)));
      baseline.s2_free(r);
      baseline.s2_free(bd);
    }
    if (s.reference) worstTs = Math.max(worstTs, Math.abs(prepared - ssimulacra2(img, cand)));
  }
  current.s2_prepared_free(prep);
  current.s2_free(ref);
  // times: the q50 candidate, each build's calls taking turns
  const cand = candidates[1]!;
  const builds = [{ label: 'current', e: current }, ...(baseline ? [{ label: 'baseline', e: baseline }] : [])].map((b) => ({
    ...b,
    ref: put(b.e, img),
    d: put(b.e, cand),
    out: b.e.s2_malloc(8),
    one: [] as number[],
    first: [] as number[],
    later: [] as number[],
  }));
  for (let r = 0; r < runs; r++) {
    for (const b of builds) {
      const { e } = b;
      b.one.push(cpuMsOf(() => e.s2_score(b.ref, b.d, img.width, img.height, -1)));
      if (!e.s2_prepare_scoring || !e.s2_score_prepared || !e.s2_prepared_free) continue;
      let p = 0;
      b.first.push(cpuMsOf(() => (p = e.s2_prepare_scoring!(b.ref, b.d, img.width, img.height, -1, b.out))));
      b.later.push(cpuMsOf(() => e.s2_score_prepared!(p, b.d)));
      e.s2_prepared_free(p);
    }
  }
  for (const b of builds) for (const p of [b.ref, b.d, b.out]) b.e.s2_free(p);
  const mp = (img.width * img.height) / 1e6;
  console.log(`${s.name} (${f(mp, 1)} MP), CPU ms per score, median of ${runs}:`);
  const [now, old] = builds.map((b) => ({ one: median(b.one), first: median(b.first), later: median(b.later) }));
  const versus = (a: number, b: number | undefined) => (old && Number.isFinite(b) ? `  (baseline ${f(b!)}: ${f(b! / a, 2)}x faster)` : '');
  console.log(`  s2_score (one call)                        ${f(now!.one)}${versus(now!.one, old?.one)}`);
  console.log(`  first of a search (s2_prepare_scoring)     ${f(now!.first)}${versus(now!.first, old?.first)}`);
  console.log(`  each later one (s2_score_prepared)         ${f(now!.later)}${versus(now!.later, old?.later)}`);
  const search = (t: { first: number; later: number }) => t.first + 2 * t.later;
  console.log(`  a 3-candidate search's scoring             ${f(search(now!))}${versus(search(now!), old && search(old))}`);
  console.log(
    `  |prepared - one call| worst ${worstPrepared.toExponential(1)}` +
      (baseline ? `; |new - baseline| worst ${f(worstOld, 4)}` : '') +
      (s.reference ? `; |new - TypeScript| worst ${f(worstTs, 4)}` : '') +
      ` (over ${candidates.length} candidates)`,
  );
}
