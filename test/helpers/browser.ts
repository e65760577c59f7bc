// A real browser for page tests: Debian's chromium, headless, driven by playwright-core, with a
// fresh profile each time. Every request to a host that is not loopback is aborted (and
// recorded), so a page that reaches for a CDN fails its test instead of leaving the machine.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null when they can. */
export const browserUnavailable: string | null = existsSync(CHROMIUM_PATH)
  ? null
  : `${CHROMIUM_PATH} is missing (install Debian's chromium: apt-get install -y chromium; .ci/run does)`;

if (browserUnavailable) console.warn(`Skipping the browser tests: ${browserUnavailable}`);

const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
];

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

export interface BrowserSession {
  context: BrowserContext;
  /** URLs of requests aborted because their host was not loopback. */
  aborted: string[];
  /** Console messages of every page that report a Content-Security-Policy violation. */
  cspViolations: string[];
  newPage(): Promise<Page>;
  /** Closes the browser and removes its profile (once; later calls wait for the first). */
  close(): Promise<void>;
}

export async function openBrowser(): Promise<BrowserSession> {
  const profile = mkdtempSync(join(tmpdir(), 'icp-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: ARGS });
  const aborted: string[] = [];
  const cspViolations: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (isLoopbackHost(url.hostname)) return route.continue();
    aborted.push(url.href);
    return route.abort('blockedbyclient');
  });
  const watch = (page: Page) => page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  context.pages().forEach(watch);
  context.on('page', watch);
  let closed: Promise<void> | undefined;
  return {
    context, aborted, cspViolations,
    newPage: () => context.newPage(),
    close: () => (closed ??= (async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    })()),
  };
}
