// CORS in a real browser (see helpers/browser.ts): a page on an origin listed in CORS_ORIGINS
// uploads a CSV with its API key (a preflighted request) and follows it; a page on an origin
// that is not listed cannot.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserUnavailable, openBrowser, type BrowserSession } from './helpers/browser.js';
import { freePort, startTestService, type TestService } from './helpers/service.js';

const KEY = 'cors-browser-test-key';

/** What the page does: upload, then read the status, as a browser app of this API would. */
async function useApi(args: { api: string; key: string }) {
  const form = new FormData();
  const csv = 'S. No.,Product Name,Input Image Urls\n1,SKU1,http://127.0.0.1:9/a.jpg\n';
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'products.csv');
  try {
    const up = await fetch(`${args.api}/api/v1/upload`, { method: 'POST', body: form, headers: { 'X-API-Key': args.key, 'Idempotency-Key': 'browser-1' } });
    const accepted = await up.json();
    const status = await fetch(`${args.api}/api/v1/status/${accepted.request_id}`, { headers: { Authorization: `Bearer ${args.key}` } });
    return { upload: up.status, requestIdHeader: up.headers.get('X-Request-Id'), accepted, status: status.status, body: await status.json() };
  } catch (err) {
    return { error: String(err) };
  }
}

describe.skipIf(browserUnavailable !== null)('CORS in a browser', () => {
  let svc: TestService;
  let pages: Server;
  let pagePort: number;
  let browser: BrowserSession;
  beforeAll(async () => {
    pagePort = await freePort();
    pages = createServer((_, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>client app</title>'));
    await new Promise<void>((resolve) => pages.listen(pagePort, '127.0.0.1', resolve));
    svc = await startTestService({ ROLE: 'api', API_KEY: KEY, CORS_ORIGINS: `http://127.0.0.1:${pagePort}` });
    browser = await openBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
    await new Promise((resolve) => pages?.close(resolve));
  });

  it('lets a page on a listed origin upload with its key and follow the request', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${pagePort}/`);
    const result = await page.evaluate(useApi, { api: svc.base, key: KEY });
    expect(result).toMatchObject({ upload: 202, accepted: { status: 'received', products: 1 }, status: 200, body: { progress: { total: 1 } } });
    expect((result as { requestIdHeader: string }).requestIdHeader).toBeTruthy(); // exposed to the page
    expect(browser.aborted).toEqual([]);
  });

  it('keeps a page on another origin out', async () => {
    const page = await browser.newPage();
    await page.goto(`http://localhost:${pagePort}/`); // same server, but a different origin
    const result = await page.evaluate(useApi, { api: svc.base, key: KEY });
    expect(result).toEqual({ error: expect.stringMatching(/TypeError: Failed to fetch/) });
  });
});
