// /docs in a real browser (see helpers/browser.ts): it renders the API reference from files this
// service serves, with every request outside this machine aborted and nothing blocked by its
// Content-Security-Policy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserUnavailable, openBrowser, type BrowserSession } from './helpers/browser.js';
import { startTestService, type TestService } from './helpers/service.js';

describe.skipIf(browserUnavailable !== null)('/docs in a browser', () => {
  let svc: TestService;
  let browser: BrowserSession;
  beforeAll(async () => {
    svc = await startTestService({ ROLE: 'api', API_KEY: 'docs-browser-test-key' });
    browser = await openBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
  });

  it('lists every operation offline, under its CSP, loading only from the service', async () => {
    const page = await browser.newPage();
    const loaded: string[] = [];
    page.on('request', (r) => loaded.push(r.url()));
    const res = await page.goto(`${svc.base}/docs`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toMatch(/script-src 'self'/);

    await page.locator('.opblock-summary-path', { hasText: /^\/api\/v1\/upload$/ }).first().waitFor({ state: 'visible' });
    const shown = new Set(await page.locator('.opblock-summary-path').allInnerTexts());
    const doc = (await (await fetch(`${svc.base}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).length).toBeGreaterThan(10);
    for (const path of Object.keys(doc.paths)) expect(shown, path).toContain(path);

    // Opening an operation draws more of the UI (its icons, the Try-it-out button).
    await page.locator('.opblock-summary', { hasText: '/api/v1/upload' }).first().click();
    await page.getByRole('button', { name: 'Try it out' }).first().waitFor({ state: 'visible' });
    if (process.env.DOCS_SCREENSHOT) await page.screenshot({ path: process.env.DOCS_SCREENSHOT, fullPage: false });

    expect(browser.aborted).toEqual([]);
    expect(browser.cspViolations).toEqual([]);
    expect(loaded.filter((u) => !u.startsWith(`${svc.base}/`))).toEqual([]);
    expect(loaded).toContain(`${svc.base}/docs/assets/swagger-ui-bundle.js`);
  });
});

describe.skipIf(browserUnavailable !== null)('/docs "Try it out" by another name', () => {
  let svc: TestService;
  let browser: BrowserSession;
  beforeAll(async () => {
    // Open mode (no key to enter); PUBLIC_BASE_URL names 127.0.0.1, the page is reached as localhost.
    svc = await startTestService({ ROLE: 'api' });
    browser = await openBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
  });

  it('uploads from the form: optional fields start empty, the request goes to the address in use', async () => {
    const base = svc.base.replace('127.0.0.1', 'localhost');
    const page = await browser.newPage();
    const sent: string[] = [];
    page.on('request', (r) => sent.push(`${r.method()} ${r.url()}`));
    await page.goto(`${base}/docs`);
    const op = page.locator('.opblock-post', { hasText: '/api/v1/upload' }).first();
    await op.locator('.opblock-summary').click();
    await op.getByRole('button', { name: 'Try it out' }).click();

    // No made-up value ("string", 0) in an optional field: empty ones are not sent.
    for (const name of ['webhook_url', 'quality', 'max_width', 'max_height']) {
      const input = op.locator(`tr[data-property-name="${name}"] input[type="text"]`).first();
      await input.waitFor({ state: 'visible' });
      expect(await input.inputValue(), name).toBe('');
    }
    expect(await op.locator('tr[data-property-name="format"] select').inputValue()).toBe('');
    await op.locator('tr[data-property-name="file"] input[type="file"]').setInputFiles({
      name: 'products.csv', mimeType: 'text/csv',
      buffer: Buffer.from('S. No.,Product Name,Input Image Urls\n1,Widget,http://127.0.0.1:9/a.jpg\n'),
    });
    await op.getByRole('button', { name: 'Execute' }).click();
    await op.locator('.live-responses-table .response-col_status', { hasText: /^\s*202/ }).first().waitFor({ state: 'visible' });
    expect(sent).toContain(`POST ${base}/api/v1/upload`);
    expect(browser.aborted).toEqual([]);
    expect(browser.cspViolations).toEqual([]);
  });
});
