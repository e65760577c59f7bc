import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { notFound } from '../../errors.js';
import { defaultOutputOptions, storedOutputOptions } from '../../codecs/output-options.js';
import type { ItemOutcomeKind, Store } from '../../store/types.js';
import { callerOf, mayAccess } from '../caller.js';
import { outputCsvStream } from '../../views/output-csv.js';
import { StatusCache } from '../status-cache.js';
import { ByteTotalsSchema, commonErrors, errorResponses, FileNameSchema, HEADERS, ProgressSchema, RequestIdParam, RequestOptionsSchema, RequestStatusSchema } from '../schemas.js';
import { imageUrl, outputCsvRows, productViews, renditionNamesOf, requestStatusView } from '../../views/request-views.js';

const OUTCOMES = ['compressed', 'reused', 'passed_through', 'original_kept'] as const satisfies readonly ItemOutcomeKind[];


const ProductSchema = z.object({
  serial_number: z.number().int(),
  product_name: z.string(),
  input_urls: z.array(z.string()),
  output_urls: z.array(z.string().nullable()).openapi({ description: 'output_urls[i] belongs to input_urls[i]; null where that image failed or is not done yet' }),
  processing_status: z.enum(['pending', 'processing', 'completed', 'failed']),
  errors: z.array(z.string().nullable()).openapi({ description: 'errors[i] says why input_urls[i] failed' }),
  outcomes: z.array(z.enum(OUTCOMES).nullable()).openapi({
    description: 'How output_urls[i] came about; original_kept: compressing did not make it smaller, so the (metadata-stripped) source is the output. Null while pending or when it failed.',
  }),
  notes: z.array(z.string().nullable()).openapi({
    description: 'Parallel to outcomes: what to know about that image, e.g. "converted from HEIC", "first frame of 12", "no CMYK profile: approximate colours" (several joined with "; "); null when there is nothing to say, while pending or when it failed.',
  }),
  input_bytes: z.array(z.number().int().nullable()).openapi({ description: 'Size of the downloaded input_urls[i]; null while pending or when it failed' }),
  output_bytes: z.array(z.number().int().nullable()).openapi({ description: 'Size of output_urls[i]; null while pending or when it failed' }),
  qualities: z.array(z.number().int().min(1).max(100).nullable()).openapi({
    description: 'The encoder quality output_urls[i] was made with (with quality=auto: the one the search found); null where no encode happened (pending, failed, passed_through, original_kept) or the format has none (PNG). The request-level output only: renditions report no quality',
  }),
  scores: z.array(z.number().nullable()).openapi({
    description: 'The SSIMULACRA2 score output_urls[i] reached against the decoded, upright, resized source (100 identical, 90 visually lossless, 70 high, 50 medium); measured with quality=auto on JPEG and WebP outputs, null elsewhere. The request-level output only: renditions report no score',
  }),
  renditions: z.record(z.string(), z.array(z.string().nullable())).optional().openapi({
    description: 'Only when the request asked for renditions: by rendition name, the URLs aligned with input_urls like output_urls (null while pending or when the image failed)',
    example: { thumb: ['http://localhost:3000/images/3b9f…webp', null] },
  }),
}).openapi('Product');

const StatusSchema = z.object({
  request_id: z.string(),
  status: RequestStatusSchema,
  file_name: FileNameSchema,
  progress: ProgressSchema,
  created_at: z.string().openapi({ format: 'date-time' }),
  updated_at: z.string().openapi({ format: 'date-time' }),
  bytes: ByteTotalsSchema,
  options: RequestOptionsSchema.openapi({ description: 'The output options used, defaults filled in (`original` keeps each input’s format)' }),
  products: z.array(ProductSchema),
  next_cursor: z.string().nullable().openapi({ description: 'Pass as ?cursor= for the next page of products; null on the last page' }),
}).openapi('RequestStatusResponse');

const statusRoute = createRoute({
  method: 'get', path: '/api/v1/status/{request_id}', tags: ['requests'], summary: 'Progress and results of a request',
  security: [{ ApiKey: [] }],
  request: {
    params: RequestIdParam,
    query: z.object({
      limit: z.coerce.number().int().min(1).max(1000).default(100).openapi({ description: 'Products per page (1–1000, default 100)' }),
      cursor: z.string().max(200).optional(),
    }),
    headers: z.object({
      'if-none-match': z.string().optional().openapi({ description: 'The ETag of a page you hold: while the request has not changed, the answer is 304 with no body' }),
    }),
  },
  responses: {
    200: { content: { 'application/json': { schema: StatusSchema } }, headers: { ETag: HEADERS.etag }, description: 'The request' },
    304: { headers: { ETag: HEADERS.etag }, description: 'Not modified: the request has not changed since the ETag sent in If-None-Match' },
    400: errorResponses[400], 404: errorResponses[404], ...commonErrors,
  },
});

const csvRoute = createRoute({
  method: 'get', path: '/api/v1/status/{request_id}/output.csv', tags: ['requests'], summary: 'The output CSV',
  description: '`S. No.,Product Name,Input Image Urls,Output Image Urls`, URL lists comma-joined in one quoted cell; a failed or unfinished image leaves an empty entry.',
  security: [{ ApiKey: [] }],
  request: { params: RequestIdParam },
  responses: {
    200: { content: { 'text/csv': { schema: z.string() } }, headers: { 'Content-Disposition': HEADERS.contentDisposition }, description: 'The CSV' },
    400: errorResponses[400], 404: errorResponses[404], ...commonErrors,
  },
});

const etagOf = (version: number) => `"v${version}"`;

export function registerStatusRoutes(app: OpenAPIHono, deps: { store: Store; publicBaseUrl: string; jpegQuality: number }): void {
  const { store } = deps;
  const urlOf = imageUrl(deps.publicBaseUrl);
  const defaults = defaultOutputOptions(deps.jpegQuality);
  // Another tenant's request is "not found", not forbidden: its existence is not confirmed.
  const load = async (c: Context, id: string) => {
    const request = await store.getRequest(id);
    if (!request || !mayAccess(callerOf(c), request.tenantId)) throw notFound('Request ID not found');
    return request;
  };

  const pages = new StatusCache();
  app.openapi(statusRoute, async (c) => {
    const { request_id } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    // The page is a function of (version, limit, cursor): same version, same bytes. A poll that
    // holds a page is answered from the version alone while it matches, without the row.
    const held = c.req.header('if-none-match')?.split(/\s*,\s*/);
    if (held) {
      const current = await store.getRequestVersion(request_id);
      if (!current || !mayAccess(callerOf(c), current.tenantId)) throw notFound('Request ID not found');
      const etag = etagOf(current.version);
      if (held.includes(etag)) return c.body(null, 304, { etag }) as never;
    }
    const request = await load(c, request_id);
    const etag = etagOf(request.version);
    const key = `${request.id}\n${limit}\n${cursor ?? ''}`;
    let body = pages.get(key, request.version);
    if (body === undefined) {
      const page = await store.listProducts(request.id, { limit, cursor: cursor ?? null });
      const products = await productViews(store, request.id, page.items, urlOf, renditionNamesOf(request));
      body = JSON.stringify({ ...requestStatusView(request), options: storedOutputOptions(request.options, defaults), products, next_cursor: page.nextCursor });
      pages.set(key, request.version, body);
    }
    return c.body(body, 200, { 'content-type': 'application/json', etag }) as never;
  });

  app.openapi(csvRoute, async (c) => {
    const request = await load(c, c.req.valid('param').request_id);
    const names = renditionNamesOf(request);
    return c.body(outputCsvStream(outputCsvRows(store, request.id, urlOf, names), names), 200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="${request.id}-output.csv"`,
    }) as never;
  });
}
