// Event streams: what 200 open streams (100 on the request list, 100 following the running
// request) cost a job. The service runs as a child process; the streams are read here. The same
// job runs with and without the streams, interleaved (ABBA), and the figures are:
// - throughput with streams / without, and the server CPU the streams add to the job's (the
//   target: streams cost under 5%);
// - event delay: when a list event arrives minus the updated_at it carries (the store write of
//   that change), so it covers the poll interval, the fan-out and the network;
// - the server's main-thread CPU per event delivered: the extra CPU of the phase with streams
//   over the one without, divided by the events the streams got (codecs run on other threads).
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChildServer } from './child-server.js';
import type { CorpusImage } from './corpus.js';
import { productCsv, upload, waitFinal } from './csv.js';
import { startImageServer } from './image-server.js';
import { figure, type Figure } from './report.js';
import { median, now, percentile, processCpuMs, processCpuMsOf, round, sleep, threadCpuMs } from './stats.js';

const STREAMS = 200;
const FINAL = new Set(['completed', 'failed', 'cancelled']);

interface Reader {
  events: number;
  /** ms from a change's updated_at to the event's arrival (list events after an image finished) */
  delays: number[];
  /** resolves when an event says request `id` is final (or the stream ends) */
  final(id: string): Promise<void>;
  close(): void;
}

/**
 * One stream, read with node:http and parsed only as far as needed: the reader shares the cores
 * with the server, so it must cost far less than the server's side (fetch() and web streams
 * cost about 100 µs an event here, this about a tenth of that).
 */
function openStream(url: string): Promise<Reader> {
  return new Promise((resolve, reject) => {
    const finals = new Set<string>();
    const waiters = new Map<string, () => void>();
    const req = httpGet(url, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`streams: ${url}: HTTP ${res.statusCode}`));
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const at = block.indexOf('\ndata: ');
          if (at < 0) continue; // a comment
          reader.events++;
          const e = JSON.parse(block.slice(at + 7)) as { request_id: string; status: string; progress: { done: number; failed: number }; updated_at?: string };
          // updated_at moves with each finished image (a claim alone does not move it).
          if (e.updated_at && e.progress.done + e.progress.failed > 0) reader.delays.push(Date.now() - Date.parse(e.updated_at));
          if (FINAL.has(e.status)) {
            finals.add(e.request_id);
            waiters.get(e.request_id)?.();
          }
        }
      });
      const end = () => waiters.forEach((w) => w());
      res.on('end', end);
      res.on('error', end);
      resolve(reader);
    });
    req.on('error', reject);
    const reader: Reader = {
      events: 0,
      delays: [],
      final: (id) => (finals.has(id) ? Promise.resolve() : new Promise((done) => waiters.set(id, done))),
      close: () => req.destroy(),
    };
  });
}

export async function streamsBench(entry: string, jpegs: CorpusImage[], threads: number, opts: { quick: boolean; log: (s: string) => void }) {
  const images = opts.quick ? 60 : 200;
  const rounds = opts.quick ? 1 : 3;
  const dir = mkdtempSync(join(tmpdir(), 'icp-bench-streams-'));
  const imageServer = await startImageServer(jpegs);
  const server = await startChildServer({
    entry, dir, env: { DATA_DIR: dir, WORKER_THREADS: String(threads), FETCH_ALLOWLIST: imageServer.cidr, LOG_LEVEL: 'warn' },
  });
  const csvFor = (tag: string, n: number) => productCsv(Math.ceil(n / 2), (p) => [2 * p - 2, 2 * p - 1].filter((i) => i < n).map((i) => imageServer.url(i, tag)));

  const job = async (tag: string, withStreams: boolean) => {
    const lists = withStreams ? await Promise.all(Array.from({ length: STREAMS / 2 }, () => openStream(`${server.base}/api/v1/requests/events`))) : [];
    const main0 = threadCpuMs(server.pid);
    const proc0 = processCpuMsOf(server.pid);
    const client0 = processCpuMs();
    const t0 = now();
    const up = await upload(server.base, csvFor(tag, images));
    if (up.status !== 202 || !up.body.request_id) throw new Error(`streams: upload HTTP ${up.status} ${JSON.stringify(up.body)}`);
    const id = up.body.request_id;
    const followers = withStreams ? await Promise.all(Array.from({ length: STREAMS / 2 }, () => openStream(`${server.base}/api/v1/status/${id}/events`))) : [];
    const fin = await waitFinal(server.base, id, 100);
    if (fin.status.status !== 'completed' || fin.status.progress.done !== images) throw new Error(`streams: job ended ${JSON.stringify(fin.status)}`);
    const all = [...lists, ...followers];
    // Every stream has its final event within a poll or two; the CPU window closes after them.
    await Promise.all(all.map((r) => Promise.race([r.final(id), sleep(5_000)])));
    // The server's main thread and all its threads; this process (the image server and, with
    // streams, their readers) shares the same cores.
    const cpu = { main: threadCpuMs(server.pid) - main0, process: processCpuMsOf(server.pid) - proc0, client: processCpuMs() - client0 };
    all.forEach((r) => r.close());
    return {
      ms: fin.at - t0, cpu,
      events: all.reduce((a, r) => a + r.events, 0),
      delays: lists.flatMap((r) => r.delays),
      streamsWithFinal: all.length,
    };
  };

  try {
    opts.log(`streams: ${images} images, ${threads} threads, ${rounds} round(s) of (without, with ${STREAMS} streams) in ABBA order`);
    await job('warm', false);
    const without: Awaited<ReturnType<typeof job>>[] = [];
    const withS: Awaited<ReturnType<typeof job>>[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const streams of r % 2 === 0 ? [false, true] : [true, false]) {
        const res = await job(`r${r}${streams ? 's' : 'n'}`, streams);
        (streams ? withS : without).push(res);
        opts.log(`streams round ${r + 1} ${streams ? `with ${STREAMS} streams` : 'without streams'}: ${res.ms.toFixed(0)} ms; CPU: server main thread ${res.cpu.main.toFixed(0)} ms, server ${res.cpu.process.toFixed(0)} ms, bench process ${res.cpu.client.toFixed(0)} ms; ${res.events} events`);
      }
    }
    const ips = (runs: { ms: number }[]) => images / (median(runs.map((x) => x.ms)) / 1000);
    const ratio = median(withS.map((w, i) => without[i]!.ms / w.ms));
    const delays = withS.flatMap((w) => w.delays);
    const events = withS.reduce((a, w) => a + w.events, 0);
    const extraMainCpu = withS.reduce((a, w, i) => a + w.cpu.main - without[i]!.cpu.main, 0);
    const perEventUs = (extraMainCpu / events) * 1000;
    // The streams' work runs on the main thread; against what the whole job costs the server.
    const cpuShare = extraMainCpu / without.reduce((a, w) => a + w.cpu.process, 0);
    const figures: Figure[] = [
      figure('streams.throughput_ratio', `Job throughput with ${STREAMS} open event streams / without`, round(ratio, 3), 'x', '>= 0.95x (streams cost < 5%)', ratio >= 0.95),
      figure('streams.cpu_share', `Server CPU the ${STREAMS} streams add / server CPU of the job`, round(cpuShare * 100, 2), '%', '< 5%', cpuShare < 0.05,
        'main-thread CPU with streams minus without, over the whole process\'s CPU without: less noisy than throughput on a shared machine'),
      figure('streams.ips_without', `Job without streams (${images} images, ${threads} threads): images/s`, round(ips(without), 2), 'img/s'),
      figure('streams.ips_with', `Job with ${STREAMS} streams: images/s`, round(ips(withS), 2), 'img/s'),
      figure('streams.event_delay_p99', 'Event delay p99 (store write to client), list streams', round(percentile(delays, 99), 0), 'ms', '', null,
        `median ${round(median(delays), 0)} ms over ${delays.length} events; the watcher polls every 250 ms`),
      figure('streams.cpu_per_event', 'Server main-thread CPU per event delivered', round(perEventUs, 1), 'µs', '', null,
        `${events} events; ${round(extraMainCpu, 0)} ms more main-thread CPU than the runs without streams`),
    ];
    return {
      figures,
      detail: {
        images, threads, streams: STREAMS, rounds,
        without: without.map(({ ms, cpu, events: e }) => ({ ms, cpu, events: e })),
        with: withS.map(({ ms, cpu, events: e }) => ({ ms, cpu, events: e })),
        delayMs: { p50: median(delays), p90: percentile(delays, 90), p99: percentile(delays, 99), max: Math.max(...delays), n: delays.length },
      },
    };
  } finally {
    await server.stop();
    await imageServer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
