// Guarded outbound HTTP, live over loopback only.
//
// The image server runs on 127.0.0.9 and is allowlisted as 127.0.0.9/32 (Linux routes all of
// 127/8 to lo). The SSRF "traps" listen on 127.0.0.1 (and ::1 on the same port when IPv6 is
// available) and must never see a connection.
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backoffDelay,
  downloadImage,
  FetchError,
  HostLimiter,
  LimiterAbortedError,
  parseAllowlist,
  parseRetryAfter,
  postJson,
  preflightUrl,
  type DownloadOptions,
  type Resolver,
  type RetryInfo,
} from '../src/net/index.js';
import { refuseConnected } from '../src/net/address-guard.js';
import { BUILTIN, startImageServer, startTrap, type ImageServer, type Trap } from './helpers/image-server.js';
import { until } from './helpers/poll.js';

let srv: ImageServer;
let trap4: Trap;
let trap6: Trap | undefined;
let opts: DownloadOptions;
const PAYLOAD = new Uint8Array(Array.from({ length: 5000 }, (_, i) => (i * 7) % 256));

async function failure(p: Promise<unknown>): Promise<FetchError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FetchError);
    return e as FetchError;
  }
  throw new Error('expected the request to fail');
}

beforeAll(async () => {
  srv = await startImageServer({ host: '127.0.0.9' });
  trap4 = await startTrap({ host: '127.0.0.1' });
  try {
    trap6 = await startTrap({ host: '::1', port: trap4.port });
  } catch {
    trap6 = undefined; // no IPv6 loopback here: the [::1] case still must be refused
  }
  opts = {
    allowlist: parseAllowlist([srv.cidr]),
    connectTimeoutMs: 1_000,
    timeoutMs: 2_000,
    retries: 2,
    retryBaseMs: 5,
  };
  srv.serve('/a.bin', PAYLOAD, 'image/jpeg');
});

afterAll(async () => {
  await srv?.close();
  await trap4?.close();
  await trap6?.close();
});

describe('downloadImage: happy path', () => {
  it('downloads bytes from an allowlisted loopback server', async () => {
    const r = await downloadImage(srv.url('/a.bin'), opts);
    expect(r.status).toBe(200);
    expect(r.finalUrl).toBe(srv.url('/a.bin'));
    expect(Buffer.from(r.bytes).equals(Buffer.from(PAYLOAD))).toBe(true);
    expect(r.bytes.byteLength).toBe(r.bytes.buffer.byteLength); // owns its buffer (transferable)
    const last = srv.requests.at(-1)!;
    expect(last.headers['accept-encoding']).toBe('identity');
    expect(last.headers.host).toBe(`127.0.0.9:${srv.port}`);
  });

  it('resolves host names through the guarded lookup (every address checked)', async () => {
    const resolve: Resolver = async (h) => (h === 'images.test' ? [{ address: '127.0.0.9', family: 4 }] : []);
    const r = await downloadImage(`http://images.test:${srv.port}/a.bin`, { ...opts, resolve });
    expect(r.bytes.length).toBe(PAYLOAD.length);
    expect(srv.requests.at(-1)!.headers.host).toBe(`images.test:${srv.port}`);
  });

  it('follows a relative redirect and reports the final URL', async () => {
    srv.redirect('/moved', '/a.bin', 301);
    const r = await downloadImage(srv.url('/moved'), opts);
    expect(r.finalUrl).toBe(srv.url('/a.bin'));
    expect(r.bytes.length).toBe(PAYLOAD.length);
  });
});

describe('SSRF guard (live, loopback traps must see zero connections)', () => {
  it('WHATWG URL normalises odd IPv4 spellings before the guard sees them', () => {
    expect(new URL('http://2130706433/').hostname).toBe('127.0.0.1');
    expect(new URL('http://0x7f.1/').hostname).toBe('127.0.0.1');
    expect(new URL('http://127.1/').hostname).toBe('127.0.0.1');
    expect(new URL('http://[::ffff:127.0.0.1]/').hostname).toBe('[::ffff:7f00:1]');
  });

  const targets = (p: number) => [
    `http://127.0.0.1:${p}/`,
    `http://localhost:${p}/`,
    `http://LOCALHOST.:${p}/x.jpg`,
    `http://0.0.0.0:${p}/`,
    `http://0:${p}/`,
    `http://[::1]:${p}/`,
    `http://[::]:${p}/`,
    `http://[::ffff:127.0.0.1]:${p}/`,
    `http://2130706433:${p}/`,
    `http://0x7f.1:${p}/`,
    `http://0177.0.0.1:${p}/`,
    `http://127.1:${p}/`,
    `https://127.0.0.1:${p}/`,
  ];

  it('refuses every loopback spelling with a "blocked" reason, without retrying', async () => {
    for (const url of targets(trap4.port)) {
      const retries: RetryInfo[] = [];
      const err = await failure(downloadImage(url, { ...opts, onRetry: (i) => retries.push(i) }));
      expect(err.reason, url).toMatch(/^blocked: (a non-public address \(to fetch from private|a loopback host name \(use its address)/);
      expect(err.kind).toBe('blocked');
      expect(err.retryable).toBe(false);
      expect(retries).toHaveLength(0);
    }
  });

  it('refuses a redirect from the allowed server to a loopback port', async () => {
    for (const target of [`http://127.0.0.1:${trap4.port}/`, `http://[::1]:${trap4.port}/`, `http://localhost:${trap4.port}/`]) {
      const before = srv.hits(BUILTIN.redirect);
      const err = await failure(downloadImage(srv.redirectUrl(target), opts));
      expect(err.reason).toMatch(/^blocked: /);
      expect(srv.hits(BUILTIN.redirect)).toBe(before + 1); // the allowed hop happened, once
    }
  });

  it('refuses a name when ANY resolved address is forbidden (DNS rebinding / mixed answers)', async () => {
    const resolve: Resolver = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ];
    const err = await failure(downloadImage(`http://rebind.test:${trap4.port}/`, { ...opts, resolve }));
    expect(err.reason).toBe('blocked: resolves to a non-public address (to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)');
    const mapped: Resolver = async () => [{ address: '::ffff:127.0.0.1', family: 6 }];
    expect((await failure(downloadImage(`http://m.test:${trap4.port}/`, { ...opts, resolve: mapped }))).kind).toBe('blocked');
  });

  it('the allowlist exempts only the listed address', async () => {
    const err = await failure(downloadImage(`http://127.0.0.1:${trap4.port}/`, { ...opts, allowlist: ['127.0.0.9/32'] }));
    expect(err.reason).toBe('blocked: a non-public address (to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)');
    // and without any allowlist even the image server is refused
    expect((await failure(downloadImage(srv.url('/a.bin'), { ...opts, allowlist: [] }))).kind).toBe('blocked');
  });

  it('postJson and preflightUrl apply the same guard', async () => {
    for (const url of targets(trap4.port)) {
      const err = await failure(postJson(url, '{}', {}, { ...opts, retries: 2 }));
      expect(err.reason, url).toMatch(/^blocked: /);
      const pre = await failure(preflightUrl(url, { allowlist: opts.allowlist }));
      expect(pre.reason, url).toMatch(/^blocked: /);
    }
    await expect(preflightUrl(srv.url('/hook'), { allowlist: opts.allowlist })).resolves.toBeUndefined();
  });

  it('a refusal says what, not where: the address goes only to the debug log', async () => {
    const logged: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const log = { debug: (obj: object, msg?: string) => void logged.push({ obj: obj as Record<string, unknown>, msg: msg ?? '' }) };
    const internal: Resolver = async () => [{ address: '10.20.30.40', family: 4 }];
    const cases: Array<[string, () => Promise<unknown>, string]> = [
      ['download', () => downloadImage('http://intranet.test/x.jpg', { ...opts, resolve: internal, log }), '10.20.30.40'],
      ['post', () => postJson('http://intranet.test/hook', '{}', {}, { ...opts, resolve: internal, log }), '10.20.30.40'],
      ['preflight', () => preflightUrl('http://intranet.test/hook', { allowlist: opts.allowlist, resolve: internal, log }), '10.20.30.40'],
      ['literal', () => downloadImage('http://[fd00::abcd]/x.jpg', { ...opts, log }), 'fd00::abcd'],
      ['redirect', () => downloadImage(srv.redirectUrl(`http://169.254.169.254:${trap4.port}/latest/`), { ...opts, log }), '169.254.169.254'],
    ];
    for (const [name, run, address] of cases) {
      const before = logged.length;
      const err = await failure(run());
      expect(err.reason, name).toMatch(/^blocked: (resolves to )?a non-public address \(to fetch from private or local hosts, set FETCH_ALLOWLIST, e\.g\. 127\.0\.0\.0\/8\)$/);
      expect(`${err.message} ${String(err.cause ?? '')}`, name).not.toContain(address);
      const entry = logged.slice(before).find((l) => l.obj.address === address);
      expect(entry, name).toBeDefined();
      expect(entry!.msg, name).toContain(address);
    }
  });

  it('the connected-address check refuses without naming the address', () => {
    const allow = parseAllowlist([srv.cidr]);
    expect(refuseConnected('images.test', '127.0.0.9', allow)).toBeUndefined();
    expect(refuseConnected('images.test', '::ffff:127.0.0.1', allow)?.reason).toBe('blocked: connected to a non-public address (to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)');
    expect(refuseConnected('images.test', undefined, allow)?.kind).toBe('blocked');
  });

  it('the traps saw zero connections', async () => {
    // The clock for "none arrived": a connection of our own, made after every guarded attempt
    // above. Loopback accepts in order, so once the trap has counted ours, any stray one made
    // earlier is counted too; ours must be the only one.
    for (const trap of [trap4, trap6]) {
      if (!trap) continue;
      const probe = connect(trap.port, trap.host);
      probe.on('error', () => {}); // the trap hangs up at once
      await until(() => trap.connections >= 1, `the probe connection to ${trap.host}`);
      probe.destroy();
      expect(trap.connections, trap.host).toBe(1);
    }
  });
});

describe('downloadImage: misbehaving servers', () => {
  it('404 fails at once, no retry', async () => {
    const err = await failure(downloadImage(srv.url(BUILTIN.notFound), opts));
    expect(err.reason).toBe('HTTP 404');
    expect(err.status).toBe(404);
    expect(err.retryable).toBe(false);
    expect(srv.hits(BUILTIN.notFound)).toBe(1);
  });

  it('500 then 200 succeeds after retries', async () => {
    srv.failThen('/flaky.bin', 2, { kind: 'bytes', body: PAYLOAD, type: 'image/png' });
    const r = await downloadImage(srv.url('/flaky.bin'), opts);
    expect(r.bytes.length).toBe(PAYLOAD.length);
    expect(srv.hits('/flaky.bin')).toBe(3);
  });

  it('persistent 503 gives up after retries with a clear reason', async () => {
    srv.failThen('/down.bin', 100, { kind: 'bytes', body: 'x' }, 503);
    const err = await failure(downloadImage(srv.url('/down.bin'), opts));
    expect(err.reason).toBe('HTTP 503 (after 3 attempts)');
    expect(err.attempts).toBe(3);
    expect(srv.hits('/down.bin')).toBe(3);
  });

  it('429 with Retry-After is honoured', async () => {
    srv.rateLimitThen('/rl.bin', '1', { kind: 'bytes', body: PAYLOAD });
    const waits: RetryInfo[] = [];
    const r = await downloadImage(srv.url('/rl.bin'), { ...opts, maxRetryDelayMs: 5_000, onRetry: (i) => waits.push(i) });
    expect(r.bytes.length).toBe(PAYLOAD.length);
    expect(waits).toHaveLength(1);
    expect(waits[0]!.delayMs).toBe(1_000);
    expect(waits[0]!.error.reason).toBe('HTTP 429');
    expect(srv.hits('/rl.bin')).toBe(2);
  });

  it('a huge Retry-After is capped', async () => {
    srv.rateLimitThen('/rl-long.bin', '3600', { kind: 'bytes', body: PAYLOAD });
    const waits: RetryInfo[] = [];
    await downloadImage(srv.url('/rl-long.bin'), { ...opts, maxRetryDelayMs: 20, onRetry: (i) => waits.push(i) });
    expect(waits[0]!.delayMs).toBe(20);
  });

  it('an endless body is stopped at the byte cap, not retried', async () => {
    const err = await failure(downloadImage(srv.url(BUILTIN.endless), { ...opts, maxBytes: 100_000 }));
    expect(err.reason).toBe('too large: more than 100000 bytes');
    expect(err.kind).toBe('too-large');
    expect(srv.hits(BUILTIN.endless)).toBe(1);
  });

  it('a too-large Content-Length is refused before the body', async () => {
    const err = await failure(downloadImage(srv.url(BUILTIN.hugeLength), { ...opts, timeoutMs: 10_000 }));
    expect(err.reason).toBe(`too large: more than ${25 * 1024 * 1024} bytes`);
  });

  it('a server that never answers is stopped by the total timeout (and retried)', async () => {
    const err = await failure(downloadImage(srv.url(BUILTIN.hang), { ...opts, timeoutMs: 200, retries: 1 }));
    expect(err.reason).toBe('timed out after 200 ms (after 2 attempts)');
    expect(err.kind).toBe('timeout');
    expect(srv.hits(BUILTIN.hang)).toBe(2);
  });

  it('a slow-drip body is stopped by the total timeout', async () => {
    const err = await failure(downloadImage(srv.url(BUILTIN.slowDrip), { ...opts, timeoutMs: 200, retries: 0 }));
    expect(err.reason).toBe('timed out after 200 ms');
  });

  it('a redirect loop fails after 5 redirects', async () => {
    const err = await failure(downloadImage(srv.url(BUILTIN.loop), opts));
    expect(err.reason).toBe('too many redirects');
    expect(err.retryable).toBe(false);
    expect(srv.hits('/_/loop/a') + srv.hits('/_/loop/b')).toBe(6);
  });

  it('a redirect to a non-http scheme fails', async () => {
    srv.redirect('/to-ftp', 'ftp://example.com/x.jpg');
    const err = await failure(downloadImage(srv.url('/to-ftp'), opts));
    expect(err.reason).toBe('redirect to a non-http(s) URL (ftp:)');
  });

  it('a truncated body is a retryable connection error', async () => {
    const err = await failure(downloadImage(srv.url(BUILTIN.truncated), { ...opts, retries: 1 }));
    expect(err.kind).toBe('network');
    expect(err.reason).toMatch(/closed before the body was complete|connection reset/);
    expect(srv.hits(BUILTIN.truncated)).toBe(2);
  });

  it('HTML served as image/jpeg still downloads (the type is decided later by magic bytes)', async () => {
    const r = await downloadImage(srv.url(BUILTIN.htmlAsJpeg), opts);
    expect(Buffer.from(r.bytes).toString()).toContain('<html>');
    expect(r.contentType).toBe('image/jpeg');
  });

  it('a compressed body is refused, never decompressed', async () => {
    srv.serve('/gz.bin', new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), 'image/jpeg', { 'content-encoding': 'gzip' });
    const err = await failure(downloadImage(srv.url('/gz.bin'), opts));
    expect(err.reason).toBe('unsupported content-encoding: gzip');
  });

  it('garbage HTTP and broken chunked encoding are errors, not crashes', async () => {
    srv.set('/garbage', { kind: 'handler', fn: (_q, res) => res.socket?.end('HTTP/1.1 abc\r\n\r\n') });
    srv.set('/bad-chunks', {
      kind: 'handler',
      fn: (_q, res) => res.socket?.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nhello\r\n'),
    });
    srv.set('/bad-header', {
      kind: 'handler',
      fn: (_q, res) => res.socket?.end('HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nhello'),
    });
    for (const p of ['/garbage', '/bad-chunks', '/bad-header']) {
      const err = await failure(downloadImage(srv.url(p), { ...opts, retries: 0 }));
      expect(['bad-response', 'network'], `${p}: ${err.reason}`).toContain(err.kind);
    }
  });

  it('the connect timeout covers a DNS lookup that never returns', async () => {
    const resolve: Resolver = () => new Promise(() => {});
    const err = await failure(downloadImage('http://stuck.test/x.jpg', { ...opts, resolve, connectTimeoutMs: 100, retries: 0 }));
    expect(err.reason).toBe('connect timed out after 100 ms');
    expect(err.retryable).toBe(true);
  });

  it('works over IPv6 loopback when ::1/128 is allowlisted', async (ctx) => {
    let v6: ImageServer;
    try {
      v6 = await startImageServer({ host: '::1' });
    } catch {
      ctx.skip();
      return;
    }
    try {
      v6.serve('/v6.bin', PAYLOAD);
      const r = await downloadImage(v6.url('/v6.bin'), { ...opts, allowlist: [v6.cidr] });
      expect(r.bytes.length).toBe(PAYLOAD.length);
      expect((await failure(downloadImage(v6.url('/v6.bin'), opts))).reason).toBe('blocked: a non-public address (to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)');
    } finally {
      await v6.close();
    }
  });

  it('a connection refused is retryable', async () => {
    const closed = await startImageServer({ host: '127.0.0.9' });
    const url = closed.url('/x');
    await closed.close();
    const err = await failure(downloadImage(url, { ...opts, retries: 1 }));
    expect(err.reason).toBe('connection refused (after 2 attempts)');
  });

  it('an AbortSignal cancels a request in flight', async () => {
    const ctl = new AbortController();
    const hits = srv.hits(BUILTIN.hang);
    const p = downloadImage(srv.url(BUILTIN.hang), { ...opts, timeoutMs: 10_000, signal: ctl.signal });
    await until(() => srv.hits(BUILTIN.hang) > hits, 'the request to reach the server'); // in flight, then abort
    ctl.abort();
    const err = await failure(p);
    expect(err.reason).toBe('aborted');
    expect(err.retryable).toBe(false);
  });

  it('refuses URLs that are not absolute http(s)', async () => {
    for (const u of ['ftp://example.com/a.jpg', 'not a url', '/relative.jpg', 'file:///etc/passwd', 'javascript:alert(1)']) {
      const err = await failure(downloadImage(u, opts));
      expect(err.kind, u).toBe('invalid-url');
    }
  });
});

describe('postJson (webhook delivery)', () => {
  it('posts the body and returns the status', async () => {
    srv.set('/hook', { kind: 'bytes', status: 204, body: '' });
    const body = JSON.stringify({ type: 'processing.completed' });
    const r = await postJson(srv.url('/hook'), body, { 'Webhook-Id': 'msg_1' }, opts);
    expect(r.status).toBe(204);
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
    const rec = srv.requests.at(-1)!;
    expect(rec.method).toBe('POST');
    expect(rec.body.toString()).toBe(body);
    expect(rec.headers['content-type']).toBe('application/json');
    expect(rec.headers['webhook-id']).toBe('msg_1');
  });

  it('returns non-2xx statuses instead of throwing', async () => {
    srv.set('/hook-500', { kind: 'bytes', status: 500, body: 'no' });
    expect((await postJson(srv.url('/hook-500'), '{}', {}, opts)).status).toBe(500);
    expect(srv.hits('/hook-500')).toBe(1);
  });

  it('does not follow redirects', async () => {
    srv.set('/hook-target', { kind: 'bytes', status: 200, body: 'ok' });
    srv.redirect('/hook-moved', '/hook-target', 307);
    const r = await postJson(srv.url('/hook-moved'), '{}', {}, opts);
    expect(r.status).toBe(307);
    expect(srv.hits('/hook-target')).toBe(0);
  });

  it('times out on a receiver that never answers', async () => {
    const err = await failure(postJson(srv.url(BUILTIN.hang), '{}', {}, { ...opts, retries: 0, timeoutMs: 200 }));
    expect(err.reason).toBe('timed out after 200 ms');
  });
});

describe('retry helpers', () => {
  it('parseRetryAfter reads seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('backoffDelay grows exponentially with jitter and is capped', () => {
    for (let i = 0; i < 50; i++) {
      const d1 = backoffDelay(1, 100, 10_000);
      const d3 = backoffDelay(3, 100, 10_000);
      expect(d1).toBeGreaterThanOrEqual(50);
      expect(d1).toBeLessThanOrEqual(100);
      expect(d3).toBeGreaterThanOrEqual(200);
      expect(d3).toBeLessThanOrEqual(400);
      expect(backoffDelay(30, 100, 1_000)).toBeLessThanOrEqual(1_000);
      expect(backoffDelay(1, 100, 10_000, 5_000)).toBe(5_000);
    }
  });
});

describe('HostLimiter', () => {
  const gate = () => {
    let open!: () => void;
    const p = new Promise<void>((r) => (open = r));
    return { p, open };
  };

  it('enforces the global and the per-host limits, FIFO, and forgets idle hosts', async () => {
    const lim = new HostLimiter({ global: 3, perHost: 2 });
    const started: string[] = [];
    const gates = new Map<string, ReturnType<typeof gate>>();
    const task = (host: string, id: string) => {
      const g = gate();
      gates.set(id, g);
      return lim.run(host, async () => {
        started.push(id);
        await g.p;
        return id;
      });
    };
    const all = [task('a', 'a1'), task('a', 'a2'), task('a', 'a3'), task('b', 'b1'), task('c', 'c1'), task('b', 'b2')];
    await until(() => started.length === 3, 'the first three to start');
    expect(started).toEqual(['a1', 'a2', 'b1']); // a3 waits for host a; c1 waits for a global slot
    expect(lim.active).toBe(3);
    expect(lim.pending).toBe(3);
    gates.get('b1')!.open();
    await until(() => started.length === 4, 'a waiter to take the freed slot');
    expect(started).toEqual(['a1', 'a2', 'b1', 'c1']); // first eligible waiter, in order
    gates.get('a1')!.open();
    await until(() => started.length === 5, 'a waiter to take the freed slot');
    expect(started.at(-1)).toBe('a3');
    for (const g of gates.values()) g.open();
    await until(() => started.length === 6, 'the last one to start');
    for (const g of gates.values()) g.open();
    expect(await Promise.all(all)).toEqual(['a1', 'a2', 'a3', 'b1', 'c1', 'b2']);
    expect(lim.active).toBe(0);
    expect(lim.trackedHosts).toBe(0);
  });

  it('acquire hands out a release that gives the slot back once, however often it is called', async () => {
    const lim = new HostLimiter({ global: 2, perHost: 1 });
    const release = await lim.acquire('10.0.0.1');
    expect(lim.activeFor('10.0.0.1')).toBe(1);
    let granted = false;
    const next = lim.acquire('10.0.0.1').then((r) => {
      granted = true;
      return r;
    });
    await delay(0); // one turn of the event loop: a grant, if the limiter wrongly gave one, would have settled
    expect(granted).toBe(false);
    release();
    release();
    (await next)();
    expect(lim.active).toBe(0);
    expect(lim.trackedHosts).toBe(0);
  });

  it('releases the slot when the task throws, and honours abort while waiting', async () => {
    const lim = new HostLimiter({ global: 1, perHost: 1 });
    await expect(lim.run('x', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(lim.active).toBe(0);
    const g = gate();
    const first = lim.run('x', () => g.p);
    const ctl = new AbortController();
    const second = lim.run('y', async () => 'never', ctl.signal);
    ctl.abort();
    await expect(second).rejects.toBeInstanceOf(LimiterAbortedError);
    expect(lim.pending).toBe(0);
    g.open();
    await first;
    expect(lim.trackedHosts).toBe(0);
  });
});

describe('per-address download limit (DOWNLOAD_PER_HOST, slots taken in the transport)', () => {
  // Two loopback "machines": the shared image server (127.0.0.9) and a second one (127.0.0.10).
  let other: ImageServer;
  let allowBoth: DownloadOptions;
  const deferred = () => {
    let open!: () => void;
    const p = new Promise<void>((r) => (open = r));
    return { p, open };
  };
  /** A path on `server` that answers `body` only once `gate` opens. */
  const held = (server: ImageServer, path: string, gate: Promise<void>, body: string) =>
    server.set(path, { kind: 'handler', fn: (_q, res) => void gate.then(() => res.end(body)) });
  const text = async (p: Promise<{ bytes: Uint8Array }>) => Buffer.from((await p).bytes).toString();

  beforeAll(async () => {
    other = await startImageServer({ host: '127.0.0.10' });
    allowBoth = { ...opts, allowlist: parseAllowlist([srv.cidr, other.cidr]), timeoutMs: 10_000 };
  });
  afterAll(async () => {
    await other?.close();
  });

  it('two names resolving to one address share its budget: the second waits for the first', async () => {
    const limiter = new HostLimiter({ global: 10, perHost: 1 });
    const names: Resolver = async (h) => (h === 'one.test' || h === 'two.test' ? [{ address: '127.0.0.9', family: 4 }] : []);
    const gate = deferred();
    held(srv, '/shared-1', gate.p, 'first');
    srv.serve('/shared-2', 'second');
    const first = downloadImage(`http://one.test:${srv.port}/shared-1`, { ...allowBoth, resolve: names, limiter });
    await until(() => srv.hits('/shared-1') === 1);
    // The second name's attempt would time out in SECOND_TIMEOUT_MS if waiting for the slot used up its clock.
    const SECOND_TIMEOUT_MS = 100;
    const second = downloadImage(`http://two.test:${srv.port}/shared-2`, { ...allowBoth, resolve: names, limiter, timeoutMs: SECOND_TIMEOUT_MS, retries: 0 });
    await until(() => limiter.pending === 1 || srv.hits('/shared-2') > 0);
    expect(srv.hits('/shared-2')).toBe(0);
    expect(limiter.activeFor('127.0.0.9')).toBe(1);
    await delay(SECOND_TIMEOUT_MS * 3); // time is the subject: hold the slot well past the second's timeout
    expect(srv.hits('/shared-2')).toBe(0);
    gate.open();
    expect(await text(first)).toBe('first');
    expect(await text(second)).toBe('second');
    expect(limiter.active).toBe(0);
    expect(limiter.trackedHosts).toBe(0);
  });

  it('names resolving to different addresses do not wait for each other', async () => {
    const limiter = new HostLimiter({ global: 10, perHost: 1 });
    const names: Resolver = async (h) => [{ address: h === 'one.test' ? '127.0.0.9' : '127.0.0.10', family: 4 }];
    const gate = deferred();
    held(srv, '/apart-1', gate.p, 'first');
    other.serve('/apart-2', 'second');
    const first = downloadImage(`http://one.test:${srv.port}/apart-1`, { ...allowBoth, resolve: names, limiter });
    await until(() => srv.hits('/apart-1') === 1);
    // Completes while the first still holds its slot.
    expect(await text(downloadImage(`http://three.test:${other.port}/apart-2`, { ...allowBoth, resolve: names, limiter }))).toBe('second');
    gate.open();
    expect(await text(first)).toBe('first');
  });

  it('a redirect to another address takes that address\'s slot and gives back the first', async () => {
    const limiter = new HostLimiter({ global: 10, perHost: 1 });
    const gate = deferred();
    held(other, '/landing', gate.p, 'landed');
    srv.redirect('/hop', other.url('/landing'));
    const hopping = downloadImage(srv.url('/hop'), { ...allowBoth, limiter });
    await until(() => other.hits('/landing') === 1);
    expect(limiter.activeFor('127.0.0.10')).toBe(1);
    expect(limiter.activeFor('127.0.0.9')).toBe(0);
    // ...so the first address is free for someone else, even with one slot per address.
    expect(Buffer.from((await downloadImage(srv.url('/a.bin'), { ...allowBoth, limiter })).bytes).equals(Buffer.from(PAYLOAD))).toBe(true);
    gate.open();
    expect(await text(hopping)).toBe('landed');
    expect(limiter.active).toBe(0);
  });

  it('an IPv4-mapped IPv6 answer counts as the IPv4 address', async () => {
    const limiter = new HostLimiter({ global: 10, perHost: 1 });
    const gate = deferred();
    held(srv, '/mapped-1', gate.p, 'first');
    const first = downloadImage(`http://one.test:${srv.port}/mapped-1`, {
      ...allowBoth, limiter, resolve: async () => [{ address: '127.0.0.9', family: 4 }],
    });
    await until(() => srv.hits('/mapped-1') === 1);
    expect(limiter.activeFor('127.0.0.9')).toBe(1);
    const ctl = new AbortController();
    const second = downloadImage(`http://two.test:${srv.port}/a.bin`, {
      ...allowBoth, limiter, signal: ctl.signal, resolve: async () => [{ address: '::ffff:127.0.0.9', family: 6 }],
    });
    await until(() => limiter.pending === 1);
    ctl.abort(); // waiting for 127.0.0.9's slot: the caller's abort ends the wait
    expect((await failure(second)).kind).toBe('aborted');
    expect(limiter.pending).toBe(0);
    gate.open();
    expect(await text(first)).toBe('first');
    expect(limiter.active).toBe(0);
  });
});
