// Shared response pieces for the route definitions (they also feed the OpenAPI document).
import { z } from '@hono/zod-openapi';

export const ErrorSchema = z
  .object({ detail: z.string().openapi({ example: 'Request ID not found' }) })
  .openapi('Error');

const error = (description: string) => ({ content: { 'application/json': { schema: ErrorSchema } }, description });

/** The error answers every /api/v1 route can give, by status code. */
export const commonErrors = {
  401: error('API key missing, unknown or revoked (only when API_KEY is set)'),
  403: error('A browser request from an origin that is not allowed (CORS_ORIGINS), or an admin-only route called with a tenant key'),
  500: error('Internal error'),
} as const;

export const errorResponses = {
  400: error('Bad input'),
  404: error('Unknown resource'),
  409: error('Conflict'),
  413: error('Upload too large'),
  415: error('Not a CSV upload'),
  422: error('Idempotency-Key already used with a different upload'),
  429: error('Over a quota (see Retry-After)'),
  503: error('Too many event streams are open on this server, or it is stopping (see Retry-After)'),
} as const;

export const RequestIdParam = z.object({ request_id: z.string().min(1).max(100).openapi({ example: '0f8fad5b-d9cb-469f-a165-70867728950e' }) });

export const RequestStatusSchema = z.enum(['received', 'processing', 'completed', 'failed', 'cancelled']).openapi('RequestStatus');

export const ProgressSchema = z
  .object({ total: z.number().int(), done: z.number().int(), failed: z.number().int() })
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
  created_at: z.string(),
  updated_at: z.string(),
}).openapi('RequestSummary');
