// API documentation: GET /openapi.json (OpenAPI 3.1, generated from the same zod schemas the
// routes validate with) and GET /docs (interactive reference, Swagger UI served from the
// installed package: see ../docs-page.ts). Also declares the
// security schemes and the webhooks this service sends, so the document describes both
// directions of the contract.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { EVENT_TYPES, type EventType } from '../../store/types.js';
import { packageVersion } from '../../version.js';
import { docsPageHtml, loadDocsAssets, type DocsAssets } from '../docs-page.js';
import { selfOnlyContentSecurityPolicy } from '../security-headers.js';
import { serveAsset } from '../static-asset.js';
import { ErrorSchema, errorResponses, HEADERS, ProgressSchema, RequestStatusSchema } from '../schemas.js';

const DESCRIPTION = `
Upload a CSV of products and image URLs; every image is downloaded, compressed (quality 50 by
default) and stored. Follow progress by request ID, download the output CSV, and get signed
webhooks when processing starts, completes, fails or is cancelled.

**Authentication.** When the server has \`API_KEY\` set, every \`/api/v1\` route requires
\`X-API-Key: <key>\` or \`Authorization: Bearer <key>\` (401 when missing, unknown or revoked; an
empty header counts as missing). Without \`API_KEY\` the API is open. Key management
(\`/api/v1/keys\`) is for the admin key only (403 for a tenant key). \`/images\`, \`/healthz\`, \`/readyz\` and the docs are never
behind the key; \`/metrics\` is behind \`METRICS_TOKEN\` (a bearer token) when the server sets one.

**Browsers.** A \`/api/v1\` request that carries an \`Origin\` header is refused (403) unless that is
the service's own origin or one listed in the server's \`CORS_ORIGINS\`; those get CORS answers
(preflight included), so a page there can call the API with its key.

**Errors** always have the body \`{ "detail": "..." }\`. A route's JSON body must be sent as
\`application/json\` (415 otherwise). A known path called with a method it does not serve answers
405 with an \`Allow\` header; \`HEAD\` is served wherever \`GET\` is.

**Request IDs.** Every response carries \`X-Request-Id\` (yours, if you sent a sane one); it is
in the server's log line for the request.

**Webhooks** (see the *Webhooks* section) follow the [Standard Webhooks](https://www.standardwebhooks.com/)
spec: verify \`webhook-signature\` with any Standard Webhooks library and your \`whsec_\` secret.
Delivery is at least once: deduplicate on \`webhook-id\`.
`.trim();

const TAGS = [
  { name: 'requests', description: 'Upload a CSV, follow its progress, download the output CSV' },
  { name: 'webhooks', description: 'Subscriptions to processing events, and their delivery log' },
  { name: 'keys', description: 'Tenant API keys (admin only): each key owns the requests, subscriptions and deliveries it makes' },
  { name: 'images', description: 'Compressed output images' },
  { name: 'dashboard', description: 'The web page at /: upload, live progress, outputs, webhook deliveries' },
  { name: 'health', description: 'Liveness and readiness probes' },
  { name: 'operations', description: 'Metrics and this documentation' },
];

// ---- webhooks this service sends ----------------------------------------------------------

const WebhookHeaders = z.object({
  'webhook-id': z.string().openapi({ description: 'Event id; the same on every retry of this event (deduplicate on it)', example: 'evt_7d0c2b9a-2222-4d55-9a8e-2f3f0c1d2e3f' }),
  'webhook-timestamp': z.string().openapi({ description: 'Unix seconds when this attempt was signed; reject stale ones (e.g. older than 5 minutes)', example: '1735732800' }),
  'webhook-signature': z.string().openapi({
    description: 'Space-separated `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`; the key is the base64-decoded part of the whsec_ secret. During a secret rotation two signatures are sent.',
    example: 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=',
  }),
});

const exampleBody = (type: EventType, status: string, progress: { total: number; done: number; failed: number }) => ({
  type,
  timestamp: '2025-01-01T12:00:05.000Z',
  data: {
    request_id: '0f8fad5b-d9cb-469f-a165-70867728950e',
    status,
    progress,
    output_csv_url: 'https://images.example.com/api/v1/status/0f8fad5b-d9cb-469f-a165-70867728950e/output.csv',
  },
});

const WEBHOOK_DOCS: Record<EventType, { summary: string; description: string; status: string; example: ReturnType<typeof exampleBody> }> = {
  'processing.started': {
    summary: 'A request started processing',
    description: 'Sent once, when the first image of the request is picked up.',
    status: 'processing',
    example: exampleBody('processing.started', 'processing', { total: 3, done: 0, failed: 0 }),
  },
  'processing.completed': {
    summary: 'A request finished with at least one image done',
    description: 'Every image has a final state and at least one succeeded; `progress.failed` counts the others (their reasons are in the status endpoint\'s `errors`).',
    status: 'completed',
    example: exampleBody('processing.completed', 'completed', { total: 3, done: 2, failed: 1 }),
  },
  'processing.failed': {
    summary: 'A request finished with no image done',
    description: 'Every image failed, or the request could not be processed.',
    status: 'failed',
    example: exampleBody('processing.failed', 'failed', { total: 3, done: 0, failed: 3 }),
  },
  'processing.cancelled': {
    summary: 'A request was cancelled',
    description: 'Images not yet started are never processed; the request is final.',
    status: 'cancelled',
    example: exampleBody('processing.cancelled', 'cancelled', { total: 3, done: 1, failed: 0 }),
  },
};

function registerWebhooks(app: OpenAPIHono): void {
  for (const type of EVENT_TYPES) {
    const d = WEBHOOK_DOCS[type];
    const body = z.object({
      type: z.literal(type),
      timestamp: z.string().openapi({ description: 'When the event happened (ISO 8601)' }),
      data: z.object({
        request_id: z.string(),
        status: RequestStatusSchema,
        progress: ProgressSchema,
        output_csv_url: z.string().openapi({ description: 'Where the output CSV is (complete once the request is final)' }),
        renditions: z.array(z.string()).optional().openapi({ description: 'The names of the renditions the upload asked for, in order (absent when none); their URLs are in the status and output.csv' }),
      }),
    }).openapi(`WebhookEvent_${type.replace('.', '_')}`, { example: d.example });
    app.openAPIRegistry.registerWebhook({
      method: 'post',
      path: type,
      tags: ['webhooks'],
      summary: d.summary,
      description: `${d.description} POSTed to every subscription for this event type and to the upload's own \`webhook_url\`, signed per Standard Webhooks. `
        + 'Answer 2xx within the timeout to acknowledge; anything else (or no answer) is retried with exponential backoff and jitter over hours, then marked failed.',
      request: {
        headers: WebhookHeaders,
        body: { required: true, content: { 'application/json': { schema: body } } },
      },
      responses: {
        200: { description: 'Any 2xx acknowledges the event' },
        default: { description: 'Anything else, or a timeout: the delivery is retried' },
      },
    });
  }
}

// ---- the documentation routes -------------------------------------------------------------

const openapiRoute = createRoute({
  method: 'get', path: '/openapi.json', tags: ['operations'], summary: 'This OpenAPI 3.1 document',
  responses: { 200: { content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } }, description: 'The OpenAPI document' }, 421: errorResponses[421] },
});

const docsRoute = createRoute({
  method: 'get', path: '/docs', tags: ['operations'], summary: 'Interactive API reference (HTML)',
  description: 'Renders /openapi.json with Swagger UI. Everything the page loads comes from this service (no CDN); its Content-Security-Policy allows nothing else.',
  responses: { 200: { content: { 'text/html': { schema: z.string() } }, description: 'The reference page' }, 421: errorResponses[421] },
});

const ASSETS_PATH = '/docs/assets';

const docsAssetRoute = createRoute({
  method: 'get', path: `${ASSETS_PATH}/{file}`, tags: ['operations'], summary: 'A file of the reference page (script, stylesheet, icon)',
  request: { params: z.object({ file: z.string().openapi({ example: 'swagger-ui-bundle.js' }) }) },
  responses: {
    200: {
      content: { 'text/javascript': { schema: z.string() }, 'text/css': { schema: z.string() }, 'image/svg+xml': { schema: z.string() }, 'image/png': { schema: z.any() } },
      headers: { ETag: HEADERS.etag },
      description: 'The file',
    },
    304: { headers: { ETag: HEADERS.etag }, description: 'Not modified (If-None-Match matched)' },
    404: { content: { 'application/json': { schema: ErrorSchema } }, description: 'No such file' },
    421: errorResponses[421],
  },
});

type OpenApiDocument = ReturnType<OpenAPIHono['getOpenAPI31Document']>;

interface Operation {
  security?: Record<string, string[]>[];
  responses?: Record<string, { headers?: Record<string, unknown> }>;
}

/**
 * What the route definitions leave out because it applies to all of them: every operation that
 * takes the API key also takes it as a bearer token, and every response carries X-Request-Id.
 */
function decorate(doc: OpenApiDocument): void {
  doc.components ??= {};
  doc.components.headers = {
    ...doc.components.headers,
    RequestId: {
      description: 'This request\'s id: the X-Request-Id you sent (up to 128 of A-Z a-z 0-9 . _ : = + / @ -), or a generated UUID. It is in the server log line for the request.',
      schema: { type: 'string', example: '3c5e2b1a-9f0d-4e57-8a61-0d2b7c9e4f10' },
    },
  };
  for (const item of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(item as Record<string, Operation>)) {
      if (!op || typeof op !== 'object' || !op.responses) continue;
      if (Array.isArray(op.security) && op.security.some((s) => 'ApiKey' in s) && !op.security.some((s) => 'Bearer' in s)) {
        op.security.push({ Bearer: [] });
      }
      for (const res of Object.values(op.responses)) {
        res.headers = { ...res.headers, 'X-Request-Id': { $ref: '#/components/headers/RequestId' } };
      }
    }
  }
}

export function buildOpenApiDocument(app: OpenAPIHono): OpenApiDocument {
  const doc = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'image-csv-processor',
      version: packageVersion(),
      description: DESCRIPTION,
      license: { name: 'MIT', url: 'https://opensource.org/license/mit' },
    },
    // Relative: "Try it out" calls the address this document was read from, whatever name
    // the server was reached by (PUBLIC_BASE_URL is only how it names itself in links).
    servers: [{ url: '/', description: 'This server' }],
    tags: TAGS,
  });
  decorate(doc);
  return doc;
}

export function registerDocsRoutes(app: OpenAPIHono): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'ApiKey', {
    type: 'apiKey', in: 'header', name: 'X-API-Key',
    description: 'The server\'s API_KEY. Required on /api/v1 routes only when the server has API_KEY set.',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'Bearer', {
    type: 'http', scheme: 'bearer',
    description: 'The same API key sent as `Authorization: Bearer <key>`.',
  });
  registerWebhooks(app);
  app.openAPIRegistry.registerPath(openapiRoute);
  app.openAPIRegistry.registerPath(docsRoute);
  app.openAPIRegistry.registerPath(docsAssetRoute);

  // Built on first request, when every route is registered; routes never change afterwards.
  let document: OpenApiDocument | null = null;
  app.get(openapiRoute.path, (c) => c.json((document ??= buildOpenApiDocument(app)) as unknown as Record<string, unknown>));

  const page = docsPageHtml({ title: 'image-csv-processor API', openapiUrl: openapiRoute.path, assetsPath: ASSETS_PATH });
  // "Try it out" sends requests to the document's server, which is this origin (servers: '/').
  const csp = selfOnlyContentSecurityPolicy();
  app.get(docsRoute.path, (c) => c.html(page, 200, { 'content-security-policy': csp, 'cache-control': 'no-cache' }));

  let assets: DocsAssets | null = null; // read from the package on first use: ~1.6 MB
  app.get(`${ASSETS_PATH}/:file`, (c) => serveAsset(c, (assets ??= loadDocsAssets()).get(c.req.param('file')), { 'cache-control': 'public, max-age=3600' }));
}
