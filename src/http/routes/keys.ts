// API keys: each key is a tenant that owns what it makes. Only the admin (API_KEY) manages them.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { AppError, notFound } from '../../errors.js';
import type { Logger } from '../../log.js';
import { createApiKey, keyView } from '../../auth/api-keys.js';
import type { Store } from '../../store/types.js';
import { callerOf } from '../caller.js';
import { adminErrors, errorResponses, jsonBodyErrors, MAX_ID_LENGTH } from '../schemas.js';

const KeySchema = z.object({
  id: z.string().openapi({ example: 'key_6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b' }),
  name: z.string().openapi({ example: 'catalogue-importer' }),
  created_at: z.string().openapi({ format: 'date-time' }),
  max_images_in_flight: z.number().int().min(1).nullable().openapi({ description: 'This key’s quota of images not yet final; null: MAX_IMAGES_IN_FLIGHT_PER_TENANT' }),
  max_uploads_per_minute: z.number().int().min(1).nullable().openapi({ description: 'This key’s uploads per minute; null: MAX_UPLOADS_PER_MINUTE' }),
}).openapi('ApiKey');

const CreatedKeySchema = KeySchema.extend({
  key: z.string().openapi({ description: 'The key itself: shown this once, stored only as a hash' }),
}).openapi('CreatedApiKey');

const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({ content: { 'application/json': { schema } }, description });
const security = [{ ApiKey: [] }];

const createKeyRoute = createRoute({
  method: 'post', path: '/api/v1/keys', tags: ['keys'], summary: 'Create a tenant API key (admin only)', security,
  request: {
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z.object({
            name: z.string().trim().min(1).max(100),
            max_images_in_flight: z.number().int().min(1).max(100_000_000).optional(),
            max_uploads_per_minute: z.number().int().min(1).max(100_000).optional(),
          }),
        },
      },
    },
  },
  responses: { 201: json(CreatedKeySchema, 'The new key, shown once'), ...jsonBodyErrors, ...adminErrors },
});

const listKeysRoute = createRoute({
  method: 'get', path: '/api/v1/keys', tags: ['keys'], summary: 'List live API keys (admin only; never the keys themselves)', security,
  responses: { 200: json(z.object({ keys: z.array(KeySchema) }), 'Keys not revoked, oldest first'), ...adminErrors },
});

const revokeKeyRoute = createRoute({
  method: 'delete', path: '/api/v1/keys/{id}', tags: ['keys'], summary: 'Revoke an API key (admin only); refused at once', security,
  request: { params: z.object({ id: z.string().min(1).max(MAX_ID_LENGTH).openapi({ example: 'key_6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b' }) }) },
  responses: { 204: { description: 'Revoked' }, 400: errorResponses[400], 404: errorResponses[404], ...adminErrors },
});

function requireAdmin(c: Context): void {
  const caller = callerOf(c);
  if (!caller.keyed) throw new AppError(403, 'API keys are managed only when API_KEY is set: set API_KEY (the admin key) to create tenant keys');
  if (!caller.admin) throw new AppError(403, 'Only the admin key (API_KEY) manages API keys');
}

export function registerKeyRoutes(app: OpenAPIHono, deps: { store: Store; log: Logger }): void {
  const { store, log } = deps;
  app.openapi(createKeyRoute, async (c) => {
    requireAdmin(c);
    const body = c.req.valid('json');
    const { record, key } = await createApiKey(store, body.name, {
      maxImagesInFlight: body.max_images_in_flight ?? null, maxUploadsPerMinute: body.max_uploads_per_minute ?? null,
    });
    log.info({ id: record.id, name: record.name }, 'API key created');
    return c.json({ ...keyView(record), key }, 201);
  });
  app.openapi(listKeysRoute, async (c) => {
    requireAdmin(c);
    return c.json({ keys: (await store.listKeys()).map(keyView) }, 200);
  });
  app.openapi(revokeKeyRoute, async (c) => {
    requireAdmin(c);
    const { id } = c.req.valid('param');
    if (!(await store.revokeKey(id, Date.now()))) throw notFound('API key not found');
    log.info({ id }, 'API key revoked');
    return c.body(null, 204);
  });
}
