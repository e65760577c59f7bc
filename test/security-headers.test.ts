// The security baseline (src/http/security-headers.ts): every response gets nosniff; HTML also
// no-referrer and frame-ancestors 'none', a page's own CSP is kept, and other responses are left alone.
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { securityHeaders } from '../src/http/security-headers.js';

const app = new Hono();
app.use('*', securityHeaders());
app.get('/plain', (c) => c.html('<p>hi</p>'));
app.get('/own-csp', (c) => c.html('<p>hi</p>', 200, { 'content-security-policy': "default-src 'self'" }));
app.get('/own-frame', (c) => c.html('<p>hi</p>', 200, { 'content-security-policy': "default-src 'self'; frame-ancestors https://a.example" }));
app.get('/raw', () => new Response('<p>hi</p>', { headers: { 'content-type': 'text/html; charset=utf-8' } }));
app.get('/json', (c) => c.json({ ok: true }));

describe('HTML security headers', () => {
  it('sets nosniff, no-referrer and frame-ancestors on HTML, also on a Response built by hand', async () => {
    for (const path of ['/plain', '/raw']) {
      const res = await app.request(path);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(res.headers.get('content-security-policy'), path).toBe("frame-ancestors 'none'");
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      expect(await res.text(), path).toBe('<p>hi</p>');
    }
  });

  it("keeps a page's own CSP, adding frame-ancestors only when it has none", async () => {
    expect((await app.request('/own-csp')).headers.get('content-security-policy')).toBe("default-src 'self'; frame-ancestors 'none'");
    expect((await app.request('/own-frame')).headers.get('content-security-policy')).toBe("default-src 'self'; frame-ancestors https://a.example");
  });

  it('gives other responses nosniff only', async () => {
    const res = await app.request('/json');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBeNull();
    expect(res.headers.get('content-security-policy')).toBeNull();
  });
});
