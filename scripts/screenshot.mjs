// `npm run screenshot`: refreshes docs/dashboard.png, the README's picture of the dashboard.
// A real service on loopback (temporary data), images served from 127.0.0.1, Chromium with every
// request off this machine aborted. Tests never write tracked files; this is the one that does.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { loadConfig } from '../dist/src/config.js';
import { createLogger } from '../dist/src/log.js';
import { startService } from '../dist/src/service.js';

const ROOT = join(import.meta.dirname, '..');
const OUT = join(ROOT, 'docs', 'dashboard.png');
const fixtures = { '/rocket.jpg': 'rocket-small.jpg', '/cat.png': 'chelsea.png', '/kite.webp': 'Kite.webp' };
const types = { jpg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };

const images = createServer((req, res) => {
  const name = fixtures[req.url ?? ''];
  if (req.url === '/hook') return res.writeHead(200).end('ok');
  if (!name) return res.writeHead(404).end();
  res.writeHead(200, { 'content-type': types[name.split('.').pop()] }).end(readFileSync(join(ROOT, 'test', 'fixtures', name)));
});
await new Promise((resolve) => images.listen(0, '127.0.0.1', resolve));
const img = (path) => `http://127.0.0.1:${images.address().port}${path}`;

const dataDir = mkdtempSync(join(tmpdir(), 'icp-screenshot-'));
const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, FETCH_ALLOWLIST: '127.0.0.0/8', LOG_LEVEL: 'warn', WORKER_THREADS: '1' });
const service = await startService(config, createLogger(config));
const base = `http://127.0.0.1:${service.server.port}`;
const profile = mkdtempSync(join(tmpdir(), 'icp-chromium-'));
const browser = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"] });
try {
  await browser.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort('blockedbyclient')));
  await fetch(`${base}/api/v1/webhook/configure`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ webhook_url: img('/hook'), events: ['processing.completed'] }),
  });
  const form = new FormData();
  const csv = `S. No.,Product Name,Input Image Urls\n1,Rocket,"${img('/rocket.jpg')},${img('/kite.webp')}"\n2,Cat,${img('/cat.png')}\n3,Lamp,${img('/lamp.jpg')}\n`;
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'spring-catalogue.csv');
  const { request_id: id } = await (await fetch(`${base}/api/v1/upload`, { method: 'POST', body: form })).json();
  for (let i = 0; i < 600; i++) {
    const { status } = await (await fetch(`${base}/api/v1/status/${id}`)).json();
    if (['completed', 'failed'].includes(status)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.goto(`${base}/`);
  await page.locator('.deliveries .state', { hasText: 'delivered' }).or(page.locator('.deliveries .state')).first().waitFor();
  await page.screenshot({ path: OUT, fullPage: true });
  console.log(`wrote ${OUT}`);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
  await service.stop();
  images.close();
  rmSync(dataDir, { recursive: true, force: true });
}
