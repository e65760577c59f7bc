import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Config } from '../../config.js';
import { defaultOutputOptions, OutputOptionError, parseOutputOptions } from '../../codecs/output-options.js';
import { parseRenditions, RenditionError, type RequestOptions } from '../../codecs/renditions.js';
import { AppError, badRequest } from '../../errors.js';
import { ingestUpload } from '../../ingest/ingest.js';
import type { Store } from '../../store/types.js';
import { assertWithinQuota } from '../../operations/quotas.js';
import { callerOf } from '../caller.js';
import { commonErrors, errorResponses, HEADERS, outputOptionFormFields, RenditionsFormField, RenditionSpecSchema } from '../schemas.js';
import { CSV_CONTENT_TYPES } from '../../ingest/multipart.js';
import { MAX_URL_LENGTH as MAX_WEBHOOK_URL_LENGTH } from '../../webhooks/receiver-url.js';

const Accepted = z.object({
  request_id: z.string().openapi({ example: '0f8fad5b-d9cb-469f-a165-70867728950e' }),
  status: z.literal('received'),
  message: z.string().openapi({ example: 'Processing started' }),
  products: z.number().int().min(1).openapi({ description: 'Products in the CSV', example: 2 }),
  images: z.number().int().min(0).openapi({ description: 'Distinct image URLs to process (a URL repeated in the request counts once)', example: 3 }),
  webhook_secret: z.string().optional().openapi({ description: 'Signing secret for the per-upload webhook_url (only when one was given); an idempotent replay returns it again' }),
}).openapi('UploadAccepted');

const route = createRoute({
  method: 'post', path: '/api/v1/upload', tags: ['requests'], summary: 'Upload a CSV of products and image URLs',
  description: 'The CSV is parsed as it streams in; any invalid row rejects the whole file (400 naming the line and column) and nothing is kept. The 202 is sent once the request and all its images are stored.',
  security: [{ ApiKey: [] }],
  request: {
    headers: z.object({
      'idempotency-key': z.string().min(1).max(200).optional().openapi({ description: 'Retrying with the same key returns the first answer and stores nothing new' }),
    }),
    body: {
      required: true,
      content: {
        'multipart/form-data': {
          schema: z.object({
            file: z.any().openapi({ type: 'string', format: 'binary', description: 'The CSV: `S. No.,Product Name,Input Image Urls` or `product_name,image_url`' }),
            webhook_url: z.string().max(MAX_WEBHOOK_URL_LENGTH).optional().openapi({ format: 'uri', description: 'A one-off receiver for this request’s events: an absolute http(s) URL (non-public addresses are refused unless in FETCH_ALLOWLIST)' }),
            ...outputOptionFormFields(),
            renditions: RenditionsFormField,
          }).required({ file: true }),
          // The file part's Content-Types the server takes (others: 415).
          encoding: { file: { contentType: CSV_CONTENT_TYPES.join(', ') } },
        },
      },
    },
  },
  responses: {
    202: { content: { 'application/json': { schema: Accepted } }, headers: { 'Idempotent-Replayed': HEADERS.idempotentReplayed }, description: 'Stored; processing starts' },
    400: errorResponses[400], 408: errorResponses[408], 409: errorResponses[409], 413: errorResponses[413], 415: errorResponses[415], 422: errorResponses[422], 429: errorResponses[429], ...commonErrors,
  },
});

export interface UploadRouteDeps {
  store: Store;
  config: Config;
  /** Called when an upload has been stored, so a local runner starts on it at once. */
  onRequestCommitted?: (() => void) | undefined;
}

export function registerUploadRoutes(app: OpenAPIHono, deps: UploadRouteDeps): void {
  const defaults = defaultOutputOptions(deps.config.JPEG_QUALITY);
  const parseOptions = (fields: Readonly<Record<string, string>>): RequestOptions => {
    try {
      const options = parseOutputOptions(fields, defaults);
      const renditions = parseRenditions(fields.renditions, options);
      return renditions.length ? { ...options, renditions } : options;
    } catch (err) {
      throw err instanceof OutputOptionError || err instanceof RenditionError ? badRequest(err.message) : err;
    }
  };
  // Documented from the route, but served by a plain handler: a validator would buffer the
  // whole multipart body, and the handler reads it as a stream instead.
  app.openAPIRegistry.registerPath(route);
  // The `renditions` field is JSON text; the objects it holds are documented as their own schema.
  app.openAPIRegistry.register('RenditionSpec', RenditionSpecSchema);
  app.post('/api/v1/upload', async (c) => {
    const key = c.req.header('idempotency-key') ?? null;
    if (key !== null && (key.length === 0 || key.length > 200)) throw new AppError(400, 'Idempotency-Key: must be 1 to 200 characters');
    try {
      const { tenantId, quotas } = callerOf(c);
      const maxImagesInFlight = quotas?.maxImagesInFlight ?? deps.config.MAX_IMAGES_IN_FLIGHT_PER_TENANT;
      await assertWithinQuota(deps.store, tenantId, {
        maxImagesInFlight,
        maxUploadsPerMinute: quotas?.maxUploadsPerMinute ?? deps.config.MAX_UPLOADS_PER_MINUTE,
      });
      const { request, replayed } = await ingestUpload(c.req.raw, deps, {
        tenantId, idempotencyKey: key, maxImagesInFlight,
        parseOptions,
      });
      if (!replayed) deps.onRequestCommitted?.();
      return c.json({
        request_id: request.id,
        status: 'received' as const,
        message: 'Processing started',
        products: request.productCount,
        images: request.total,
        ...(request.webhookUrl && request.webhookSecret ? { webhook_secret: request.webhookSecret } : {}),
      }, 202, replayed ? { 'idempotent-replayed': 'true' } : {});
    } catch (err) {
      // The rest of an oversized body is not read: tell the client the connection ends here.
      if (err instanceof AppError && err.status === 413) c.header('connection', 'close');
      throw err;
    }
  });
}
