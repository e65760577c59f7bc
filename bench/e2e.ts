// End to end: the whole service in this process (store, pool, runner, HTTP), a local image
// server serving the corpus JPEGs under distinct URLs, one CSV upload timed from the first byte
// of the upload to the status reading `completed`. In the same rounds, interleaved: the raw
// CompressPool (same thread count) and a sharp-mozjpeg pool (sharp's libuv pool, one libvips
// thread per image, N images in flight) over the same image bytes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { CompressPool } from '../src/pipeline/pool.js';
import { startService } from '../src/service.js';
import type { CorpusImage } from './corpus.js';
import { productCsv, upload, waitFinal } from './csv.js';
import { startImageServer } from './image-server.js';
import { poolPass, POOL_DEFAULTS } from './pool-scaling.js';
import { figure, type Figure } from './report.js';
import { mainThreadCpuMs, mapLimit, median, now, processCpuMs, round } from './stats.js';

export async function e2eBench(jpegs: CorpusImage[], threads: number, opts: { quick: boolean; log: (s: string) => void }) {
  const images = opts.quick ? 100 : 220; // --quick is a smoke run; the target is measured on >= 200
  const rounds = opts.quick ? 1 : 3;
  const perProduct = 2; // two images per product, like a typical catalogue row
  const dir = mkdtempSync(join(tmpdir(), 'icp-bench-e2e-'));
  const server = await startImageServer(jpegs);
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, FETCH_ALLOWLIST: server.cidr, WORKER_THREADS: String(threads), LOG_LEVEL: 'silent',
  });
  const service = await startService(config, createLogger({ LOG_LEVEL: 'silent' }));
  const base = `http://127.0.0.1:${service.server.port}`;
  const raw = new CompressPool({ threads, ...POOL_DEFAULTS });
  sharp.concurrency(1);
  sharp.cache(false);
  const bytes = Array.from({ length: images }, (_, i) => jpegs[i % jpegs.length]!.bytes);

  const runService = async (tag: string, n: number) => {
    const csv = productCsv(Math.ceil(n / perProduct), (p) => {
      const urls: string[] = [];
      for (let k = 0; k < perProduct; k++) {
        const i = (p - 1) * perProduct + k;
        if (i < n) urls.push(server.url(i, tag));
      }
      return urls;
    });
    const t0 = now();
    const up = await upload(base, csv);
    if (up.status !== 202 || !up.body.request_id) throw new Error(`upload: HTTP ${up.status} ${JSON.stringify(up.body)}`);
    const accepted = now();
    const fin = await waitFinal(base, up.body.request_id, 100);
    const { progress, status } = fin.status;
    if (status !== 'completed' || progress.done !== n || progress.failed !== 0) throw new Error(`e2e: ${status} ${JSON.stringify(progress)}`);
    return { ms: fin.at - t0, uploadMs: accepted - t0 };
  };
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
    await runService('warm', threads * 2);
    await mapLimit(bytes.slice(0, threads * 2), threads, (b) => sharp(b).rotate().jpeg({ quality: 50, mozjpeg: true }).toBuffer());
    const svc: number[] = [];
    const uploads: number[] = [];
    const rawMs: number[] = [];
    const sharpMs: number[] = [];
    const order = ['svc', 'raw', 'sharp'] as const;
    // CPU per image of each phase: whole process, and the main thread alone (where the service's
    // HTTP, fetch, store and runner run; the codecs run in pool threads)
    const cpu = { svc: [] as number[], raw: [] as number[], sharp: [] as number[], svcMain: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < order.length; k++) {
        const which = order[(k + r) % order.length]!;
        const p0 = processCpuMs();
        const m0 = mainThreadCpuMs();
        const account = () => {
          cpu[which].push((processCpuMs() - p0) / images);
          if (which === 'svc') cpu.svcMain.push((mainThreadCpuMs() - m0) / images);
        };
        if (which === 'svc') {
          const s = await runService(`r${r}`, images);
          svc.push(s.ms);
          uploads.push(s.uploadMs);
        } else if (which === 'raw') rawMs.push(await runRaw());
        else sharpMs.push(await runSharp());
        account();
      }
      opts.log(`e2e round ${r + 1}: service ${svc.at(-1)!.toFixed(0)} ms, raw pool ${rawMs.at(-1)!.toFixed(0)} ms, sharp pool ${sharpMs.at(-1)!.toFixed(0)} ms`);
    }
    const vsRaw = median(svc.map((s, i) => rawMs[i]! / s));
    const vsSharp = median(svc.map((s, i) => sharpMs[i]! / s));
    const ips = (ms: number[]) => images / (median(ms) / 1000);
    const figures: Figure[] = [
      figure('e2e.ips', `End to end (${images} images, ${threads} threads): images/s`, round(ips(svc), 2), 'img/s'),
      figure('e2e.raw_pool_ips', `Raw CompressPool, ${threads} threads: images/s`, round(ips(rawMs), 2), 'img/s'),
      figure('e2e.sharp_pool_ips', `sharp mozjpeg pool, ${threads} threads: images/s`, round(ips(sharpMs), 2), 'img/s'),
      figure('e2e.vs_raw_pool', 'End to end / raw pool throughput', round(vsRaw, 3), 'x', '>= 0.9x', vsRaw >= 0.9),
      figure('e2e.vs_sharp_pool', 'End to end / sharp-mozjpeg pool throughput', round(vsSharp, 3), 'x', '>= 0.9x', vsSharp >= 0.9),
      figure('e2e.cpu_per_image_service', 'CPU per image, service (all threads)', round(median(cpu.svc), 1), 'ms'),
      figure('e2e.cpu_per_image_service_main', 'CPU per image, service main thread (HTTP+fetch+store+runner)', round(median(cpu.svcMain), 1), 'ms', '', null,
        'includes this bench\'s image server and status polling (every 100 ms), which share the thread'),
      figure('e2e.cpu_per_image_raw', 'CPU per image, raw pool (all threads)', round(median(cpu.raw), 1), 'ms'),
      figure('e2e.cpu_per_image_sharp', 'CPU per image, sharp-mozjpeg pool (all threads)', round(median(cpu.sharp), 1), 'ms'),
    ];
    return { figures, detail: { images, threads, perProduct, serviceMs: svc, uploadMs: uploads, rawPoolMs: rawMs, sharpPoolMs: sharpMs, cpuPerImageMs: cpu, imageServerRequests: server.requests() } };
  } finally {
    await service.stop();
    await raw.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
