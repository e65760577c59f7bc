// Shared response pieces for the route definitions (they also feed the OpenAPI document): the
// Error body, the error answers by status code with the headers they carry, and the common
// request and response headers. A status a route can answer is listed on its operation.
import { z } from '@hono/zod-openapi';
import { VISIBLE_STATUSES } from '../store/lifecycle.js';
import type { RequestStatus } from '../store/types.js';
import { OUTPUT_OPTION_FIELDS, type OutputOptionField, type OutputOptionName } from '../codecs/output-options.js';
import { MAX_RENDITIONS, RENDITION_NAME_PATTERN } from '../codecs/renditions.js';

export const ErrorSchema = z
  .object({ detail: z.string().openapi({ example: 'Request ID not found' }) })
  .openapi('Error');

type HeaderObject = { description: string; required?: boolean; schema: Record<string, unknown> };

/** Response headers, by name as sent. */
export const HEADERS = {
  retryAfter: { description: 'Seconds to wait before trying again', required: true, schema: { type: 'string', pattern: '^[0-9]+$', example: '30' } },
  wwwAuthenticate: { description: 'The scheme to authenticate with', required: true, schema: { type: 'string', example: 'Bearer realm="api"' } },
  etag: { description: 'A validator for this representation: send it back as If-None-Match to get a 304 while nothing changed', required: true, schema: { type: 'string', example: '"v12"' } },
  contentDisposition: { description: 'Saves the body as a file named after the request', required: true, schema: { type: 'string', example: 'attachment; filename="0f8fad5b-d9cb-469f-a165-70867728950e-output.csv"' } },
  idempotentReplayed: { description: 'Present (true) when this is the stored answer to an earlier upload with the same Idempotency-Key', required: false, schema: { type: 'string', pattern: '^true$' } },
} as const satisfies Record<string, HeaderObject>;

const error = (description: string, headers?: Record<string, HeaderObject>) => ({
  content: { 'application/json': { schema: ErrorSchema } },
  description,
  ...(headers ? { headers } : {}),
});

/** Every error answer a route can give, by status code; routes pick the ones they give. */
export const errorResponses = {
  400: error('Bad input (the detail names the field)'),
  401: error('API key missing, unknown or revoked (only when the server has API_KEY set)', { 'WWW-Authenticate': HEADERS.wwwAuthenticate }),
  403: error('A browser request from an origin that is not allowed (CORS_ORIGINS)'),
  404: error('Unknown resource'),
  408: error('The body arrived too slowly (UPLOAD_MIN_BYTES_PER_SEC) or not within the request timeout'),
  409: error('Conflict with the resource\'s current state'),
  413: error('Body too large'),
  415: error('Wrong Content-Type for this route\'s body'),
  421: error('Open mode only (no API_KEY): the request named a host that is not the service\'s own (loopback, PUBLIC_BASE_URL\'s host or ALLOWED_HOSTS)'),
  422: error('Idempotency-Key already used with a different upload'),
  429: error('Over a quota', { 'Retry-After': HEADERS.retryAfter }),
  500: error('Internal error'),
  503: error('Too many event streams are open on this server, or it is stopping', { 'Retry-After': HEADERS.retryAfter }),
} as const;

/** The error answers every /api/v1 route can give: the key check, the origin check, the host check, a fault. */
export const commonErrors = { 401: errorResponses[401], 403: errorResponses[403], 421: errorResponses[421], 500: errorResponses[500] } as const;

/** The answers of a route that is only for the admin key (403 also for a tenant key). */
export const adminErrors = {
  ...commonErrors,
  403: error('A browser request from an origin that is not allowed (CORS_ORIGINS), a tenant key (only the admin key manages keys), or a server without API_KEY'),
} as const;

/** What a route with a JSON body can answer about the body itself. */
export const jsonBodyErrors = { 400: errorResponses[400], 408: errorResponses[408], 413: errorResponses[413], 415: errorResponses[415] } as const;

/** The longest id a path accepts (longer: 400). */
export const MAX_ID_LENGTH = 100;

export const RequestIdParam = z.object({ request_id: z.string().min(1).max(MAX_ID_LENGTH).openapi({ example: '0f8fad5b-d9cb-469f-a165-70867728950e' }) });

export const RequestStatusSchema = z.enum(VISIBLE_STATUSES as [RequestStatus, ...RequestStatus[]]).openapi('RequestStatus');

export const ProgressSchema = z
  .object({ total: z.number().int().min(0), done: z.number().int().min(0), failed: z.number().int().min(0) })
  .openapi('Progress', { example: { total: 3, done: 2, failed: 1 } });

/** The uploaded file's base name as the request stores it. */
export const FileNameSchema = z.string().nullable().openapi({
  description: "The uploaded CSV file's base name (control characters removed, at most 255 characters); null when the upload gave none",
  example: 'products.csv',
});

export const ByteTotalsSchema = z.object({
  in: z.number().int().openapi({ description: 'Input bytes of the images done so far' }),
  out: z.number().int().openapi({ description: 'Output bytes of the images done so far' }),
}).openapi({ example: { in: 1_482_113, out: 402_559 } });

export const RequestSummarySchema = z.object({
  request_id: z.string(),
  status: RequestStatusSchema,
  file_name: FileNameSchema,
  progress: ProgressSchema,
  bytes: ByteTotalsSchema,
  created_at: z.string().openapi({ format: 'date-time' }),
  updated_at: z.string().openapi({ format: 'date-time' }),
}).openapi('RequestSummary');

/** One output option's schema, from its entry in the options table (kinds, limits and choices). */
function optionSchema(field: OutputOptionField) {
  if (field.kind === 'integer') return z.number().int().min(field.min).max(field.max);
  return field.kind === 'boolean' ? z.boolean() : z.enum(field.choices as [string, ...string[]]);
}

const OPTION_ENTRIES = Object.entries(OUTPUT_OPTION_FIELDS) as Array<[OutputOptionName, OutputOptionField]>;

/** The output options as upload form fields: each optional, described by its help line. */
export function outputOptionFormFields() {
  return Object.fromEntries(OPTION_ENTRIES.map(([name, f]) => [name, optionSchema(f).optional().openapi({ description: f.help })])) as unknown as Record<OutputOptionName, z.ZodTypeAny>;
}

/** The output options as the status shows them: every field filled in, null where there is no bound. */
export const OutputOptionsSchema = z.object(Object.fromEntries(OPTION_ENTRIES.map(([name, f]) => [name, f.default === null ? optionSchema(f).nullable() : optionSchema(f)])));

const RenditionName = z.string().regex(RENDITION_NAME_PATTERN).openapi({ description: 'Unique within the request: 1–32 characters of a-z, 0-9, _ and -', example: 'thumb' });

/** One rendition as asked for: its name and any output options (an omitted one is the request-level value). */
export const RenditionSpecSchema = z.object({
  name: RenditionName,
  ...Object.fromEntries(OPTION_ENTRIES.map(([name, f]) => [name, optionSchema(f).optional().openapi({ description: f.help })])),
}).strict().openapi('RenditionSpec');

/** The `renditions` upload form field: the JSON text of an array of RenditionSpec. */
export const RenditionsFormField = z.string().max(8192).optional().openapi({
  description: `Extra outputs of every image, made from its one download and decode: a JSON array of at most ${MAX_RENDITIONS} RenditionSpec objects `
    + '`{name, max_width?, max_height?, format?, quality?, progressive?}`; an omitted field takes the request-level value. '
    + 'The status lists each product\'s `renditions: {name: [url|null, …]}`, aligned with input_urls. Invalid: 400 naming the rendition and the field. '
    + 'For example `[{"name":"thumb","max_width":320,"format":"webp"},{"name":"large","max_width":1600}]`.',
});

/** A rendition as the status shows it: every field filled in. */
export const RenditionSchema = OutputOptionsSchema.extend({ name: RenditionName }).openapi('Rendition');

/** The request's options in the status: the request-level output's and the renditions asked for. */
export const RequestOptionsSchema = OutputOptionsSchema.extend({
  renditions: z.array(RenditionSchema).max(MAX_RENDITIONS).optional().openapi({ description: 'The renditions asked for with the upload (absent: none)' }),
});
