// URLs in logs carry neither credentials nor query strings: the helper, the logger's URL fields,
// and the real service's log lines for a failing image.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { redactUrl } from '../src/net/index.js';
import { spawnService, tempDir, upload, waitForStatus } from './helpers/service.js';
import { until } from './helpers/poll.js';

describe('redactUrl', () => {
  it.each([
    ['https://user:pw@cdn.test:8443/a/b.jpg?X-Amz-Signature=abc&token=t#frag', 'https://cdn.test:8443/a/b.jpg'],
    ['http://cdn.test/a.jpg', 'http://cdn.test/a.jpg'],
    ['http://only-user@cdn.test/?', 'http://cdn.test/'],
    ['http://[::1]:8080/x?y=1', 'http://[::1]:8080/x'],
    ['HTTP://CDN.test/A.jpg?Q', 'http://cdn.test/A.jpg'],
    // not parseable as a URL: cut by hand
    ['cdn.test/a.jpg?token=1', 'cdn.test/a.jpg'],
    ['http://user:p@ss@bad host/x?sig=2#f', 'http://bad host/x'],
    ['/relative/path#section', '/relative/path'],
  ])('%s -> %s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });
});

describe('the logger', () => {
  it('redacts URL fields even when a call site forgot to', () => {
    const lines: string[] = [];
    const log = createLogger({ LOG_LEVEL: 'debug' }, { write: (s: string) => void lines.push(s) });
    log.info({ url: 'https://u:pw-1@cdn.test/a.jpg?token=tok-1', webhook_url: 'https://hooks.test/in?key=tok-2' }, 'one');
    log.child({ url: 'https://u:pw-3@cdn.test/b.jpg?token=tok-3' }).warn({ finalUrl: 'https://cdn.test/c.jpg?sig=tok-4' }, 'two');
    const out = lines.join('');
    expect(out).not.toMatch(/tok-\d|pw-\d/);
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toMatchObject([
      { url: 'https://cdn.test/a.jpg', webhook_url: 'https://hooks.test/in', msg: 'one' },
      { url: 'https://cdn.test/b.jpg', finalUrl: 'https://cdn.test/c.jpg', msg: 'two' },
    ]);
  });
});

describe('the service log for a failing image', () => {
  it('names the image without its credentials or query, and the refused address only at debug level', async () => {
    const svc = await spawnService({ LOG_LEVEL: 'debug' }, tempDir());
    try {
      const url = 'http://someone:hunter2@127.0.0.1:9/a.jpg?sig=topsecret';
      const res = await upload(svc.base, `S. No.,Product Name,Input Image Urls\n1,SKU1,${url}\n`);
      expect(res.status).toBe(202);
      const status = await waitForStatus(svc.base, res.body.request_id);
      expect(status.products[0].errors[0]).toBe('blocked: a non-public address (to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)');
      // The line is written once the outcome is recorded, so it may trail the status by a moment.
      const logLines = () => svc.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
      await until(() => logLines().some((l) => l.msg === 'image failed'), 'the "image failed" log line', { timeoutMs: 2_000 });
      const lines = logLines();
      const failed = lines.find((l) => l.msg === 'image failed');
      expect(failed).toMatchObject({ url: 'http://127.0.0.1:9/a.jpg', error: 'blocked: a non-public address (to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)' });
      const refused = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('outbound request refused'));
      expect(refused).toMatchObject({ level: 20, address: '127.0.0.1' });
      expect(svc.output()).not.toMatch(/hunter2|topsecret/);
    } finally {
      await svc.stop();
    }
  });
});
