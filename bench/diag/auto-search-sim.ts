// node dist/bench/diag/auto-search-sim.js <corpus dir> [--curves FILE] [--tolerance 0,1,1.5,2] [--mp12]
//
// How many encodes the quality=auto search (workers/auto-quality.ts) spends, and what its stopping
// tolerance costs in bytes, without running it for every setting: every corpus image (upright,
// decoded by sharp, flattened on white as bench/auto.ts does) is encoded with MozJPEG at every
// quality 20..100 and scored once by the search's scorer; then searchQuality is replayed on those
// curves (a synthetic encode and score that look the quality up) in bench/auto.ts's order, each
// search starting from the previous answer, target 70, for each tolerance. Prints mean and worst
// encodes, and bytes against the lowest passing quality of each image and against the fixed
// quality that gives every image the target. --curves: cache the curves in FILE (computing them
// takes minutes); --mp12: add one generated 12 MP photo (its own figures).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { Raster } from '../../src/codecs/types.js';
import { jpeg } from '../../workers/codecs/jpeg.js';
import { MARGIN, predictQuality, searchQuality } from '../../workers/auto-quality.js';
import { ssimulacra2Scorer } from '../../workers/metrics/ssimulacra2-wasm.js';
import { loadCorpus } from '../corpus.js';
import { generatedPhoto } from '../generated-photo.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { curves: { type: 'string' }, tolerance: { type: 'string', default: '0,1,1.5,2,3' }, mp12: { type: 'boolean', default: false } },
});
const dir = positionals[0];
if (!dir) throw new Error('usage: auto-search-sim <corpus dir> [--curves FILE] [--tolerance 0,1,2] [--mp12]');
const TARGET = 70;
const LOWEST = 20;

/** per image: quality -> [score, bytes] */
type Curves = Record<string, Record<number, [number, number]>>;

async function upright(bytes: Uint8Array): Promise<Raster> {
  const { data, info } = await sharp(bytes).rotate().flatten({ background: '#ffffff' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

async function measureCurves(): Promise<Curves> {
  const sources: Array<{ name: string; bytes: Uint8Array }> = loadCorpus(dir!).map((c) => ({ name: c.name, bytes: c.bytes }));
  if (values.mp12) sources.push({ name: 'generated-12mp-1', bytes: new Uint8Array(await generatedPhoto(4000, 3000, 1, { quality: 90, shapes: true })) });
  const curves: Curves = {};
  for (const s of sources) {
    const img = await upright(s.bytes);
    const scorer = await ssimulacra2Scorer(img);
    const row: Record<number, [number, number]> = {};
    for (let q = LOWEST; q <= 100; q++) {
      const encoded = await jpeg.encode(img, { quality: q });
      row[q] = [scorer.score(await jpeg.decode(encoded)), encoded.length];
    }
    scorer.close();
    curves[s.name] = row;
    console.log(`${s.name}: q50 ${row[50]![0].toFixed(2)}, q70 ${row[70]![0].toFixed(2)}, q90 ${row[90]![0].toFixed(2)}`);
  }
  return curves;
}

const curves: Curves = values.curves && existsSync(values.curves) ? (JSON.parse(readFileSync(values.curves, 'utf8')) as Curves) : await measureCurves();
if (values.curves && !existsSync(values.curves)) writeFileSync(values.curves, JSON.stringify(curves));

// below the measured range: a point per quality lower (never reached by the corpus's searches at 70)
const score = (name: string, q: number) => (q < LOWEST ? curves[name]![LOWEST]![0] - (LOWEST - q) : curves[name]![q]![0]);
const bytes = (name: string, q: number) => curves[name]![Math.max(LOWEST, q)]![1];
const passes = (name: string, q: number) => score(name, q) >= TARGET + MARGIN;
const tiny: Raster = { data: new Uint8ClampedArray(8 * 8 * 4), width: 8, height: 8 };

for (const set of ['corpus', '12mp'] as const) {
  const names = Object.keys(curves).filter((n) => n.startsWith('generated-') === (set === '12mp'));
  if (names.length === 0) continue;
  let fixed = 100; // the lowest quality at which every image passes
  for (let q = 100; q >= LOWEST && names.every((n) => passes(n, q)); q--) fixed = q;
  const lowest = (n: string) => {
    let q = 100;
    while (q > 1 && passes(n, q - 1)) q--;
    return q;
  };
  const lowestBytes = names.reduce((a, n) => a + bytes(n, lowest(n)), 0);
  const fixedBytes = names.reduce((a, n) => a + bytes(n, fixed), 0);
  for (const tolerance of values.tolerance.split(',').map(Number)) {
    let previous: number | undefined;
    let encodes = 0, worst = 0, total = 0, failed = 0;
    for (const n of names) {
      let last = 0;
      const r = await searchQuality({
        source: tiny, target: TARGET, tolerance, start: predictQuality(TARGET, previous),
        encode: (q) => {
          last = q;
          return Promise.resolve(new Uint8Array([q]));
        },
        decode: () => Promise.resolve(tiny),
        score: () => score(n, last),
      });
      previous = r.quality;
      encodes += r.encodes;
      worst = Math.max(worst, r.encodes);
      total += bytes(n, r.quality);
      if (!passes(n, r.quality)) failed++;
    }
    console.log(
      `${set} (${names.length}), tolerance ${tolerance}: encodes mean ${(encodes / names.length).toFixed(2)}, worst ${worst}; ` +
        `bytes ${(total / lowestBytes).toFixed(3)}x the lowest passing qualities, ${(total / fixedBytes).toFixed(3)}x fixed q${fixed}; ${failed} under target + margin`,
    );
  }
}
