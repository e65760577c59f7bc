// The dashboard's files over HTTP (its behaviour in a browser: dashboard.browser.test.ts): the
// page at / from the build, under a CSP that allows this service only and nothing inline, and
// its assets under hashed names, cached for good.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './helpers/service.js';

describe('GET / (the dashboard)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ ROLE: 'api', API_KEY: 'dashboard-test-key' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('serves the page without a key, revalidated each time, under a self-only CSP', async () => {
    const res = await fetch(`${svc.base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    const html = await res.text();
    // Nothing from elsewhere (no CDN, no font): every reference is relative to the page.
    const refs = [...html.matchAll(/(?:src|href|action)="([^"]*)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(3);
    expect(refs.filter((r) => /^([a-z]+:|\/)/i.test(r))).toEqual([]);
    expect(html).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=/i); // nothing inline
    expect(html).toMatch(/<input id="file" name="file" type="file"/);
    expect(html).toMatch(/<input id="key-input" name="key" type="password"/);
    const etag = res.headers.get('etag')!;
    expect((await fetch(`${svc.base}/`, { headers: { 'if-none-match': etag } })).status).toBe(304);
  });

  it('serves every asset the page names, relative to it, under a content hash and cached for a year', async () => {
    const html = await (await fetch(`${svc.base}/`)).text();
    const refs = [...html.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(refs.map((r) => r.replace(/-[A-Z0-9]{8}\./, '-HASH.')).sort()).toEqual(['assets/dashboard-HASH.css', 'assets/dashboard-HASH.js', 'assets/icon-HASH.svg']);
    const types: Record<string, RegExp> = { js: /^text\/javascript/, css: /^text\/css/, svg: /^image\/svg\+xml/ };
    for (const ref of refs) {
      const res = await fetch(`${svc.base}/${ref}`);
      expect(res.status, ref).toBe(200);
      expect(res.headers.get('content-type'), ref).toMatch(types[ref.split('.').pop()!]!);
      expect(res.headers.get('cache-control'), ref).toBe('public, max-age=31536000, immutable');
      expect((await res.text()).length, ref).toBeGreaterThan(100);
    }
    const missing = await fetch(`${svc.base}/assets/dashboard-00000000.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ detail: 'No such file' });
  });
});
