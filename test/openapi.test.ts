// The API documentation: /openapi.json is a valid OpenAPI 3.1 document (checked with an
// independent validator from npm) that describes every route the app serves, and nothing it
// does not; the webhooks and security schemes are in it; /docs serves the interactive page.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../src/config.js';
import { createApp, type App } from '../src/http/app.js';
import { MAX_DIMENSION } from '../src/codecs/output-options.js';
import { extractCssImages } from '../src/http/docs-page.js';
import { CSV_CONTENT_TYPES } from '../src/ingest/multipart.js';
import { createLogger } from '../src/log.js';
import { LocalStorage } from '../src/storage/local.js';
import { openSqliteStore } from '../src/store/sqlite/store.js';
import type { Store } from '../src/store/types.js';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

let dir: string;
let store: Store;
let config: Config;
let app: App;
let doc: any;

function build(role: Config['ROLE'] = 'all'): App {
  return createApp({
    config: { ...config, ROLE: role }, store, storage: new LocalStorage(join(dir, 'images')),
    log: createLogger({ LOG_LEVEL: 'silent' }), role,
  });
}

/** Hono's route table as "METHOD /path/{param}", middleware (method ALL) left out. */
function servedRoutes(a: App): Set<string> {
  return new Set(
    a.routes
      .filter((r) => r.method !== 'ALL')
      .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, '{$1}')}`),
  );
}

function documentedRoutes(d: any): Set<string> {
  const out = new Set<string>();
  for (const [path, item] of Object.entries<any>(d.paths)) {
    for (const m of METHODS) if (item[m]) out.add(`${m.toUpperCase()} ${path}`);
  }
  return out;
}

function operations(d: any): { key: string; op: any }[] {
  return Object.entries<any>(d.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((m) => ({ key: `${m.toUpperCase()} ${path}`, op: item[m] })));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'icp-openapi-'));
  store = await openSqliteStore(join(dir, 'store.db'));
  config = loadConfig({ DATA_DIR: dir, PUBLIC_BASE_URL: 'https://images.example.com', API_KEY: 'openapi-test-key', LOG_LEVEL: 'silent' });
  app = build();
  const res = await app.request('/openapi.json');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  doc = await res.json();
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('/openapi.json', () => {
  it('validates as OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(doc.openapi).toMatch(/^3\.1\./);
  });

  it('documents every route the app serves, and only those', () => {
    const served = servedRoutes(app);
    const documented = documentedRoutes(doc);
    expect(served.size).toBeGreaterThan(10);
    expect([...served].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !served.has(r))).toEqual([]);
    // the seed's contract, by name
    for (const r of ['POST /api/v1/upload', 'GET /api/v1/status/{request_id}', 'GET /api/v1/status/{request_id}/output.csv',
      'POST /api/v1/webhook/configure', 'GET /api/v1/webhooks', 'DELETE /api/v1/webhooks/{id}', 'GET /images/{key}',
      'GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /openapi.json', 'GET /docs',
      'GET /api/v1/status/{request_id}/events', 'GET /api/v1/requests/events']) {
      expect(documented, r).toContain(r);
    }
  });

  it('gives every operation a summary, a tag and a success response; /api/v1 ones the API key and its errors', () => {
    const tags = new Set(doc.tags.map((t: { name: string }) => t.name));
    for (const { key, op } of operations(doc)) {
      expect(op.summary, key).toBeTruthy();
      expect(op.tags?.length, key).toBeGreaterThan(0);
      for (const t of op.tags) expect(tags, `${key} tag ${t}`).toContain(t);
      expect(Object.keys(op.responses).some((s) => /^2\d\d$/.test(s)), key).toBe(true);
      for (const r of Object.values<any>(op.responses)) expect(r.headers?.['X-Request-Id'], key).toBeDefined();
      if (key.includes(' /api/v1/')) {
        expect(op.security, key).toEqual(expect.arrayContaining([{ ApiKey: [] }, { Bearer: [] }]));
        for (const s of ['401', '403', '500']) expect(op.responses[s], `${key} ${s}`).toBeDefined();
        expect(op.responses['401'].content['application/json'].schema.$ref, key).toBe('#/components/schemas/Error');
      } else {
        expect(op.security, key).toBeUndefined();
      }
    }
    for (const path of ['/api/v1/status/{request_id}/events', '/api/v1/requests/events']) {
      expect(Object.keys(doc.paths[path].get.responses['200'].content), path).toEqual(['text/event-stream']);
      expect(doc.paths[path].get.responses['503'], path).toBeDefined();
    }
    const product = doc.components.schemas.Product.properties;
    for (const field of ['outcomes', 'input_bytes', 'output_bytes']) expect(product[field]?.type, field).toBe('array');
    expect(doc.components.schemas.RequestStatusResponse.properties.bytes.properties).toMatchObject({ in: { type: 'integer' }, out: { type: 'integer' } });
    const upload = doc.paths['/api/v1/upload'].post;
    expect(upload.requestBody.content['multipart/form-data'].schema.properties.file).toMatchObject({ type: 'string', format: 'binary' });
    for (const s of ['202', '400', '413', '415']) expect(upload.responses[s], s).toBeDefined();
  });

  it('types the upload form: file required with its accepted content types, integers with their limits', () => {
    const body = doc.paths['/api/v1/upload'].post.requestBody.content['multipart/form-data'];
    expect(body.schema.required).toEqual(['file']);
    expect(body.encoding.file.contentType.split(/,\s*/)).toEqual([...CSV_CONTENT_TYPES]);
    const p = body.schema.properties;
    expect(p.quality).toMatchObject({ type: 'integer', minimum: 1, maximum: 100 });
    for (const f of ['max_width', 'max_height']) expect(p[f], f).toMatchObject({ type: 'integer', minimum: 1, maximum: MAX_DIMENSION });
    expect(p.progressive).toMatchObject({ type: 'boolean' });
    expect(p.webhook_url).toMatchObject({ type: 'string', format: 'uri', maxLength: 2048 });
    expect(p.renditions).toMatchObject({ type: 'string' });
    expect(p.renditions.description).toMatch(/JSON array of at most 8 RenditionSpec/);
    // A rendition's fields are the options table's, with the same limits; the status shows them filled in.
    const spec = doc.components.schemas.RenditionSpec;
    expect(spec.required).toEqual(['name']);
    expect(spec.properties.name).toMatchObject({ type: 'string', pattern: '^[a-z0-9_-]{1,32}$' });
    for (const f of ['quality', 'format', 'max_width', 'max_height']) expect(spec.properties[f], f).toEqual(expect.objectContaining({ type: p[f].type }));
    expect(spec.properties.max_width).toMatchObject({ minimum: 1, maximum: MAX_DIMENSION });
    const statusProps = doc.components.schemas.RequestStatusResponse.properties;
    expect(JSON.stringify(statusProps.options)).toContain('Rendition');
    expect(doc.components.schemas.Product.properties.renditions).toMatchObject({ type: 'object', additionalProperties: { type: 'array' } });
    // No field offers a made-up value for Swagger UI to pre-fill (a "string" in a number field).
    for (const [name, field] of Object.entries<any>(p)) if (name !== 'file') expect(field.example, name).toBeUndefined();
    const configure = doc.components.schemas.WebhookConfigureRequest.properties;
    expect(configure.webhook_url).toMatchObject({ format: 'uri' });
    const secret = new RegExp(configure.secret.pattern);
    expect(secret.test('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe(true);
    expect(secret.test('whsec_short')).toBe(false);
    expect(secret.test('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe(false);
  });

  it('documents the 400 of a too-long path id, 413/415 on JSON bodies, and the headers answers carry', () => {
    for (const [path, method] of [['/api/v1/keys/{id}', 'delete'], ['/api/v1/requests/{request_id}', 'delete'], ['/api/v1/status/{request_id}/output.csv', 'get'],
      ['/api/v1/requests/{request_id}/cancel', 'post'], ['/api/v1/requests/{request_id}/retry', 'post'], ['/api/v1/status/{request_id}/events', 'get'], ['/api/v1/status/{request_id}', 'get']] as const) {
      const op = doc.paths[path][method];
      expect(op.responses['400'], `${method} ${path}`).toBeDefined();
      expect(op.parameters.find((x: any) => x.in === 'path').schema.maxLength, `${method} ${path}`).toBe(100);
    }
    for (const path of ['/api/v1/keys', '/api/v1/webhook/configure']) {
      for (const s of ['400', '413', '415']) expect(doc.paths[path].post.responses[s].content['application/json'].schema.$ref, `${path} ${s}`).toBe('#/components/schemas/Error');
    }
    const status = doc.paths['/api/v1/status/{request_id}'].get;
    expect(status.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ in: 'header', name: 'if-none-match' })]));
    expect(status.responses['304'].headers.ETag).toBeDefined();
    expect(status.responses['200'].headers.ETag).toBeDefined();
    expect(doc.paths['/api/v1/status/{request_id}/output.csv'].get.responses['200'].headers['Content-Disposition']).toBeDefined();
    const upload = doc.paths['/api/v1/upload'].post.responses;
    expect(upload['202'].headers['Idempotent-Replayed']).toBeDefined();
    expect(upload['429'].headers['Retry-After']).toBeDefined();
    expect(upload['408']).toBeDefined();
    expect(doc.paths['/api/v1/requests/events'].get.responses['503'].headers['Retry-After']).toBeDefined();
    for (const { key, op } of operations(doc)) if (op.responses['401']) expect(op.responses['401'].headers['WWW-Authenticate'], key).toBeDefined();
  });

  it('says only what is true: 401 for a wrong key, four events, no WEBHOOK_SECRET default', () => {
    expect(doc.info.description).not.toMatch(/403 when wrong/);
    expect(doc.info.description).toMatch(/401 when missing, unknown or revoked/);
    const text = JSON.stringify(doc);
    expect(text).not.toMatch(/all three|WEBHOOK_SECRET if the server/);
    expect(doc.components.schemas.WebhookConfigureRequest.properties.events.description).toMatch(/all four/);
  });

  it('declares the API key security scheme (header and bearer), the server and the tags', () => {
    expect(doc.components.securitySchemes.ApiKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-API-Key' });
    expect(doc.components.securitySchemes.Bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    // Relative: "Try it out" works by whatever address the page was reached.
    expect(doc.servers).toEqual([expect.objectContaining({ url: '/' })]);
    expect(doc.info).toMatchObject({ title: 'image-csv-processor', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(doc.info.description).toMatch(/X-API-Key/);
  });

  it('describes the four webhook events with their body and the Standard Webhooks headers', () => {
    expect(Object.keys(doc.webhooks).sort()).toEqual(['processing.cancelled', 'processing.completed', 'processing.failed', 'processing.started']);
    for (const [type, item] of Object.entries<any>(doc.webhooks)) {
      const op = item.post;
      const headers = op.parameters.filter((p: any) => p.in === 'header').map((p: any) => p.name).sort();
      expect(headers).toEqual(['webhook-id', 'webhook-signature', 'webhook-timestamp']);
      const ref: string = op.requestBody.content['application/json'].schema.$ref;
      const schema = doc.components.schemas[ref.split('/').pop()!];
      expect(schema.properties.type.const ?? schema.properties.type.enum?.[0]).toBe(type);
      expect(Object.keys(schema.properties.data.properties).sort()).toEqual(['output_csv_url', 'progress', 'renditions', 'request_id', 'status']);
      expect(schema.properties.data.required).not.toContain('renditions');
      expect(schema.example.type).toBe(type);
    }
  });

  it('is served by api instances only; workers serve health and metrics', async () => {
    const worker = build('worker');
    expect([...servedRoutes(worker)].sort()).toEqual(['GET /healthz', 'GET /metrics', 'GET /readyz']);
    expect((await worker.request('/openapi.json')).status).toBe(404);
  });
});

describe('/docs', () => {
  it('serves the interactive reference pointing at /openapi.json', async () => {
    const res = await app.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('/openapi.json');
    expect(html).toContain('image-csv-processor API');
  });

  it('is served offline: every file comes from the installed swagger-ui-dist, none from a CDN', async () => {
    const html = await (await app.request('/docs')).text();
    expect(html).not.toMatch(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i); // no absolute or protocol-relative URL
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs).toEqual(expect.arrayContaining(['/docs/assets/swagger-ui-bundle.js', '/docs/assets/swagger-ui.css', '/docs/assets/docs.js']));
    expect(html).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=/i); // nothing inline for the CSP to allow
    for (const ref of refs) expect((await app.request(ref)).status, ref).toBe(200);

    const dist = join(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'), '..');
    const bundle = await app.request('/docs/assets/swagger-ui-bundle.js');
    expect(bundle.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(Buffer.from(await bundle.arrayBuffer()).equals(readFileSync(join(dist, 'swagger-ui-bundle.js')))).toBe(true);

    // The stylesheet's data: icons are files of their own, so img-src 'self' is enough.
    const css = await (await app.request('/docs/assets/swagger-ui.css')).text();
    expect(css).not.toContain('data:');
    const images = [...new Set([...css.matchAll(/url\(([^)]+)\)/g)].map((m) => m[1]!))];
    expect(images.length).toBeGreaterThan(5);
    for (const name of images) {
      const res = await app.request(`/docs/assets/${name}`);
      expect(res.status, name).toBe(200);
      expect(res.headers.get('content-type'), name).toMatch(/^image\//);
    }

    const unknown = await app.request('/docs/assets/nope.js');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ detail: 'No such file' });
    const etag = bundle.headers.get('etag')!;
    expect((await app.request('/docs/assets/swagger-ui-bundle.js', { headers: { 'if-none-match': etag } })).status).toBe(304);
  });

  it('sends a CSP that allows only this service, and the HTML security baseline', async () => {
    const res = await app.request('/docs');
    const csp = Object.fromEntries(res.headers.get('content-security-policy')!.split(/\s*;\s*/).map((d) => {
      const [name, ...values] = d.split(/\s+/);
      return [name, values.join(' ')];
    }));
    expect(csp).toEqual({
      'default-src': "'none'",
      'script-src': "'self'",
      'style-src': "'self'",
      'img-src': "'self'",
      'font-src': "'self'",
      'connect-src': "'self'", // "Try it out" sends to the document's relative server: this origin
      'base-uri': "'none'",
      'form-action': "'none'",
      'frame-ancestors': "'none'",
    });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('moves data: images of a stylesheet into files and leaves anything else alone', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><path fill="#fff"/></svg>';
    const png = readFileSync(join(import.meta.dirname, 'fixtures', 'chelsea.png')).subarray(0, 64);
    const { css, images } = extractCssImages([
      `.a{background:url("data:image/svg+xml;charset=utf-8,${svg.replace(/#/g, '%23').replace(/"/g, '\\"')}")}`,
      `.b{background:url(data:image/png;base64,${png.toString('base64')})}`,
      '.c{background:url(data:font/woff2;base64,AAAA)}',
      '.d{background:url(/img/x.png)}',
    ].join('\n'));
    const names = [...images.keys()];
    expect(names).toEqual([expect.stringMatching(/^img-[0-9a-f]{16}\.svg$/), expect.stringMatching(/^img-[0-9a-f]{16}\.png$/)]);
    expect(new TextDecoder().decode(images.get(names[0]!)!.body)).toBe(svg);
    expect(Buffer.from(images.get(names[1]!)!.body).equals(png)).toBe(true);
    expect(css.split('\n')).toEqual([
      `.a{background:url(${names[0]})}`,
      `.b{background:url(${names[1]})}`,
      '.c{background:url(data:font/woff2;base64,AAAA)}',
      '.d{background:url(/img/x.png)}',
    ]);
  });

  it('is open even when API_KEY is set (so is the document)', async () => {
    expect((await app.request('/docs')).status).toBe(200);
    expect((await app.request('/openapi.json')).status).toBe(200);
    expect((await app.request('/api/v1/webhooks')).status).toBe(401);
  });
});
