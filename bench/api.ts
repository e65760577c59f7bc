// API: GET /api/v1/status/{id} of a 1 000-product request under autocannon (50 connections) while
// that request is being processed; the service runs as a child process, autocannon as another.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { diagnosticsFor, startChildServer, type Diagnostics } from './child-server.js';
import type { CorpusImage } from './corpus.js';
import { getStatus, productCsv, upload } from './csv.js';
import { startImageServer } from './image-server.js';
import { figure, type Figure } from './report.js';
import { round, sleep } from './stats.js';

const run = promisify(execFile);

export interface CannonResult {
  requestsPerSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  total: number;
  non2xx: number;
  errors: number;
}

export async function autocannon(url: string, connections: number, seconds: number): Promise<CannonResult> {
  const cli = createRequire(import.meta.url).resolve('autocannon');
  const { stdout } = await run(process.execPath, [cli, '-c', String(connections), '-d', String(seconds), '-j', url], { maxBuffer: 64 * 2 ** 20 });
  const j = JSON.parse(stdout) as {
    requests: { average: number; total: number };
    latency: { p50: number; p90: number; p99: number; max: number };
    non2xx: number;
    errors: number;
  };
  return {
    requestsPerSecond: j.requests.average, p50: j.latency.p50, p90: j.latency.p90, p99: j.latency.p99, max: j.latency.max,
    total: j.requests.total, non2xx: j.non2xx, errors: j.errors,
  };
}

export async function apiBench(entry: string, jpegs: CorpusImage[], threads: number, opts: { quick: boolean; log: (s: string) => void; diagnostics?: Diagnostics | null; env?: Record<string, string> }) {
  const seconds = opts.quick ? 3 : 10;
  const products = 1000;
  const dir = mkdtempSync(join(tmpdir(), 'icp-bench-api-'));
  const images = await startImageServer(jpegs);
  const diag = diagnosticsFor(opts.diagnostics ?? null, 'api');
  const server = await startChildServer({
    entry, dir, execArgv: diag.execArgv,
    env: { DATA_DIR: dir, WORKER_THREADS: String(threads), FETCH_ALLOWLIST: images.cidr, ...opts.env, ...diag.env },
  });
  try {
    const up = await upload(server.base, productCsv(products, (i) => [images.url(i, 'api')]));
    if (up.status !== 202 || !up.body.request_id) throw new Error(`api: upload HTTP ${up.status} ${JSON.stringify(up.body)}`);
    const id = up.body.request_id;
    // wait until the job is really running (images being compressed)
    for (let i = 0; i < 400; i++) {
      const s = await getStatus(server.base, id);
      if (s.progress.done >= threads) break;
      await sleep(50);
    }
    const before = await getStatus(server.base, id);
    opts.log(`api: autocannon -c 50 -d ${seconds} on /api/v1/status/{id} (1 000 products, job at ${before.progress.done}/${before.progress.total})`);
    const r = await autocannon(`${server.base}/api/v1/status/${id}`, 50, seconds);
    // the same request with one connection: the service time of one status call (job still running)
    const single = await autocannon(`${server.base}/api/v1/status/${id}`, 1, opts.quick ? 2 : 3);
    // the floor of the HTTP stack under the same load: a route that reads nothing from the store
    const floor = await autocannon(`${server.base}/healthz`, 50, opts.quick ? 2 : 3);
    const after = await getStatus(server.base, id);
    const running = after.status === 'processing' && after.progress.done < after.progress.total;
    opts.log(`api: ${r.requestsPerSecond.toFixed(0)} req/s, p99 ${r.p99} ms; job at ${after.progress.done}/${after.progress.total} afterwards (${after.status})`);
    const figures: Figure[] = [
      figure('api.status_rps', `GET status (1 000 products, default page) under load: requests/s`, round(r.requestsPerSecond, 0), 'req/s'),
      figure('api.status_p99', 'GET status under load: p99 latency', r.p99, 'ms', '<= 50 ms', r.p99 <= 50 && r.non2xx === 0 && r.errors === 0 && running,
        running ? undefined : 'the job was not running for the whole measurement'),
      figure('api.status_single_p50', 'GET status, 1 connection: p50 latency (service time)', single.p50, 'ms', '', null, `${round(single.requestsPerSecond, 0)} req/s with one connection`),
      figure('api.healthz_p99', 'GET /healthz, same load (HTTP floor): p99', floor.p99, 'ms', '', null, `${round(floor.requestsPerSecond, 0)} req/s`),
      figure('api.images_during_load', 'Images compressed while under API load', after.progress.done - before.progress.done, 'img'),
    ];
    return { figures, detail: { seconds, connections: 50, products, result: r, singleConnection: single, healthzFloor: floor, jobBefore: before.progress, jobAfter: after.progress, jobRunningThroughout: running } };
  } finally {
    await server.stop();
    await images.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
