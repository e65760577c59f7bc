// node dist/bench/diag/ssimulacra2-speed.js <photo> [--baseline OLD.wasm] [--runs N] [--mp12 0|1]
//
// CPU per score of the quality=auto scorer (wasm/ssimulacra2) and how far its scores moved: a
// corpus photo (decoded by sharp) and a generated 4000x3000 photo (bench/mp12.ts's), each against
// its JPEG q30/50/70/90 and WebP q75 decodes. Times (process.cpuUsage, median of --runs, 5 by
// default): the one-call s2_score, the preparation of the source (s2_prepare, once per search)
// and the score against it (s2_score_prepared, per candidate), and a 5-candidate search's scorer
// cost against 5 one-call scores. --baseline: an older build (its s2_score) timed in the same run,
// and the largest |new - old| score. Also the largest |new - TypeScript reference| on the photo.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { Raster } from '../../src/codecs/types.js';
import { jpeg } from '../../workers/codecs/jpeg.js';
import { webp } from '../../workers/codecs/webp.js';
import { ssimulacra2 } from '../../workers/metrics/ssimulacra2.js';
import { generatedPhoto } from '../generated-photo.js';
import { median } from '../stats.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { baseline: { type: 'string' }, runs: { type: 'string', default: '5' }, mp12: { type: 'string', default: '1' } },
});
if (!positionals[0]) throw new Error('usage: ssimulacra2-speed <photo> [--baseline OLD.wasm] [--runs N] [--mp12 0|1]');
const runs = Number(values.runs);
sharp.concurrency(1);

interface Exports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  s2_malloc(n: number): number;
  s2_free(p: number): void;
  s2_score(ref: number, dist: number, w: number, h: number, bg: number): number;
  s2_prepare?(ref: number, w: number, h: number, bg: number): number;
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

function cpuMs(fn: () => void): number {
  const t = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

async function raster(bytes: Uint8Array | Buffer): Promise<Raster> {
  const { data, info } = await sharp(bytes).rotate().ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

const current = load(new URL('../../wasm/ssimulacra2/ssimulacra2.wasm', import.meta.url));
const baseline = values.baseline ? load(values.baseline) : undefined;
if (!current.s2_prepare || !current.s2_score_prepared || !current.s2_prepared_free) throw new Error('this build has no s2_prepare');

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
  // times: the q50 candidate
  const cand = candidates[1]!;
  const d = put(current, cand);
  const tOne = median(Array.from({ length: runs }, () => cpuMs(() => current.s2_score(ref, d, img.width, img.height, -1))));
  const tPrepared = median(Array.from({ length: runs }, () => cpuMs(() => current.s2_score_prepared!(prep, d))));
  const tPrepare = median(
    Array.from({ length: runs }, () => {
      let p = 0;
      const t = cpuMs(() => (p = current.s2_prepare!(ref, img.width, img.height, -1)));
      current.s2_prepared_free!(p);
      return t;
    }),
  );
  let tOld = NaN;
  if (baseline) {
    const r = put(baseline, img);
    const bd = put(baseline, cand);
    tOld = median(Array.from({ length: runs }, () => cpuMs(() => baseline.s2_score(r, bd, img.width, img.height, -1))));
    baseline.s2_free(r);
    baseline.s2_free(bd);
  }
  current.s2_free(d);
  current.s2_prepared_free(prep);
  current.s2_free(ref);
  const mp = (img.width * img.height) / 1e6;
  console.log(`${s.name} (${f(mp, 1)} MP), CPU ms per score, median of ${runs}:`);
  if (baseline) console.log(`  baseline s2_score            ${f(tOld)}`);
  console.log(`  s2_score (one call)          ${f(tOne)}${baseline ? `  (${f(tOld / tOne, 1)}x faster)` : ''}`);
  console.log(`  s2_prepare (once per search) ${f(tPrepare)}`);
  console.log(`  s2_score_prepared            ${f(tPrepared)}${baseline ? `  (${f(tOld / tPrepared, 1)}x faster)` : ''}`);
  console.log(`  5-candidate search: ${f(tPrepare + 5 * tPrepared)} ms vs ${f(5 * tOne)} one-call${baseline ? `, ${f(5 * tOld)} baseline` : ''}`);
  console.log(
    `  |prepared - one call| worst ${worstPrepared.toExponential(1)}` +
      (baseline ? `; |new - baseline| worst ${f(worstOld, 4)}` : '') +
      (s.reference ? `; |new - TypeScript| worst ${f(worstTs, 4)}` : '') +
      ` (over ${candidates.length} candidates)`,
  );
}
