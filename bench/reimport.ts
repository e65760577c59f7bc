// Re-imports and fairness, through the whole service in this process:
// - re-import: a catalogue of distinct images (corpus JPEGs with a few bytes appended after the
//   end-of-image marker) imported, then the same CSV again. The second import should reuse
//   every output: its speed against the first, and its codec runs (counted from CODEC_RUN_LOG,
//   not inferred). The first import is also set against a sharp-mozjpeg pool on the same bytes.
// - fairness: a big request, then a 1-image request; the small one's time from upload to
//   completed, and how far the big one had got by then.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import type { CorpusImage } from './corpus.js';
import { getStatus, productCsv, upload, waitFinal } from './csv.js';
import { startImageServer } from './image-server.js';
import { figure, type Figure } from './report.js';
import { mapLimit, now, round } from './stats.js';

export async function reimportBench(jpegs: CorpusImage[], threads: number, opts: { quick: boolean; log: (s: string) => void }) {
  const n = opts.quick ? 200 : 500;
  const distinct = Array.from({ length: n }, (_, i) => {
    const src = jpegs[i % jpegs.length]!;
    return { name: `${i}.jpg`, bytes: new Uint8Array([...src.bytes, ...new Uint8Array(1 + Math.floor(i / jpegs.length))]) };
  });
  const dir = mkdtempSync(join(tmpdir(), 'icp-bench-reimport-'));
  const codecLog = join(dir, 'codec-runs.log');
  const server = await startImageServer(distinct);
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, FETCH_ALLOWLIST: server.cidr, WORKER_THREADS: String(threads), LOG_LEVEL: 'silent', CODEC_RUN_LOG: codecLog,
  });
  const service = await startService(config, createLogger({ LOG_LEVEL: 'silent' }));
  const base = `http://127.0.0.1:${service.server.port}`;
  const codecRuns = () => (existsSync(codecLog) ? readFileSync(codecLog, 'utf8').split('\n').filter(Boolean).length : 0);
  const importOnce = async (csv: string) => {
    const t0 = now();
    const up = await upload(base, csv);
    if (up.status !== 202 || !up.body.request_id) throw new Error(`upload: HTTP ${up.status}`);
    const fin = await waitFinal(base, up.body.request_id, 50);
    if (fin.status.status !== 'completed' || fin.status.progress.failed !== 0) throw new Error(`reimport: ${JSON.stringify(fin.status.progress)}`);
    return fin.at - t0;
  };
  try {
    const csv = productCsv(n / 2, (p) => [server.url(2 * (p - 1)), server.url(2 * (p - 1) + 1)]);
    opts.log(`reimport: ${n} distinct images, ${threads} threads`);
    const firstMs = await importOnce(csv);
    const runsFirst = codecRuns();
    const secondMs = await importOnce(csv);
    const runsSecond = codecRuns() - runsFirst;
    sharp.concurrency(1);
    sharp.cache(false);
    const t0 = now();
    await mapLimit(distinct.map((d) => d.bytes), threads, (b) => sharp(b).rotate().jpeg({ quality: 50, mozjpeg: true }).toBuffer());
    const sharpMs = now() - t0;
    opts.log(`reimport: first ${firstMs.toFixed(0)} ms (${runsFirst} codec runs), second ${secondMs.toFixed(0)} ms (${runsSecond} codec runs), sharp pool ${sharpMs.toFixed(0)} ms`);

    // Fairness: a big request, then a small one right behind it.
    const big = Math.min(800, n);
    const bigCsv = productCsv(big, (p) => [server.url(p - 1, 'fair')]);
    const bigId = (await upload(base, bigCsv)).body.request_id!;
    await new Promise((r) => setTimeout(r, 300));
    const s0 = now();
    const smallId = (await upload(base, productCsv(1, () => [server.url(0, 'small')]))).body.request_id!;
    const smallFin = await waitFinal(base, smallId, 20);
    const smallMs = smallFin.at - s0;
    const bigThen = await getStatus(base, bigId);
    await waitFinal(base, bigId, 200);
    opts.log(`fairness: 1-image request behind a ${big}-image one done in ${smallMs.toFixed(0)} ms; the big one was at ${bigThen.progress.done}/${big}`);

    const speedup = firstMs / secondMs;
    const figures: Figure[] = [
      figure('reimport.first_ips', `First import (${n} distinct images): images/s`, round(n / (firstMs / 1000), 2), 'img/s'),
      figure('reimport.first_vs_sharp_pool', 'First import / sharp-mozjpeg pool (same bytes, same threads)', round(sharpMs / firstMs, 3), 'x'),
      figure('reimport.speedup', 'Second import of the same CSV: speed-up over the first', round(speedup, 2), 'x', '>= 10x', speedup >= 10),
      figure('reimport.second_codec_runs', 'Second import: codec runs (counted)', runsSecond, '', '0', runsSecond === 0),
      figure('fairness.small_latency', `1-image request behind a ${big}-image one: upload to completed`, round(smallMs, 0), 'ms', 'a second or two', smallMs <= 2_000,
        `the big request was at ${bigThen.progress.done}/${big} then`),
    ];
    return { figures, detail: { images: n, firstMs, secondMs, runsFirst, runsSecond, sharpMs, fairness: { big, smallMs, bigDoneThen: bigThen.progress.done } } };
  } finally {
    await service.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
