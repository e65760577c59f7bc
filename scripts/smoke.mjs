// End-to-end smoke test of the built server (`npm run build` first) on one runtime:
//   node scripts/smoke.mjs bun|deno|node
// Starts a local image server (node:http on 127.0.0.1, port 0) serving the fixtures (JPEG, PNG,
// WebP, and the input-only GIF, TIFF, BMP, HEIC and a CMYK JPEG) from test/fixtures and a CMYK
// JPEG with its profile made with sharp, starts dist/src/main.js on the runtime with an empty data dir and
// FETCH_ALLOWLIST=127.0.0.1/32, uploads a CSV of those images plus one URL that answers 404, waits
// for the request to finish, then checks: each good image has an output URL that GET /images/<key>
// serves with the right content type and bytes of the same format (magic bytes), and a `thumb`
// rendition (WebP, at most 64 px wide, from the WebP header); output.csv lists them (the rendition
// in its own column); the 404 image failed with an error; the request's event stream ends with its final
// event; the dashboard at / and its assets are served; the server exits 0 on SIGTERM with an
// event stream open, which it ends. Loopback traffic only.
// Exits non-zero with a message on anything wrong, or when it all takes longer than DEADLINE_MS.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { freePort } from './free-port.mjs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseCsv } from 'csv-parse/sync';

const DEADLINE_MS = 120_000;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const runtime = process.argv[2];
const commands = {
  bun: [join(root, 'node_modules/.bin/bun'), ['dist/src/main.js']],
  deno: [join(root, 'node_modules/.bin/deno'), ['run', '--allow-all', 'dist/src/main.js']],
  node: [process.execPath, ['dist/src/main.js']],
};
if (!commands[runtime]) {
  console.error('usage: node scripts/smoke.mjs bun|deno|node');
  process.exit(2);
}

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const log = (msg) => console.log(`smoke ${runtime}: ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The images: served by the local image server under their own names.
const MAGIC = {
  jpeg: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff,
  png: (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
  webp: (b) => b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP',
  gif: (b) => b.toString('latin1', 0, 4) === 'GIF8',
  tiff: (b) => b.toString('latin1', 0, 4) === 'II*\0' || b.toString('latin1', 0, 4) === 'MM\0*',
  bmp: (b) => b.toString('latin1', 0, 2) === 'BM',
  heic: (b) => b.toString('latin1', 4, 12) === 'ftypheic',
};
/** A WebP's width from its first chunk's header (VP8, VP8L or VP8X), or null. */
function webpWidth(b) {
  const chunk = b.toString('latin1', 12, 16);
  if (chunk === 'VP8 ') return b.readUInt16LE(26) & 0x3fff;
  if (chunk === 'VP8L') return 1 + (b.readUInt16LE(21) & 0x3fff);
  if (chunk === 'VP8X') return 1 + b.readUIntLE(24, 3);
  return null;
}
const THUMB_WIDTH = 64;
// `format` is the input's; `out` the output's when it differs (input-only formats are converted).
const IMAGES = [
  { file: 'rocket-small.jpg', format: 'jpeg', mime: 'image/jpeg' },
  { file: 'chelsea.png', format: 'png', mime: 'image/png' },
  { file: 'Kite.webp', format: 'webp', mime: 'image/webp' },
  { file: 'rocket-small.gif', format: 'gif', mime: 'image/gif', out: { format: 'png', mime: 'image/png' } },
  { file: 'rocket-small.tif', format: 'tiff', mime: 'image/tiff', out: { format: 'jpeg', mime: 'image/jpeg' } },
  { file: 'rocket-small.bmp', format: 'bmp', mime: 'image/bmp', out: { format: 'jpeg', mime: 'image/jpeg' } },
  { file: 'rocket-small.heic', format: 'heic', mime: 'image/heic', out: { format: 'jpeg', mime: 'image/jpeg' } },
  { file: 'rocket-cmyk.jpg', format: 'jpeg', mime: 'image/jpeg' },
];
for (const img of IMAGES) {
  const path = join(root, 'test/fixtures', img.file);
  try {
    img.bytes = readFileSync(path);
  } catch (err) {
    console.error(`smoke ${runtime}: FAILED: fixture ${path}: ${err.message}`);
    process.exit(1);
  }
  if (!MAGIC[img.format](img.bytes)) {
    console.error(`smoke ${runtime}: FAILED: fixture ${path} is not ${img.format}`);
    process.exit(1);
  }
}
// A CMYK JPEG with its profile, made here (libvips' CMYK profile is ~1 MB, too big to commit): its
// colours go through LittleCMS's module (wasm/lcms2) on this runtime.
const { default: sharp } = await import('sharp');
IMAGES.push({
  file: 'rocket-cmyk-profile.jpg', format: 'jpeg', mime: 'image/jpeg',
  bytes: await sharp(join(root, 'test/fixtures/rocket-small.jpg')).toColourspace('cmyk').withIccProfile('cmyk').jpeg({ quality: 90 }).toBuffer(),
});
const MISSING = 'missing.jpg';

let child = null;
let exited = null;
let imageServer = null;
const dataDir = mkdtempSync(join(tmpdir(), `icp-smoke-${runtime}-`));
const cleanup = () => {
  imageServer?.closeAllConnections?.();
  imageServer?.close();
  rmSync(dataDir, { recursive: true, force: true });
};

// The whole run, stop included, has one deadline.
const deadline = setTimeout(() => {
  console.error(`smoke ${runtime}: FAILED: not done within ${DEADLINE_MS / 1000} s`);
  child?.kill('SIGKILL');
  cleanup();
  process.exit(1);
}, DEADLINE_MS);

// Local image server: the fixtures by name, 404 for anything else; counts the requests it gets.
const hits = new Map();
imageServer = createHttpServer((req, res) => {
  const name = decodeURIComponent(new URL(req.url, 'http://x').pathname.slice(1));
  hits.set(name, (hits.get(name) ?? 0) + 1);
  const img = IMAGES.find((i) => i.file === name);
  if (!img || req.method !== 'GET') {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': img.mime, 'content-length': img.bytes.length }).end(img.bytes);
});
await new Promise((resolve, reject) => imageServer.on('error', reject).listen(0, '127.0.0.1', resolve));
const imageBase = `http://127.0.0.1:${imageServer.address().port}`;
const urlOf = (file) => `${imageBase}/${file}`;

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const apiKey = randomBytes(16).toString('hex');
const env = { ...process.env };
// Nothing from the caller's environment may send the server elsewhere (a database, S3, ...).
for (const k of Object.keys(env)) {
  if (/^(MONGODB_|S3_|STORAGE$|IMAGE_STORAGE_PATH$|ROLE$|METRICS_TOKEN$|CORS_ORIGINS$|WEBHOOK_|FETCH_|CODEC_RUN_LOG$)/.test(k)) delete env[k];
}
Object.assign(env, {
  PORT: String(port), HOST: '127.0.0.1', PUBLIC_BASE_URL: base, DATA_DIR: dataDir,
  API_KEY: apiKey, LOG_LEVEL: 'warn', WORKER_THREADS: '1',
  FETCH_ALLOWLIST: '127.0.0.1/32',
  NO_PROXY: '127.0.0.1,localhost', DENO_NO_UPDATE_CHECK: '1', DO_NOT_TRACK: '1',
});
const [cmd, args] = commands[runtime];
child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
exited = new Promise((resolve) => {
  child.on('error', (err) => resolve({ code: null, signal: null, error: err }));
  child.on('exit', (code, signal) => resolve({ code, signal }));
});
const earlyExit = exited.then(({ code, signal, error }) => {
  throw new Error(error ? `could not start ${cmd}: ${error.message}` : `server exited early (${code ?? signal})`);
});
earlyExit.catch(() => {});

/** fetch against the server with a per-call timeout; API calls carry the key. */
function call(path, init = {}) {
  const headers = path.startsWith('/api/') ? { 'x-api-key': apiKey, ...init.headers } : init.headers;
  return Promise.race([fetch(`${base}${path}`, { ...init, headers, signal: AbortSignal.timeout(15_000) }), earlyExit]);
}

function check(ok, msg) {
  if (!ok) throw new Error(msg);
}

async function waitReady() {
  for (;;) {
    try {
      if ((await call('/healthz')).ok) return;
    } catch (err) {
      if (err.message.startsWith('server exited') || err.message.startsWith('could not start')) throw err;
    }
    await sleep(200);
  }
}

/** Reads a text/event-stream answer to its end: the events as [name, data] pairs. */
async function readEvents(res) {
  const text = await res.text();
  return text.split('\n\n').filter((b) => /^event:/m.test(b)).map((b) => [
    /^event: (.*)$/m.exec(b)[1],
    JSON.parse(/^data: (.*)$/m.exec(b)[1]),
  ]);
}

/** The dashboard: the page and every asset it names, with their types and the CSP. */
async function checkDashboard() {
  const page = await call('/');
  const html = await page.text();
  check(page.status === 200 && /^text\/html/.test(page.headers.get('content-type') ?? ''), `GET /: ${page.status} ${page.headers.get('content-type')}`);
  check(/script-src 'self'/.test(page.headers.get('content-security-policy') ?? ''), `GET /: CSP ${page.headers.get('content-security-policy')}`);
  const refs = [...html.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1]);
  check(refs.length === 3, `GET /: names ${refs.length} assets, expected 3`);
  for (const ref of refs) {
    const res = await call(`/${ref}`);
    const body = await res.arrayBuffer();
    check(res.status === 200 && body.byteLength > 100 && /immutable/.test(res.headers.get('cache-control') ?? ''), `GET /${ref}: ${res.status}, ${body.byteLength} bytes, ${res.headers.get('cache-control')}`);
  }
  log(`dashboard: / and ${refs.length} assets served`);
}

async function run() {
  await waitReady();
  log(`server up after ${elapsed()}`);
  await checkDashboard();

  // Three products: SKU1 = jpeg + png, SKU2 = webp + a 404, SKU3 = the input-only formats and a CMYK JPEG.
  const products = [
    { serial: 1, name: 'SKU1', urls: [urlOf(IMAGES[0].file), urlOf(IMAGES[1].file)] },
    { serial: 2, name: 'SKU2', urls: [urlOf(IMAGES[2].file), urlOf(MISSING)] },
    { serial: 3, name: 'SKU3', urls: IMAGES.slice(3).map((i) => urlOf(i.file)) },
  ];
  const csv = 'S. No.,Product Name,Input Image Urls\n'
    + products.map((p) => `${p.serial},${p.name},"${p.urls.join(',')}"\n`).join('');
  const form = new FormData();
  form.append('renditions', JSON.stringify([{ name: 'thumb', max_width: THUMB_WIDTH, format: 'webp' }]));
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'products.csv');
  const upload = await call('/api/v1/upload', { method: 'POST', body: form });
  const accepted = await upload.json();
  check(upload.status === 202 && accepted.products === 3 && accepted.images === IMAGES.length + 1, `upload: expected 202 with 3 products and ${IMAGES.length + 1} images, got ${upload.status} ${JSON.stringify(accepted)}`);
  const id = accepted.request_id;

  // Wait for the request to be final.
  let body;
  for (;;) {
    const res = await call(`/api/v1/status/${id}`);
    body = await res.json();
    check(res.status === 200, `status: ${res.status} ${JSON.stringify(body)}`);
    if (['completed', 'failed', 'cancelled'].includes(body.status)) break;
    await sleep(250);
  }
  log(`request ${body.status} after ${elapsed()}: ${JSON.stringify(body.progress)}`);
  check(body.status === 'completed', `request ended ${body.status}, expected completed: ${JSON.stringify(body)}`);
  check(body.products?.length === 3, `status lists ${body.products?.length} products, expected 3`);

  const views = new Map(body.products.map((p) => [p.product_name, p]));
  const outputs = new Map(); // input URL -> output URL
  for (const p of products) {
    const v = views.get(p.name);
    check(v, `status has no product ${p.name}`);
    check(JSON.stringify(v.input_urls) === JSON.stringify(p.urls), `${p.name}: input_urls ${JSON.stringify(v.input_urls)}`);
    p.urls.forEach((u, i) => outputs.set(u, { out: v.output_urls[i], thumb: v.renditions?.thumb?.[i] ?? null, error: v.errors[i] }));
  }

  // Every good image: an output URL on this server whose bytes are an image of the same format.
  for (const img of IMAGES) {
    const { out, error } = outputs.get(urlOf(img.file));
    check(out && !error, `${img.file}: no output (error: ${error})`);
    check(out.startsWith(`${base}/images/`), `${img.file}: output URL ${out} is not under ${base}/images/`);
    check((hits.get(img.file) ?? 0) >= 1, `${img.file}: the image server never got a request for it`);
    const res = await call(new URL(out).pathname);
    const bytes = Buffer.from(await res.arrayBuffer());
    check(res.status === 200, `GET ${out}: ${res.status}`);
    const want = img.out ?? img;
    check(res.headers.get('content-type') === want.mime, `GET ${out}: content-type ${res.headers.get('content-type')}, expected ${want.mime}`);
    check(bytes.length > 0, `GET ${out}: empty body`);
    check(MAGIC[want.format](bytes), `GET ${out}: bytes are not ${want.format} (starts ${bytes.subarray(0, 12).toString('hex')})`);
    log(`${img.file}: ${img.bytes.length} -> ${bytes.length} bytes, ${want.mime}`);
    // its rendition, from the same download
    const { thumb } = outputs.get(urlOf(img.file));
    check(thumb?.startsWith(`${base}/images/`), `${img.file}: rendition thumb URL ${thumb}`);
    const t = await call(new URL(thumb).pathname);
    const tBytes = Buffer.from(await t.arrayBuffer());
    check(t.status === 200 && t.headers.get('content-type') === 'image/webp' && MAGIC.webp(tBytes), `GET ${thumb}: ${t.status} ${t.headers.get('content-type')}`);
    const width = webpWidth(tBytes);
    check(width !== null && width <= THUMB_WIDTH, `${img.file}: rendition thumb is ${width} px wide, expected at most ${THUMB_WIDTH}`);
    check(hits.get(img.file) === 1, `${img.file}: downloaded ${hits.get(img.file)} times, expected once for the output and its rendition`);
    log(`${img.file}: rendition thumb ${tBytes.length} bytes, ${width} px wide`);
  }

  // The 404: no output, an error that says so.
  const missing = outputs.get(urlOf(MISSING));
  check(missing.out === null, `${MISSING}: has an output URL ${missing.out}, expected none`);
  check(typeof missing.error === 'string' && /404/.test(missing.error), `${MISSING}: error ${JSON.stringify(missing.error)}, expected one naming 404`);
  check((hits.get(MISSING) ?? 0) >= 1, `${MISSING}: the image server never got a request for it`);
  log(`${MISSING}: error "${missing.error}"`);
  check(body.progress.total === IMAGES.length + 1 && body.progress.failed === 1, `progress: expected ${IMAGES.length + 1} images, 1 failed, got ${JSON.stringify(body.progress)}`);

  // output.csv: one row per product, output URLs aligned with inputs, empty for the 404.
  const csvRes = await call(`/api/v1/status/${id}/output.csv`);
  const csvText = await csvRes.text();
  check(csvRes.status === 200 && /^text\/csv/.test(csvRes.headers.get('content-type') ?? ''), `output.csv: ${csvRes.status} ${csvRes.headers.get('content-type')}`);
  const rows = parseCsv(csvText, { columns: true });
  check(rows.length === 3, `output.csv: ${rows.length} rows, expected 3:\n${csvText}`);
  for (const p of products) {
    const row = rows.find((r) => r['Product Name'] === p.name);
    check(row, `output.csv: no row for ${p.name}:\n${csvText}`);
    check(row['Input Image Urls'] === p.urls.join(','), `output.csv ${p.name}: inputs ${row['Input Image Urls']}`);
    const expected = p.urls.map((u) => outputs.get(u).out ?? '').join(',');
    check(row['Output Image Urls'] === expected, `output.csv ${p.name}: outputs "${row['Output Image Urls']}", expected "${expected}"`);
    const thumbs = p.urls.map((u) => outputs.get(u).thumb ?? '').join(',');
    check(row['Output Image Urls (thumb)'] === thumbs, `output.csv ${p.name}: thumbs "${row['Output Image Urls (thumb)']}", expected "${thumbs}"`);
  }
  log(`output.csv lists ${IMAGES.length} outputs and the failed entry empty`);

  // The request's event stream, now that it is final: its final event alone, then the end.
  const events = await readEvents(await call(`/api/v1/status/${id}/events`));
  check(events.length === 1 && events[0][0] === 'completed' && events[0][1].progress.done === IMAGES.length, `status events: ${JSON.stringify(events)}`);
  log('status event stream: the final event, then the end');

  // quality=auto: one JPEG searched in the pool thread with the SSIMULACRA2 WebAssembly on this runtime.
  const autoForm = new FormData();
  autoForm.append('quality', 'auto');
  autoForm.append('quality_target', '70');
  autoForm.append('file', new Blob([`S. No.,Product Name,Input Image Urls\n1,AUTO,${urlOf(IMAGES[0].file)}\n`], { type: 'text/csv' }), 'auto.csv');
  const autoUpload = await call('/api/v1/upload', { method: 'POST', body: autoForm });
  const autoAccepted = await autoUpload.json();
  check(autoUpload.status === 202, `quality=auto upload: ${autoUpload.status} ${JSON.stringify(autoAccepted)}`);
  let autoBody;
  for (;;) {
    autoBody = await (await call(`/api/v1/status/${autoAccepted.request_id}`)).json();
    if (['completed', 'failed', 'cancelled'].includes(autoBody.status)) break;
    await sleep(250);
  }
  const autoProduct = autoBody.products?.[0];
  check(autoBody.status === 'completed' && autoProduct?.output_urls[0], `quality=auto request ended ${autoBody.status}: ${JSON.stringify(autoBody)}`);
  const [autoQuality, autoScore] = [autoProduct.qualities?.[0], autoProduct.scores?.[0]];
  check(Number.isInteger(autoQuality) && autoQuality >= 1 && autoQuality <= 100 && typeof autoScore === 'number' && autoScore >= 70,
    `quality=auto: quality ${autoQuality}, score ${autoScore}; expected a quality and a score of at least 70`);
  const autoBytes = Buffer.from(await (await call(new URL(autoProduct.output_urls[0]).pathname)).arrayBuffer());
  check(MAGIC.jpeg(autoBytes), 'quality=auto: the output is not a JPEG');
  log(`quality=auto: ${IMAGES[0].file} at quality ${autoQuality}, SSIMULACRA2 ${autoScore}, ${autoBytes.length} bytes`);

  // A list stream stays open into the shutdown, which must end it.
  const list = await call('/api/v1/requests/events');
  check(list.status === 200 && /^text\/event-stream/.test(list.headers.get('content-type') ?? ''), `list events: ${list.status}`);
  openStream = list.text();
}
/** The list event stream left open when SIGTERM is sent. */
let openStream = null;

let failure = null;
try {
  await run();
} catch (err) {
  failure = err.message;
}
// Stop: SIGTERM must end the server with exit code 0.
if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
const { code, signal, error } = await exited;
clearTimeout(killer);
if (!failure && !error) {
  if (code === 0) log(`exit 0 on SIGTERM`);
  else failure = `exit after SIGTERM was ${code ?? signal}, expected 0`;
}
if (!failure && openStream) {
  try {
    await openStream;
    log('the open event stream was ended by the shutdown');
  } catch (err) {
    failure = `the open event stream broke off at shutdown instead of ending: ${err.message}`;
  }
}
cleanup();
clearTimeout(deadline);
if (failure) {
  console.error(`smoke ${runtime}: FAILED after ${elapsed()}: ${failure}`);
  process.exit(1);
}
log(`ok in ${elapsed()}`);
process.exit(0);
