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
