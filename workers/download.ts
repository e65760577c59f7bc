// The download thread: every image download of a runner runs here, so the sockets, the HTTP
// parsing, the body's buffers and its SHA-256 cost the event loop that serves the API nothing
// (src/net/download-thread.ts starts it and asks). It holds the runner's connection limiter
// (DOWNLOAD_CONCURRENCY, DOWNLOAD_PER_HOST), so every limit works as before.
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { toFailure, type DownloadReply, type DownloadRequest, type DownloadThreadSettings } from '../src/net/download-task.js';
import { downloadIfChanged, downloadImage, HostLimiter, parseAllowlist, type DownloadOptions, type Validators } from '../src/net/index.js';
import { collectGarbage } from '../src/runtime/collect-garbage.js';

const settings = workerData as DownloadThreadSettings;
const port = parentPort!;
const post = (reply: DownloadReply, transfer: ArrayBuffer[] = []) => port.postMessage(reply, transfer);

const options: DownloadOptions = {
  allowlist: parseAllowlist(settings.allowlist),
  connectTimeoutMs: settings.connectTimeoutMs,
  timeoutMs: settings.timeoutMs,
  retries: settings.retries,
  retryBaseMs: settings.retryBaseMs,
  maxBytes: settings.maxBytes,
  // slots are taken inside the transport, per address actually connected to
  limiter: new HostLimiter({ global: settings.concurrency, perHost: settings.perHost }),
  ...(settings.logRefusals ? { log: { debug: (obj: object, msg: string) => post({ type: 'refused', obj, msg }) } } : {}),
};

const running = new Map<number, AbortController>();

/**
 * A download leaves its socket reads behind (a buffer per read, garbage once copied into the
 * body). This thread's heap is small, so V8 would let them pile up to its external-memory limit
 * before collecting, and the process keeps the memory it grew to. A young-generation collection
 * every 4 MiB downloaded (under a millisecond each) keeps that pile small: docs/performance.md,
 * "What it costs in memory".
 */
const COLLECT_EVERY_BYTES = 4 * 2 ** 20;
let downloadedSinceCollect = 0;

port.on('message', (m: DownloadRequest) => {
  if (m.type === 'abort') running.get(m.id)?.abort();
  else void get(m.id, m.url, m.validators);
});

async function get(id: number, url: string, validators: Validators | null): Promise<void> {
  const ctl = new AbortController();
  running.set(id, ctl);
  try {
    const opts = { ...options, signal: ctl.signal };
    const result = validators ? await downloadIfChanged(url, validators, opts) : await downloadImage(url, opts);
    if ('notModified' in result) return post({ type: 'done', id, result });
    const sha256 = createHash('sha256').update(result.bytes).digest('hex');
    downloadedSinceCollect += result.bytes.length;
    if (downloadedSinceCollect >= COLLECT_EVERY_BYTES) {
      downloadedSinceCollect = 0;
      collectGarbage('young');
    }
    // the body's own ArrayBuffer (transport.ts) is moved to the runner, not copied
    post({ type: 'done', id, result: { ...result, sha256 } }, [result.bytes.buffer as ArrayBuffer]);
  } catch (err) {
    post({ type: 'failed', id, error: toFailure(err) });
  } finally {
    running.delete(id);
  }
}
