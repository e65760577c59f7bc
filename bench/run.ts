// npm run bench [-- --quick] [--corpus DIR]: every figure of issue 6 with its target, as a table
// on stdout and as JSON in bench/results.json. Ratios are measured within one run, interleaved.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, SECTIONS, type Section } from './args.js';
import { codecBench, pngTradeOffTable, tradeOffTable } from './codec.js';
import { convertBench, convertTable } from './convert.js';
import { apiBench } from './api.js';
import { autoBench } from './auto.js';
import { avifBench, avifTable } from './avif.js';
import { loadCorpus } from './corpus.js';
import { e2eBench } from './e2e.js';
import { ingestBench } from './ingest.js';
import { largeImagesBench } from './large-images.js';
import { mp12Bench } from './mp12.js';
import { poolScalingBench } from './pool-scaling.js';
import { qualityBench, qualityTable } from './quality.js';
import { reimportBench } from './reimport.js';
import { streamsBench } from './streams.js';
import { type Figure, markdownTable, table } from './report.js';
import { storeBench, storeTable } from './store.js';

const here = dirname(fileURLToPath(import.meta.url));
/** the project root: run.js lives in <root>/dist/bench (or <root>/bench/.out/bench in development) */
const projectRoot = here.endsWith(join('bench', '.out', 'bench')) ? resolve(here, '..', '..', '..') : resolve(here, '..', '..');

const args = parseArgs(process.argv.slice(2), {
  corpus: resolve(projectRoot, '..', 'shared', 'corpus'),
  out: join(projectRoot, 'bench', 'results.json'),
});
const started = Date.now();
const loads: { at: string; loadavg1: number }[] = [];
const log = (s: string) => {
  loads.push({ at: s.slice(0, 60), loadavg1: loadavg()[0]! });
  console.error(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${s} (load ${loadavg()[0]!.toFixed(2)})`);
};

// ingest and store need no images: they run without a corpus.
const corpus = (['codec', 'quality', 'pool', 'e2e', 'reimport', 'api', 'streams', 'mp12', 'convert', 'auto'] as const).some((s) => args.only.has(s)) ? loadCorpus(args.corpus) : [];
const threads = args.threads ?? availableParallelism();
const figures: Figure[] = [];
const details: Record<string, unknown> = {};

if (args.only.has('codec')) {
  const r = await codecBench(corpus, { quick: args.quick, log });
  figures.push(...r.figures);
  details.codec = r;
  console.log('\nMozJPEG trade-off (same images, same rounds):\n' + tradeOffTable(r.jpeg.variants) + '\n');
  if (r.png.variants.length) console.log('PNG rule trade-off (same images, same rounds):\n' + pngTradeOffTable(r.png.variants) + '\n');
}

if (args.only.has('quality')) {
  const r = await qualityBench(corpus, threads, { quick: args.quick, log });
  figures.push(...r.figures);
  details.quality = r.detail;
  for (const f of r.detail.formats) console.log(`\nRate at matched quality, ${f.format} (SSIMULACRA2; SSIM from ssim.js):\n` + qualityTable(f) + '\n');
}

if (args.only.has('avif')) {
  const r = await avifBench(corpus, { quick: args.quick, log });
  figures.push(...r.figures);
  details.avif = r.detail;
  console.log('\nAVIF speed trade-off (same photos, quality 50):\n' + avifTable(r.detail.rows) + '\n');
}

const jpegs = corpus.filter((i) => i.format === 'jpeg');
/** the built server entry next to this file's build: <dist>/src/main.js */
const serverEntry = resolve(here, '..', 'src', 'main.js');
const diagnostics = args.profile ? { dir: args.profile, memProbe: join(here, 'diag', 'mem-probe.js') } : null;

if (args.only.has('pool')) {
  const r = await poolScalingBench(jpegs, threads, { quick: args.quick, log });
  figures.push(...r.figures);
  details.pool = r.detail;
}
if (args.only.has('e2e')) {
  const r = await e2eBench(jpegs, threads, { quick: args.quick, log, profileDir: args.profile });
  figures.push(...r.figures);
  details.e2e = r.detail;
}
if (args.only.has('reimport')) {
  const r = await reimportBench(jpegs, threads, { quick: args.quick, log });
  figures.push(...r.figures);
  details.reimport = r.detail;
}
if (args.only.has('ingest')) {
  const r = await ingestBench(serverEntry, threads, { quick: args.quick, log, diagnostics });
  figures.push(...r.figures);
  details.ingest = r.detail;
}
if (args.only.has('api')) {
  const r = await apiBench(serverEntry, jpegs, threads, { quick: args.quick, log, diagnostics });
  figures.push(...r.figures);
  details.api = r.detail;
  if (!args.quick && threads > 1) {
    // what moves it: one core left to the event loop (WORKER_THREADS = cores - 1), same load
    const r1 = await apiBench(serverEntry, jpegs, threads - 1, { quick: args.quick, log });
    const p99 = r1.figures.find((f) => f.id === 'api.status_p99')!;
    const floor = r1.figures.find((f) => f.id === 'api.healthz_p99')!;
    const rps = r1.figures.find((f) => f.id === 'api.status_rps')!;
    figures.push(
      { ...p99, id: 'api.status_p99_threads_minus_1', label: `GET status p99 with WORKER_THREADS=${threads - 1}`, target: '(what moves it)', met: null, note: `${rps.value} req/s; /healthz p99 ${floor.value} ms` },
    );
    details.apiThreadsMinus1 = r1.detail;
  }
}

if (args.only.has('store')) {
  const r = await storeBench({ quick: args.quick, log, projectRoot });
  figures.push(...r.figures);
  details.store = r.detail;
  console.log('\nStore backends side by side (same workload, one process):\n' + storeTable(r.detail.runs) + '\n');
}

if (args.only.has('large')) {
  const r = await largeImagesBench(threads, { quick: args.quick, log });
  figures.push(...r.figures);
  details.large = r.detail;
}

if (args.only.has('streams')) {
  const r = await streamsBench(serverEntry, jpegs, threads, { quick: args.quick, log });
  figures.push(...r.figures);
  details.streams = r.detail;
}

if (args.only.has('convert')) {
  const r = await convertBench(corpus, threads, { quick: args.quick, log });
  figures.push(...r.figures);
  details.convert = r.detail;
  console.log('\nConversions against sharp (same images, same run; bytes at matched SSIMULACRA2):\n' + convertTable(r.detail.paths) + '\n');
}

if (args.only.has('mp12')) {
  const r = await mp12Bench(jpegs, threads, { quick: args.quick, log });
  figures.push(...r.figures);
  details.mp12 = r.detail;
}

if (args.only.has('auto')) {
  const r = await autoBench(corpus, { quick: args.quick, log });
  figures.push(...r.figures);
  details.auto = r.detail;
}

const machine = {
  nproc: availableParallelism(),
  cpu: cpus()[0]?.model ?? 'unknown',
  memoryMB: Math.round(totalmem() / 2 ** 20),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
};
console.log(table(figures));

// --only: the sections not run keep their figures from the previous results file, each section
// with the date of the run that measured it (a figure's section is the first part of its id).
const date = new Date().toISOString();
const sectionOf = (id: string) => id.split('.')[0] as Section;
let allFigures = figures;
let allDetails = details;
let sectionDates: Record<string, string> = Object.fromEntries([...args.only].map((s) => [s, date]));
if (args.only.size < SECTIONS.length && existsSync(args.out)) {
  const prev = JSON.parse(readFileSync(args.out, 'utf8')) as { date: string; figures: Figure[]; details: Record<string, unknown>; sectionDates?: Record<string, string> };
  const kept = prev.figures.filter((f) => !args.only.has(sectionOf(f.id)));
  allFigures = SECTIONS.flatMap((s) => (args.only.has(s) ? figures : kept).filter((f) => sectionOf(f.id) === s));
  allDetails = { ...Object.fromEntries(Object.entries(prev.details).filter(([k]) => !args.only.has(k.replace(/ThreadsMinus1$/, '') as Section))), ...details };
  const prevDates = prev.sectionDates ?? Object.fromEntries(SECTIONS.filter((s) => kept.some((f) => sectionOf(f.id) === s)).map((s) => [s, prev.date]));
  sectionDates = { ...prevDates, ...sectionDates };
}
writeFileSync(args.out, JSON.stringify({ date, quick: args.quick, sections: [...args.only], sectionDates, corpus: args.corpus, threads, machine, loadDuringRun: loads, durationSeconds: Math.round((Date.now() - started) / 1000), figures: allFigures, details: allDetails, markdown: markdownTable(allFigures) }, null, 2) + '\n');
log(`wrote ${args.out}`);
