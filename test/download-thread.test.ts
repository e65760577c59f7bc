// The download thread (src/net/download-thread.ts, workers/download.ts): image downloads in a
// thread of their own, live over loopback. The thread is the built dist/workers/download.js
// (`npm run build` first). The image server listens on 127.0.0.9, allowlisted; the trap on
// 127.0.0.1 is not, and must never see a connection.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants as perf, PerformanceObserver } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadThread, FetchError, type DownloadThreadSettings, type FetchedImage } from '../src/net/index.js';
import { collectGarbage } from '../src/runtime/collect-garbage.js';
import { BUILTIN, startImageServer, startTrap, type ImageServer, type Trap } from './helpers/image-server.js';
import { tempDir } from './helpers/service.js';

let srv: ImageServer;
let trap: Trap;
let settings: DownloadThreadSettings;
const PAYLOAD = new Uint8Array(Array.from({ length: 50_000 }, (_, i) => (i * 13) % 251));

/** A log that keeps what it is given. */
function recordingLog() {
  const lines: Array<{ level: 'debug' | 'error'; obj: object; msg: string }> = [];
  return {
    lines,
    debug: (obj: object, msg: string) => { lines.push({ level: 'debug', obj, msg }); },
    error: (obj: object, msg: string) => { lines.push({ level: 'error', obj, msg }); },
  };
}

async function failure(p: Promise<unknown>): Promise<FetchError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(FetchError);
  return e as FetchError;
}

beforeAll(async () => {
  srv = await startImageServer({ host: '127.0.0.9' });
  trap = await startTrap({ host: '127.0.0.1' });
  settings = {
    allowlist: [srv.cidr],
    connectTimeoutMs: 1_000,
    timeoutMs: 2_000,
    retries: 2,
    retryBaseMs: 5,
    maxBytes: 100_000,
    concurrency: 8,
    perHost: 2,
    logRefusals: true,
  };
  srv.serve('/a.bin', PAYLOAD, 'image/jpeg', { etag: '"v1"', 'last-modified': 'Tue, 01 Dec 2026 10:00:00 GMT' });
  srv.redirect('/moved', '/a.bin');
  srv.set('/conditional', {
    kind: 'handler',
    fn: (req, res) => {
      if (req.headers['if-none-match'] === '"v1"') return void res.writeHead(304).end();
      res.writeHead(200, { 'content-type': 'image/jpeg', etag: '"v1"' }).end(PAYLOAD);
    },
  });
});

afterAll(async () => {
  await srv?.close();
  await trap?.close();
});

describe('DownloadThread', () => {
  it('hands back the body moved into a buffer of its own, its SHA-256, validators and the last hop', async () => {
    const downloads = new DownloadThread(settings, recordingLog());
    try {
      const r = (await downloads.download(srv.url('/moved'), null)) as FetchedImage;
      expect(Buffer.from(r.bytes).equals(Buffer.from(PAYLOAD))).toBe(true);
      expect([r.bytes.byteOffset, r.bytes.byteLength]).toEqual([0, r.bytes.buffer.byteLength]);
      expect(r.sha256).toBe(createHash('sha256').update(PAYLOAD).digest('hex'));
      expect(r).toMatchObject({ status: 200, finalUrl: srv.url('/a.bin'), contentType: 'image/jpeg', etag: '"v1"', lastModified: 'Tue, 01 Dec 2026 10:00:00 GMT' });
      expect(downloads.pending).toBe(0);
    } finally {
      await downloads.close();
    }
  });

  it('asks whether the image changed when given validators, and says so on a 304', async () => {
    const downloads = new DownloadThread(settings, recordingLog());
    try {
      expect(await downloads.download(srv.url('/conditional'), { etag: '"v1"', lastModified: null })).toEqual({ notModified: true, finalUrl: srv.url('/conditional') });
      const changed = await downloads.download(srv.url('/conditional'), { etag: '"v0"', lastModified: null });
      expect('sha256' in changed && changed.bytes.length).toBe(PAYLOAD.length);
    } finally {
      await downloads.close();
    }
  });

  it('rejects with the FetchError the download ended with, every field carried across', async () => {
    const downloads = new DownloadThread(settings, recordingLog());
    try {
      const notFound = await failure(downloads.download(srv.url(BUILTIN.notFound), null));
      expect(notFound).toMatchObject({ reason: 'HTTP 404', kind: 'http', status: 404, retryable: false, attempts: 1 });
      srv.rateLimitThen('/busy', '120', { kind: 'bytes', body: PAYLOAD }, 5);
      const once = new DownloadThread({ ...settings, retries: 0 }, recordingLog());
      const busy = await failure(once.download(srv.url('/busy'), null)).finally(() => once.close());
      expect(busy).toMatchObject({ kind: 'http', status: 429, retryable: true, retryAfterMs: 120_000 });
      expect(await failure(downloads.download(srv.url(BUILTIN.hugeLength), null))).toMatchObject({ kind: 'too-large', retryable: false });
      srv.failThen('/flaky', 1, { kind: 'bytes', body: PAYLOAD });
      const flaky = await downloads.download(srv.url('/flaky'), null);
      expect(['sha256' in flaky, srv.hits('/flaky')]).toEqual([true, 2]);
    } finally {
      await downloads.close();
    }
  });

  it('refuses an address outside the allowlist without connecting, and sends the refusal back to be logged', async () => {
    const log = recordingLog();
    const downloads = new DownloadThread(settings, log);
    try {
      const e = await failure(downloads.download(`http://127.0.0.1:${trap.port}/x.jpg`, null));
      expect([e.kind, e.reason]).toEqual(['blocked', expect.stringContaining('blocked')]);
      expect(trap.connections).toBe(0);
      expect(log.lines).toEqual([expect.objectContaining({ level: 'debug', obj: expect.objectContaining({ address: '127.0.0.1' }) })]);
    } finally {
      await downloads.close();
    }
  });

  it('holds the per-host limit for every download it runs', async () => {
    let open = 0;
    let most = 0;
    srv.set('/slow', {
      kind: 'handler',
      fn: (_req, res) => {
        most = Math.max(most, ++open);
        setTimeout(() => { open--; res.writeHead(200).end(PAYLOAD); }, 60);
      },
    });
    const downloads = new DownloadThread(settings, recordingLog());
    try {
      const all = await Promise.all(Array.from({ length: 6 }, () => downloads.download(srv.url('/slow'), null)));
      expect(all.every((r) => 'sha256' in r)).toBe(true);
      expect(most).toBe(settings.perHost);
    } finally {
      await downloads.close();
    }
  });

  it('gives up a download at once on abort, with the signal\'s reason, and goes on serving others', async () => {
    const downloads = new DownloadThread(settings, recordingLog());
    try {
      const ctl = new AbortController();
      const hanging = downloads.download(srv.url(BUILTIN.hang), null, ctl.signal);
      setTimeout(() => ctl.abort(new FetchError('lease lost', 'aborted', false)), 100);
      const started = Date.now();
      expect(await failure(hanging)).toMatchObject({ reason: 'lease lost' });
      expect(Date.now() - started).toBeLessThan(1_500); // not the 2 s attempt timeout
      expect(downloads.pending).toBe(0);
      expect('sha256' in (await downloads.download(srv.url('/a.bin'), null))).toBe(true);
    } finally {
      await downloads.close();
    }
  });

  it('fails what a dead thread held with a clear error, and starts a new thread for the next download', async () => {
    const crashing = join(tempDir('icp-download-thread-'), 'crash.mjs');
    writeFileSync(crashing, "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => { throw new Error('boom'); });\n");
    const log = recordingLog();
    const downloads = new DownloadThread(settings, log, crashing);
    try {
      for (let i = 0; i < 2; i++) {
        expect(await failure(downloads.download(srv.url('/a.bin'), null))).toMatchObject({ reason: 'the download thread stopped' });
      }
      expect(log.lines.filter((l) => l.level === 'error')).toHaveLength(2); // one per thread
      expect(downloads.pending).toBe(0);
    } finally {
      await downloads.close();
    }
  });

  it('fails the downloads in flight when closed', async () => {
    const downloads = new DownloadThread(settings, recordingLog());
    const hanging = failure(downloads.download(srv.url(BUILTIN.hang), null));
    await new Promise((r) => setTimeout(r, 50));
    await downloads.close();
    expect(await hanging).toMatchObject({ kind: 'aborted', reason: 'the service is stopping' });
  });
});

describe('collectGarbage, which the download thread runs every 4 MiB it downloads', () => {
  /** the kinds of collection (perf_hooks constants) that `run` caused */
  async function collectionsDuring(run: () => void): Promise<number[]> {
    const kinds: number[] = [];
    const watch = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) kinds.push((e as PerformanceEntry & { detail: { kind: number } }).detail.kind);
    });
    watch.observe({ entryTypes: ['gc'] });
    run();
    await new Promise((r) => setTimeout(r, 50)); // the entries are delivered asynchronously
    watch.disconnect();
    return kinds;
  }

  it('collects the young generation alone when asked, and the whole heap by default', async () => {
    const young = await collectionsDuring(() => collectGarbage('young'));
    expect([young.includes(perf.NODE_PERFORMANCE_GC_MINOR), young.includes(perf.NODE_PERFORMANCE_GC_MAJOR)]).toEqual([true, false]);
    expect(await collectionsDuring(() => collectGarbage())).toContain(perf.NODE_PERFORMANCE_GC_MAJOR);
  });
});
