// The dashboard at / in a real browser (see helpers/browser.ts): a CSV uploaded through the
// page, its progress bar followed to the end without a reload, its outputs, its failure and its
// output.csv, the webhook deliveries, and the API key asked for when the server wants one.
// Images come from a local server on 127.0.0.14; every request off this machine is aborted.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page, Request } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { browserUnavailable, openBrowser, type BrowserSession } from './helpers/browser.js';
import { startImageServer, type ImageServer } from './helpers/image-server.js';
import { ROOT, startTestService, type TestService } from './helpers/service.js';
import { until } from './helpers/poll.js';
import { OUTPUT_OPTION_FIELDS } from '../src/codecs/output-options.js';

const fixture = (name: string) => new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures', name)));
const ARTIFACTS = join(ROOT, 'test-artifacts');

describe.skipIf(browserUnavailable !== null)('the dashboard in a browser', () => {
  let images: ImageServer;
  // One browser per test, closed before its service stops: Chromium keeps spare connections
  // open, and a server's close waits for a connection that has not sent its request yet.
  let browser: BrowserSession;
  let csv: string;
  beforeAll(async () => {
    images = await startImageServer({ host: '127.0.0.14' });
    images.serve('/a.jpg', fixture('rocket-small.jpg'), 'image/jpeg');
    images.serve('/b.png', fixture('chelsea.png'), 'image/png');
    images.serve('/hook', 'ok', 'text/plain');
    csv = `S. No.,Product Name,Input Image Urls\n1,Rocket,"${images.url('/a.jpg')},${images.url('/missing.jpg')}"\n2,Cat,"${images.url('/b.png')}"\n`;
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  beforeEach(async () => {
    browser = await openBrowser();
  }, 60_000);
  afterEach(async () => {
    await browser?.close();
  });
  afterAll(async () => {
    await images?.close();
  });

  /** Every request the page makes, with its headers. */
  function record(page: Page): { url: string; method: string; headers: Record<string, string> }[] {
    const seen: { url: string; method: string; headers: Record<string, string> }[] = [];
    page.on('request', (r: Request) => seen.push({ url: r.url(), method: r.method(), headers: r.headers() }));
    return seen;
  }

  /** Uploads the CSV through the form; resolves with the request id once its row reads "completed". */
  async function uploadAndWatch(page: Page, base: string, submit: () => Promise<void>): Promise<string> {
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    await page.locator('#file').setInputFiles({ name: 'products.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByLabel('Quality, 1 to 100').fill('80');
    // the number inputs take their limits from the options table
    const limits = (id: string) => page.locator(`#${id}`).evaluate((e) => [(e as HTMLInputElement).min, (e as HTMLInputElement).max]);
    const { quality_target: target, max_width: width } = OUTPUT_OPTION_FIELDS;
    expect(await limits('quality_target')).toEqual([String(target.min), String(target.max)]);
    expect(await limits('max_width')).toEqual([String(width.min), String(width.max)]);
    const [posted, answer] = await Promise.all([
      page.waitForRequest((r) => r.url() === `${base}/api/v1/upload`),
      page.waitForResponse((r) => r.url() === `${base}/api/v1/upload`),
      submit(),
    ]);
    expect(answer.status()).toBe(202);
    // The options go as multipart fields, ahead of the file.
    const form = posted.postData()!;
    expect(form).toMatch(/name="quality"\r\n\r\n80\r\n/);
    expect(form.indexOf('name="quality"')).toBeLessThan(form.indexOf('name="file"'));
    const id = ((await answer.json()) as { request_id: string }).request_id;

    const row = page.locator(`#requests li[data-id="${id}"]`);
    await row.locator('.state', { hasText: /^completed$/ }).waitFor();
    const bar = row.locator('progress');
    expect([await bar.getAttribute('value'), await bar.getAttribute('max')]).toEqual(['3', '3']);
    await expect(row.locator('.counts').textContent()).resolves.toBe('3 of 3 images (1 failed)');
    await expect(row.locator('a.file').textContent()).resolves.toBe('products.csv');
    await expect(row.locator('.saved').textContent()).resolves.toMatch(/^[\d.]+ kB → [\d.]+ kB, saved \d+%$/);
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    return id;
  }

  it('uploads in open mode, follows the request live, shows its outputs and failure, downloads output.csv, and retries a delivery', async () => {
    const svc: TestService = await startTestService({ FETCH_ALLOWLIST: images.cidr });
    try {
      const hook = await fetch(`${svc.base}/api/v1/webhook/configure`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ webhook_url: images.url('/hook'), events: ['processing.completed'] }),
      });
      expect(hook.status).toBe(201);
      const page = await browser.newPage();
      await page.setViewportSize({ width: 1100, height: 900 });
      const requests = record(page);
      const res = await page.goto(`${svc.base}/`);
      expect(res?.status()).toBe(200);
      expect(res?.headers()['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
      await page.locator('#live-state', { hasText: 'Live updates on.' }).waitFor();
      const listReads = () => requests.filter((r) => r.url.startsWith(`${svc.base}/api/v1/requests?`)).length;

      const id = await uploadAndWatch(page, svc.base, () => page.getByRole('button', { name: 'Upload' }).click());
      // The bar moved on the event stream: the list was read when the stream opened, never polled.
      expect(listReads()).toBeLessThanOrEqual(2);
      expect(requests.filter((r) => r.url === `${svc.base}/api/v1/requests/events`)).toHaveLength(1);

      // The webhook's delivery for this request, delivered; a retry sends it once more.
      const delivery = page.locator('.deliveries > li', { hasText: id });
      for (let i = 0; !(await delivery.locator('.state', { hasText: /^delivered$/ }).count()); i++) {
        expect(i).toBeLessThan(100);
        await page.getByRole('button', { name: 'Refresh webhooks' }).click();
        await page.waitForResponse((r) => r.url().includes('/deliveries?'));
      }
      await expect(page.locator('.webhook h3').first().textContent()).resolves.toBe(images.url('/hook'));
      await expect(delivery.locator('.attempts li').count()).resolves.toBe(1);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
      await delivery.getByRole('button', { name: /^Retry/ }).click();
      await page.locator('#notice', { hasText: 'is queued again' }).waitFor();
      for (let i = 0; (await delivery.locator('.attempts li').count()) < 2; i++) {
        expect(i).toBeLessThan(100);
        await page.getByRole('button', { name: 'Refresh webhooks' }).click();
        await page.waitForResponse((r) => r.url().includes('/deliveries?'));
      }
      expect(images.hits('/hook')).toBe(2);

      // The request's page: thumbnails from this service, sizes and savings, the failure's reason.
      await page.locator(`#requests li[data-id="${id}"] a`).click();
      await page.locator('#detail table').waitFor();
      expect(page.url()).toBe(`${svc.base}/#/requests/${id}`);
      const thumbs = page.locator('#detail img.thumb');
      await expect(thumbs.count()).resolves.toBe(2);
      for (const img of await thumbs.all()) {
        expect(await img.getAttribute('src')).toMatch(/^images\/[0-9a-f]{64}\.(jpg|png)$/);
        await page.waitForFunction((el) => (el as HTMLImageElement).complete, await img.elementHandle());
        expect(await img.evaluate((el) => (el as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
      }
      const failure = page.locator('#detail tr', { hasText: images.url('/missing.jpg') }).locator('td.error');
      await expect(failure.textContent()).resolves.toMatch(/^Failed: .*HTTP 404/);
      await expect(page.locator('#detail tr', { hasText: images.url('/a.jpg') }).locator('td').last().textContent())
        .resolves.toMatch(/^compressed: [\d.]+ kB → [\d.]+ kB, saved \d+%, quality \d+$/); // the encoder quality used, no score without quality=auto
      await expect(page.locator('#detail .bytes').textContent()).resolves.toMatch(/saved \d+%/);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-request.png') });

      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download output.csv' }).click()]);
      expect(download.suggestedFilename()).toBe(`${id}-output.csv`);
      const saved = readFileSync((await download.path())!, 'utf8');
      expect(saved).toBe(await (await fetch(`${svc.base}/api/v1/status/${id}/output.csv`)).text());
      const lines = saved.trim().split('\r\n');
      expect(lines[0]).toBe('"S. No.","Product Name","Input Image Urls","Output Image Urls"');
      expect(lines[1]).toMatch(new RegExp(`^"1","Rocket","[^"]+","${svc.base}/images/[0-9a-f]{64}\\.jpg,"$`));
      expect(lines[2]).toMatch(new RegExp(`^"2","Cat","[^"]+","${svc.base}/images/[0-9a-f]{64}\\.png"$`));

      // Readable at phone width: nothing wider than the screen, on either view.
      await page.setViewportSize({ width: 390, height: 844 });
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await page.locator('a', { hasText: 'All requests' }).click();
      await page.locator('#home').waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

      // The request's actions: retry its failed image (still missing: it fails again), then delete it.
      await page.setViewportSize({ width: 1100, height: 900 });
      await page.locator(`#requests li[data-id="${id}"] a`).click();
      await page.locator('#detail table').waitFor();
      await page.getByRole('button', { name: 'Retry 1 failed image' }).click();
      await page.locator('#notice', { hasText: 'Retrying the failed images' }).waitFor();
      await until(() => images.hits('/missing.jpg') >= 2, 'the retried image to be fetched again', { timeoutMs: 10_000 });
      page.once('dialog', (d) => void d.accept());
      await page.getByRole('button', { name: 'Delete request' }).click();
      await page.locator('#notice', { hasText: 'deleted' }).waitFor();
      await page.locator('#home').waitFor();
      expect(await page.locator(`#requests li[data-id="${id}"]`).count()).toBe(0);
      expect((await fetch(`${svc.base}/api/v1/status/${id}`)).status).toBe(404);

      // Every control has a name a screen reader can say.
      const unnamed = await page.evaluate(() => [...document.querySelectorAll('input, select, button, progress, img, a')]
        .filter((el) => {
          const e = el as HTMLInputElement;
          const name = e.labels?.length ? e.labels[0]!.textContent
            : el.getAttribute('aria-label') ?? el.getAttribute('alt') ?? (el.textContent || el.querySelector('img')?.alt);
          return !name?.trim();
        })
        .map((el) => el.outerHTML.slice(0, 120)));
      expect(unnamed).toEqual([]);

      expect(browser.aborted).toEqual([]);
      expect(browser.cspViolations).toEqual([]);
      expect(requests.map((r) => r.url).filter((u) => !u.startsWith(`${svc.base}/`))).toEqual([]);
    } finally {
      await browser.close();
      await svc.stop();
    }
  });

  it('links each rendition of every image and shows the smallest as the thumbnail; without renditions, the output at a given size, lazily', async () => {
    const svc = await startTestService({ FETCH_ALLOWLIST: images.cidr });
    try {
      const send = async (fields: Record<string, string>) => {
        const form = new FormData();
        for (const [k, v] of Object.entries(fields)) form.append(k, v);
        form.append('file', new Blob([`product_name,image_url\nRocket,${images.url('/a.jpg')}\nCat,${images.url('/b.png')}\n`], { type: 'text/csv' }), 'p.csv');
        const id = ((await (await fetch(`${svc.base}/api/v1/upload`, { method: 'POST', body: form })).json()) as { request_id: string }).request_id;
        for (let i = 0; ; i++) {
          const status = (await (await fetch(`${svc.base}/api/v1/status/${id}`)).json()) as any;
          if (status.status === 'completed') return status;
          expect(i).toBeLessThan(600);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      const renditions = [{ name: 'large', max_width: 400 }, { name: 'thumb', max_width: 80, format: 'webp' }, { name: 'mid', max_width: 200 }];
      const withRenditions = await send({ renditions: JSON.stringify(renditions) });
      const plain = await send({ format: 'webp' });
      const page = await browser.newPage();
      const requests = record(page);
      const path = (url: string) => `images/${url.split('/images/')[1]}`;

      await page.goto(`${svc.base}/#/requests/${withRenditions.request_id}`);
      await page.locator('#detail table').waitFor();
      expect(await page.locator('#detail thead th').allTextContents()).toEqual(['Product', 'Input', 'Output', 'Renditions', 'Result']);
      for (const product of withRenditions.products) {
        const row = page.locator('#detail tr', { hasText: product.input_urls[0] });
        const links = row.locator('td.renditions a');
        expect(await links.allTextContents()).toEqual(['large', 'thumb', 'mid']);
        expect(await Promise.all((await links.all()).map((a) => a.getAttribute('href'))))
          .toEqual(['large', 'thumb', 'mid'].map((n) => path(product.renditions[n][0])));
        const thumb = row.locator('img.thumb');
        expect(await thumb.getAttribute('src')).toBe(path(product.renditions.thumb[0])); // the smallest asked for
        expect(await row.locator('td[data-label="Output"] a').getAttribute('href')).toBe(path(product.output_urls[0]));
        await page.waitForFunction((el) => (el as HTMLImageElement).complete, await thumb.elementHandle());
        expect(await thumb.evaluate((el) => (el as HTMLImageElement).naturalWidth)).toBe(80);
      }

      await page.goto(`${svc.base}/#/requests/${plain.request_id}`);
      await page.locator('#detail table').waitFor();
      expect(await page.locator('#detail thead th').allTextContents()).toEqual(['Product', 'Input', 'Output', 'Result']);
      for (const product of plain.products) {
        const thumb = page.locator('#detail tr', { hasText: product.input_urls[0] }).locator('img.thumb');
        expect(await thumb.getAttribute('src')).toBe(path(product.output_urls[0]));
        expect(await thumb.evaluate((el) => [el.getAttribute('width'), el.getAttribute('height'), el.getAttribute('loading')])).toEqual(['96', '96', 'lazy']);
      }
      // The page only reads: it never uploads (so never asks for a rendition of its own).
      expect(requests.filter((r) => r.method !== 'GET')).toEqual([]);
      expect(browser.aborted).toEqual([]);
      expect(browser.cspViolations).toEqual([]);
    } finally {
      await browser.close();
      await svc.stop();
    }
  });

  it('adds, lists, rotates and deletes webhook subscriptions, showing each secret once; banners stay on their page', async () => {
    const svc = await startTestService({ FETCH_ALLOWLIST: images.cidr, ROLE: 'api' });
    try {
      const page = await browser.newPage();
      await page.setViewportSize({ width: 1100, height: 900 });
      await page.goto(`${svc.base}/`);
      await page.locator('#live-state', { hasText: 'Live updates on.' }).waitFor();
      const secretOf = async () => (await page.locator('#webhook-secret code.secret').textContent())!;

      // Add: only the events left ticked are subscribed; the secret is shown, and only here.
      await page.getByLabel('Receiver URL').fill(images.url('/hook'));
      await page.getByLabel('processing.started').uncheck();
      await page.getByRole('button', { name: 'Add subscription' }).click();
      await page.locator('#webhook-secret code.secret').waitFor();
      const first = await secretOf();
      expect(first).toMatch(/^whsec_/);
      const listed = (await (await fetch(`${svc.base}/api/v1/webhooks`)).json()) as { webhooks: Array<{ id: string; webhook_url: string; events: string[] }> };
      expect(listed.webhooks).toMatchObject([{ webhook_url: images.url('/hook'), events: ['processing.completed', 'processing.failed', 'processing.cancelled'] }]);
      const article = page.locator(`.webhook[data-id="${listed.webhooks[0]!.id}"]`);
      await expect(article.locator('h3').textContent()).resolves.toBe(images.url('/hook'));
      expect(await page.content()).toContain(first);
      await page.reload();
      await page.locator('#live-state', { hasText: 'Live updates on.' }).waitFor();
      await article.waitFor();
      expect(await page.content()).not.toContain(first); // shown once: a reload does not bring it back

      // Rotate: a new secret, shown once.
      await article.getByRole('button', { name: /^Rotate secret/ }).click();
      await page.locator('#webhook-secret code.secret').waitFor();
      const second = await secretOf();
      expect(second).toMatch(/^whsec_/);
      expect(second).not.toBe(first);

      // The buttons do not touch.
      const boxes = await article.locator('.actions button').evaluateAll((els) => els.map((el) => el.getBoundingClientRect().toJSON() as DOMRect));
      expect(boxes[1]!.left - boxes[0]!.right).toBeGreaterThanOrEqual(6);

      // A banner belongs to its page: "Accepted…" does not follow onto the request's page.
      const longUrl = `${images.url('/photos/2026/spring-collection/product-images/large/')}rocket.jpg?variant=large&width=1600&format=jpeg`;
      const springCsv = `product_name;image_url\nRocket;${longUrl}\nCat;${images.url('/b.png')}\n`; // semicolons, as Excel writes them in Europe
      await page.locator('#file').setInputFiles({ name: 'spring.csv', mimeType: 'text/csv', buffer: Buffer.from(springCsv) });
      await page.getByRole('button', { name: 'Upload' }).click();
      await page.locator('#notice', { hasText: 'Accepted 2 products' }).waitFor();
      const row = page.locator('#requests li', { hasText: 'spring.csv' });
      await row.locator('a.file').click();
      await page.locator('#detail-title', { hasText: 'Request spring.csv' }).waitFor();
      await expect(page.locator('#notice').textContent()).resolves.toBe('');

      // Narrow: nothing wider than the screen, and a long URL breaks only between its parts.
      await page.setViewportSize({ width: 360, height: 800 });
      await page.locator('#detail table').waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
      const splitParts = await page.locator('#detail td.url a').first().evaluate((a) => {
        const texts = [...a.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE);
        const range = document.createRange();
        return {
          parts: texts.length,
          lines: new Set(texts.map((t) => { range.selectNodeContents(t); return Math.round(range.getBoundingClientRect().top); })).size,
          broken: texts.filter((t) => { range.selectNodeContents(t); return range.getClientRects().length > 1; }).map((t) => t.textContent),
        };
      });
      expect(splitParts.parts).toBeGreaterThan(3);
      expect(splitParts.lines).toBeGreaterThan(1); // it did wrap at 360 px
      expect(splitParts.broken).toEqual([]); // ...and never inside a part
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-narrow.png'), fullPage: true });

      // Delete the subscription.
      await page.setViewportSize({ width: 1100, height: 900 });
      await page.locator('a', { hasText: 'All requests' }).click();
      page.once('dialog', (d) => void d.accept());
      await article.getByRole('button', { name: /^Delete subscription/ }).click();
      await page.locator('#notice', { hasText: 'is deleted' }).waitFor();
      await article.waitFor({ state: 'detached' });
      expect(((await (await fetch(`${svc.base}/api/v1/webhooks`)).json()) as { webhooks: unknown[] }).webhooks).toEqual([]);
      expect(browser.aborted).toEqual([]);
      expect(browser.cspViolations).toEqual([]);
    } finally {
      await browser.close();
      await svc.stop();
    }
  });

  it('asks for the API key when the server wants one, keeps it in the tab only, and sends it as X-API-Key', async () => {
    const KEY = 'dashboard-browser-test-key';
    const svc = await startTestService({ API_KEY: KEY, FETCH_ALLOWLIST: images.cidr });
    try {
      const page = await browser.newPage();
      const requests = record(page);
      await page.goto(`${svc.base}/`);
      const input = page.getByRole('textbox', { name: 'API key' });
      await input.waitFor();
      expect(await input.getAttribute('type')).toBe('password');
      expect(await page.locator('#home').isHidden()).toBe(true);

      // With the keyboard only: a wrong key is refused, the right one opens the page.
      await input.focus();
      await page.keyboard.type('not-the-key');
      await page.keyboard.press('Enter');
      await page.locator('#notice', { hasText: 'That API key was refused' }).waitFor();
      await input.focus();
      await page.keyboard.type(KEY);
      await page.keyboard.press('Enter');
      await page.locator('#live-state', { hasText: 'Live updates on.' }).waitFor();
      // The refusal no longer applies: its banner is gone.
      await expect(page.locator('#notice').textContent()).resolves.toBe('');

      await uploadAndWatch(page, svc.base, async () => {
        await page.getByRole('button', { name: 'Upload' }).focus();
        await page.keyboard.press('Enter');
      });

      const api = requests.filter((r) => r.url.startsWith(`${svc.base}/api/v1/`));
      expect(api.length).toBeGreaterThan(3);
      const keyed = api.filter((r) => r.headers['x-api-key'] === KEY);
      // Everything after the right key carried it; before it, only the refused probes went out.
      expect(api.length - keyed.length).toBeLessThanOrEqual(2);
      expect(keyed.some((r) => r.url.endsWith('/api/v1/requests/events'))).toBe(true);
      expect(keyed.some((r) => r.method === 'POST' && r.url.endsWith('/api/v1/upload'))).toBe(true);
      expect(requests.filter((r) => r.url.includes(KEY))).toEqual([]);
      expect(await page.evaluate(() => ({ cookie: document.cookie, local: localStorage.length, session: sessionStorage.length })))
        .toEqual({ cookie: '', local: 0, session: 1 });

      // Forgetting the key asks for it again.
      await page.getByRole('button', { name: 'Forget API key' }).click();
      await input.waitFor();
      expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
      expect(browser.aborted).toEqual([]);
      expect(browser.cspViolations).toEqual([]);
    } finally {
      await browser.close();
      await svc.stop();
    }
  });
});
