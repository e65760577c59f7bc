// End to end: the whole service in this process (store, pool, runner, HTTP), a local image
// server serving the corpus JPEGs under distinct URLs (in another thread, with the client), one
// CSV upload timed from the first byte of the upload to the status reading `completed`. In the same rounds, interleaved: the raw
// CompressPool (same thread count) and a sharp-mozjpeg pool (sharp's libuv pool, one libvips
// thread per image, N images in flight) over the same image bytes.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { CompressPool } from '../src/pipeline/pool.js';
import { startService } from '../src/service.js';
import type { CorpusImage } from './corpus.js';
import { Worker } from 'node:worker_threads';
import type { OutsideAnswer, OutsideInit, OutsideRun } from './e2e-outside.js';
import { poolPass, POOL_DEFAULTS } from './pool-scaling.js';
import { figure, type Figure } from './report.js';
import { mainThreadCpuMs, mapLimit, median, now, processCpuMs, round, threadCpuMs, threadIds } from './stats.js';

export async function e2eBench(jpegs: CorpusImage[], threads: number, opts: { quick: boolean; log: (s: string) => void; profileDir?: string | null }) {
  const images = opts.quick ? 100 : 220; // --quick is a smoke run; the target is measured on >= 200
  const rounds = opts.quick ? 1 : 3;
  const perProduct = 2; // two images per product, like a typical catalogue row
  const dir = mkdtempSync(join(tmpdir(), 'icp-bench-e2e-'));
  // The image server and the uploading, polling client run in a thread of their own (see
  // e2e-outside.ts). Every URL answers different bytes: each image is a first import (no
  // content-cache reuse).
  const outside = new Worker(new URL('./e2e-outside.js', import.meta.url), { workerData: { images: jpegs.map((j) => ({ name: j.name, bytes: j.bytes })) } satisfies OutsideInit });
  const ask = (msg: OutsideRun | null) => new Promise<OutsideAnswer>((resolve, reject) => {
    outside.once('message', resolve);
    outside.once('error', reject);
    if (msg) outside.postMessage(msg);
  });
  const ready = await ask(null);
  if (!('ready' in ready)) throw new Error(`e2e outside thread: ${JSON.stringify(ready)}`);
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, FETCH_ALLOWLIST: ready.cidr, WORKER_THREADS: String(threads), LOG_LEVEL: 'silent',
  });
  const service = await startService(config, createLogger({ LOG_LEVEL: 'silent' }));
  const base = `http://127.0.0.1:${service.server.port}`;
  const raw = new CompressPool({ threads, ...POOL_DEFAULTS });
  sharp.concurrency(1);
  sharp.cache(false);
  const bytes = Array.from({ length: images }, (_, i) => jpegs[i % jpegs.length]!.bytes);

  const runService = async (tag: string, n: number) => {
    const before = await outcomes();
    const fin = await ask({ base, tag, images: n, perProduct, pollMs: 100 });
    if ('error' in fin) throw new Error(fin.error);
    if (!('status' in fin)) throw new Error('e2e outside thread: unexpected answer');
    if (fin.status !== 'completed' || fin.progress.done !== n || fin.progress.failed !== 0) throw new Error(`e2e: ${fin.status} ${JSON.stringify(fin.progress)}`);
    const after = await outcomes();
    const counted = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v !== 0));
    return { ms: fin.ms, uploadMs: fin.uploadMs, outcomes: counted };
  };
  /** images finished so far by outcome (compressed, passed_through, original_kept, reused) */
  const outcomes = async (): Promise<Record<string, number>> =>
    Object.fromEntries((await service.metrics.imageOutcomes.get()).values.map((v) => [String(v.labels.outcome), v.value]));
  const runRaw = async () => (await poolPass(raw, bytes)).ms;
  const runSharp = async () => {
    const t0 = now();
    await mapLimit(bytes, threads, (b) => sharp(b).rotate().jpeg({ quality: 50, mozjpeg: true }).toBuffer());
    return now() - t0;
  };

  try {
    opts.log(`e2e: ${images} images (${jpegs.length} JPEGs under distinct URLs), ${threads} threads, ${rounds} round(s) of service / raw pool / sharp pool`);
    // warm-up: every thread of both pools has its codecs instantiated; sharp loaded
    await raw.ready();
    await poolPass(raw, bytes.slice(0, threads * 2));
    // the threads the service starts with its first images: its download thread (src/net/download-thread.ts)
    const threadsBefore = new Set(threadIds());
    await runService('warm', threads * 2);
    const startedForImages = threadIds().filter((t) => !threadsBefore.has(t));
    const startedCpuMs = () => startedForImages.reduce((sum, t) => sum + threadCpuMs(process.pid, t), 0);
    await mapLimit(bytes.slice(0, threads * 2), threads, (b) => sharp(b).rotate().jpeg({ quality: 50, mozjpeg: true }).toBuffer());
    const svc: number[] = [];
    const uploads: number[] = [];
    const rawMs: number[] = [];
    const sharpMs: number[] = [];
    const order = ['svc', 'raw', 'sharp'] as const;
    // CPU per image of each phase: whole process, and the main thread alone (where the service's
    // HTTP, fetch, store and runner run; the codecs run in pool threads)
    const cpu = { svc: [] as number[], raw: [] as number[], sharp: [] as number[], svcMain: [] as number[], svcDownload: [] as number[] };
    const loads: number[] = [];
    // the main thread's full (mark-compact) collections during each service run: what moves its
    // CPU figure between rounds (docs/performance.md)
    const majorGcs: number[] = [];
    let majors = 0;
    const gcWatch = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) majors++;
    });
    gcWatch.observe({ entryTypes: ['gc'] });
    const svcOutcomes: Record<string, number>[] = [];
    // --profile DIR: the main thread's CPU profile over the service runs (the profiler's own cost
    // lands in the main-thread CPU figure of that run)
    const profiler = opts.profileDir ? new Session() : null;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 500 });
    }
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < order.length; k++) {
        const which = order[(k + r) % order.length]!;
        const p0 = processCpuMs();
        const m0 = mainThreadCpuMs();
        const d0 = startedCpuMs();
        const account = () => {
          cpu[which].push((processCpuMs() - p0) / images);
          if (which === 'svc') {
            cpu.svcMain.push((mainThreadCpuMs() - m0) / images);
            cpu.svcDownload.push((startedCpuMs() - d0) / images);
          }
        };
        if (which === 'svc') {
          if (profiler) await profiler.post('Profiler.start');
          const majors0 = majors;
          const s = await runService(`r${r}`, images);
          majorGcs.push(majors - majors0);
          if (profiler) {
            const { profile } = await profiler.post('Profiler.stop');
            mkdirSync(opts.profileDir!, { recursive: true });
            const file = join(opts.profileDir!, `e2e-main-r${r + 1}.cpuprofile`);
            writeFileSync(file, JSON.stringify(profile));
            opts.log(`e2e: main-thread profile of service round ${r + 1} in ${file}`);
          }
          svc.push(s.ms);
          uploads.push(s.uploadMs);
          svcOutcomes.push(s.outcomes);
        } else if (which === 'raw') rawMs.push(await runRaw());
        else sharpMs.push(await runSharp());
        account();
      }
      loads.push(loadavg()[0]!);
      opts.log(`e2e round ${r + 1}: outcomes ${JSON.stringify(svcOutcomes.at(-1))}; main thread ${cpu.svcMain.at(-1)!.toFixed(2)} ms/image, ${majorGcs.at(-1)} full GCs; download thread ${cpu.svcDownload.at(-1)!.toFixed(2)} ms/image; service ${svc.at(-1)!.toFixed(0)} ms, raw pool ${rawMs.at(-1)!.toFixed(0)} ms, sharp pool ${sharpMs.at(-1)!.toFixed(0)} ms`);
    }
    profiler?.disconnect();
    gcWatch.disconnect();
    const load = `load average ${median(loads).toFixed(1)} (1 min, median over rounds)`;
    const firstImports = svcOutcomes.every((o) => (o.compressed ?? 0) + (o.original_kept ?? 0) === images);
    const vsRaw = median(svc.map((s, i) => rawMs[i]! / s));
    const vsSharp = median(svc.map((s, i) => sharpMs[i]! / s));
    const ips = (ms: number[]) => images / (median(ms) / 1000);
    const rawVsSharp = median(rawMs.map((r, i) => sharpMs[i]! / r));
    const svcNote = firstImports ? `every image a first import (compressed or original kept); ${load}` : `NOT all first imports: ${JSON.stringify(svcOutcomes)}; ${load}`;
    const figures: Figure[] = [
      figure('e2e.ips', `End to end (${images} images, ${threads} threads): images/s`, round(ips(svc), 2), 'img/s'),
      figure('e2e.raw_pool_ips', `Raw CompressPool, ${threads} threads: images/s`, round(ips(rawMs), 2), 'img/s'),
      figure('e2e.sharp_pool_ips', `sharp mozjpeg pool, ${threads} threads: images/s`, round(ips(sharpMs), 2), 'img/s'),
      figure('e2e.vs_raw_pool', 'End to end / raw pool throughput', round(vsRaw, 3), 'x', '>= 0.9x', vsRaw >= 0.9, load),
      figure('e2e.vs_sharp_pool', 'End to end / sharp-mozjpeg pool throughput (first imports)', round(vsSharp, 3), 'x', '>= 1.0x', firstImports && vsSharp >= 1.0, svcNote),
      figure('e2e.raw_pool_vs_sharp_pool', 'Raw pool / sharp-mozjpeg pool throughput', round(rawVsSharp, 3), 'x', '>= 1.15x', rawVsSharp >= 1.15, load),
      figure('e2e.cpu_per_image_service', 'CPU per image, service (all threads)', round(median(cpu.svc), 1), 'ms'),
      figure('e2e.cpu_per_image_service_main', 'CPU per image, service main thread (HTTP+fetch+store+runner)', round(median(cpu.svcMain), 2), 'ms', '<= 3 ms', median(cpu.svcMain) <= 3,
        `/proc/self/task/<pid>/stat utime+stime of the main thread over the run / images; the bench's image server and its uploading, polling client run in another thread (their CPU is in the all-threads figure); the service's answers to the polls (every 100 ms) are counted; full GCs of the main thread per round ${majorGcs.join(', ')}${profiler ? '; PROFILED run: includes the profiler' : ''}; ${load}`),
      figure('e2e.cpu_per_image_service_download', 'CPU per image, service download thread (sockets, HTTP parsing, SHA-256)', round(median(cpu.svcDownload), 2), 'ms', undefined, undefined,
        `/proc/self/task/<tid>/stat of the ${startedForImages.length} thread(s) the service started with its first images (the download thread), over the run / images: work moved off the main thread, counted here and in the all-threads figure`),
      figure('e2e.cpu_per_image_raw', 'CPU per image, raw pool (all threads)', round(median(cpu.raw), 1), 'ms'),
      figure('e2e.cpu_per_image_sharp', 'CPU per image, sharp-mozjpeg pool (all threads)', round(median(cpu.sharp), 1), 'ms'),
    ];
    return { figures, detail: { images, threads, perProduct, serviceMs: svc, uploadMs: uploads, rawPoolMs: rawMs, sharpPoolMs: sharpMs, cpuPerImageMs: cpu, loadavg1: loads, outcomes: svcOutcomes, mainThreadFullGcs: majorGcs } };
  } finally {
    await service.stop();
    await raw.close();
    outside.postMessage('close');
    await new Promise((r) => outside.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}
