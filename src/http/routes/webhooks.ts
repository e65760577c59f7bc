// Webhook subscriptions and their delivery log. Deliveries themselves are made by the
// dispatcher (src/webhooks/dispatcher.ts) from the store's outbox.
import { randomUUID } from 'node:crypto';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Config } from '../../config.js';
import { badRequest, notFound } from '../../errors.js';
import type { Logger } from '../../log.js';
import { EVENT_TYPES, type DeliveryAttempt, type DeliveryRecord, type EventType, type Store, type Subscription } from '../../store/types.js';
import { assertDeliverableUrl, MAX_URL_LENGTH } from '../../webhooks/receiver-url.js';
import { callerOf, listScope, mayAccess } from '../caller.js';
import { generateSecret, isSecret } from '../../webhooks/signing.js';
import { commonErrors, ErrorSchema, errorResponses, jsonBodyErrors } from '../schemas.js';

/** How long a rotated-out secret keeps signing alongside the new one. */
export const ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;

const TAG = 'webhooks';
const iso = (ms: number) => new Date(ms).toISOString();

// ---- schemas ------------------------------------------------------------------------------

const EventTypeSchema = z.enum(EVENT_TYPES as [EventType, ...EventType[]]).openapi({ example: 'processing.completed' });

/** whsec_ and base64 (padded or not) of 24 to 64 bytes: 32 to 88 characters; isSecret checks the byte count. */
const SECRET_PATTERN = '^whsec_[A-Za-z0-9+/]{30,86}[A-Za-z0-9+/=]{2}$';

const SecretSchema = z.string().regex(new RegExp(SECRET_PATTERN), 'must be whsec_ followed by base64 of 24 to 64 bytes').openapi({
  pattern: SECRET_PATTERN,
  description: 'Standard Webhooks signing secret: whsec_ followed by the base64 of a 24 to 64 byte key.',
  example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
});

const ConfigureBody = z
  .object({
    webhook_url: z.string().min(1).max(MAX_URL_LENGTH).openapi({ format: 'uri', description: 'Absolute http(s) URL of the receiver.', example: 'https://example.com/hooks/images' }),
    events: z
      .array(EventTypeSchema)
      .min(1)
      .optional()
      .openapi({ description: 'Events to receive; default: all four.', example: ['processing.completed', 'processing.failed'] }),
    secret: SecretSchema.optional().openapi({
      description: 'Your own signing secret (whsec_ + base64 of 24-64 bytes). Default: a new random secret (never the server\'s WEBHOOK_SECRET).',
    }),
  })
  .openapi('WebhookConfigureRequest');

const ConfigureResponse = z
  .object({
    message: z.string().openapi({ example: 'Webhook configured successfully' }),
    id: z.string().openapi({ example: 'wh_0b6c1f0e-4c0e-4d55-9a8e-2f3f0c1d2e3f' }),
    secret: SecretSchema,
    webhook_url: z.string().openapi({ example: 'https://example.com/hooks/images' }),
    events: z.array(EventTypeSchema),
    created_at: z.string().openapi({ example: '2025-01-01T12:00:00.000Z' }),
  })
  .openapi('WebhookConfigured');

const WebhookSchema = z
  .object({
    id: z.string().openapi({ example: 'wh_0b6c1f0e-4c0e-4d55-9a8e-2f3f0c1d2e3f' }),
    webhook_url: z.string().openapi({ example: 'https://example.com/hooks/images' }),
    events: z.array(EventTypeSchema),
    created_at: z.string().openapi({ example: '2025-01-01T12:00:00.000Z' }),
    previous_secret_expires_at: z
      .string()
      .nullable()
      .openapi({ description: 'While set and in the future, deliveries are also signed with the previous secret.', example: null }),
  })
  .openapi('Webhook');

const WebhookListSchema = z.object({ webhooks: z.array(WebhookSchema) }).openapi('WebhookList');

const RotateResponse = z
  .object({
    id: z.string().openapi({ example: 'wh_0b6c1f0e-4c0e-4d55-9a8e-2f3f0c1d2e3f' }),
    secret: SecretSchema,
    previous_secret_expires_at: z.string().openapi({ example: '2025-01-02T12:00:00.000Z' }),
  })
  .openapi('WebhookSecretRotated');

const AttemptSchema = z
  .object({
    attempt: z.number().int().openapi({ example: 1 }),
    at: z.string().openapi({ example: '2025-01-01T12:00:01.000Z' }),
    status_code: z.number().int().nullable().openapi({ example: 500 }),
    error: z.string().nullable().openapi({ example: null }),
    duration_ms: z.number().int().openapi({ example: 42 }),
  })
  .openapi('DeliveryAttempt');

const DeliverySchema = z
  .object({
    id: z.string().openapi({ example: 'dlv_5a1e0f5c-1111-4d55-9a8e-2f3f0c1d2e3f' }),
    event_id: z.string().openapi({ description: 'Sent as webhook-id; the same on every attempt.', example: 'evt_7d0c2b9a-2222-4d55-9a8e-2f3f0c1d2e3f' }),
    event_type: EventTypeSchema,
    request_id: z.string().openapi({ example: '3f2a6a0e-3333-4d55-9a8e-2f3f0c1d2e3f' }),
    url: z.string().openapi({ example: 'https://example.com/hooks/images' }),
    state: z.enum(['pending', 'delivered', 'failed']).openapi({ example: 'delivered' }),
    attempts: z.number().int().openapi({ example: 2 }),
    next_attempt_at: z.string().nullable().openapi({ description: 'When the next attempt is due (pending only).', example: null }),
    last_error: z.string().nullable().openapi({ example: null }),
    created_at: z.string().openapi({ example: '2025-01-01T12:00:00.000Z' }),
    updated_at: z.string().openapi({ example: '2025-01-01T12:00:06.000Z' }),
    attempt_log: z.array(AttemptSchema),
  })
  .openapi('Delivery');

const DeliveryPageSchema = z
  .object({
    deliveries: z.array(DeliverySchema),
    next_cursor: z.string().nullable().openapi({ description: 'Pass as ?cursor= for the next (older) page; null at the end.', example: null }),
  })
  .openapi('DeliveryPage');

const IdParam = z.object({
  id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: 'wh_0b6c1f0e-4c0e-4d55-9a8e-2f3f0c1d2e3f' }),
});
const DeliveryParams = IdParam.extend({
  delivery_id: z.string().min(1).openapi({ param: { name: 'delivery_id', in: 'path' }, example: 'dlv_5a1e0f5c-1111-4d55-9a8e-2f3f0c1d2e3f' }),
});
const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20).openapi({ param: { name: 'limit', in: 'query' }, example: 20 }),
  cursor: z.string().optional().openapi({ param: { name: 'cursor', in: 'query' } }),
});

const json = <T extends z.ZodType>(schema: T, description: string) => ({ content: { 'application/json': { schema } }, description });
const errors = { ...commonErrors };
const badId = { 400: json(ErrorSchema, 'Invalid input') };
const security = [{ ApiKey: [] }];
const notFoundResponse = { 404: json(ErrorSchema, 'Unknown webhook or delivery') };

// ---- routes -------------------------------------------------------------------------------

const configureRoute = createRoute({
  method: 'post',
  path: '/api/v1/webhook/configure',
  tags: [TAG],
  security,
  summary: 'Subscribe a receiver to processing events',
  description:
    'Validates the URL (absolute http(s); loopback, private and other non-public addresses are refused unless in FETCH_ALLOWLIST) and returns the subscription id and its signing secret. The secret is shown only here and on rotation.',
  request: { body: { required: true, content: { 'application/json': { schema: ConfigureBody } } } },
  responses: { 201: json(ConfigureResponse, 'Subscription created'), ...jsonBodyErrors, ...errors },
});

const listRoute = createRoute({
  method: 'get',
  path: '/api/v1/webhooks',
  tags: [TAG],
  security,
  summary: 'List subscriptions (secrets are not shown)',
  responses: { 200: json(WebhookListSchema, 'Subscriptions, oldest first'), ...errors },
});

const deleteRoute = createRoute({
  method: 'delete',
  path: '/api/v1/webhooks/{id}',
  tags: [TAG],
  security,
  summary: 'Remove a subscription',
  description: 'Its pending deliveries are marked failed.',
  request: { params: IdParam },
  responses: { 204: { description: 'Removed' }, ...errors, ...notFoundResponse },
});

const rotateRoute = createRoute({
  method: 'post',
  path: '/api/v1/webhooks/{id}/rotate-secret',
  tags: [TAG],
  security,
  summary: 'Replace the signing secret',
  description: 'Returns a new secret. For 24 hours deliveries carry two signatures, one per secret, so receivers can switch without losing messages.',
  request: { params: IdParam },
  responses: { 200: json(RotateResponse, 'New secret'), ...errors, ...notFoundResponse },
});

const deliveriesRoute = createRoute({
  method: 'get',
  path: '/api/v1/webhooks/{id}/deliveries',
  tags: [TAG],
  security,
  summary: 'Delivery log, newest first, with every attempt',
  request: { params: IdParam, query: PageQuery },
  responses: { 200: json(DeliveryPageSchema, 'One page of deliveries'), 400: errorResponses[400], ...errors, ...notFoundResponse },
});

const retryRoute = createRoute({
  method: 'post',
  path: '/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry',
  tags: [TAG],
  security,
  summary: 'Send a delivery again now',
  description: 'Puts a delivered or failed delivery back in the queue, due now; the resend is one more attempt (same webhook-id). The answer is the delivery as queued; its attempts are in the delivery log.',
  request: { params: DeliveryParams },
  responses: { 202: json(DeliverySchema, 'Queued'), ...errors, ...notFoundResponse },
});

// ---- handlers -----------------------------------------------------------------------------

export interface WebhookRouteDeps {
  store: Store;
  config: Pick<Config, 'WEBHOOK_SECRET' | 'FETCH_ALLOWLIST'>;
  log: Logger;
}

export function registerWebhookRoutes(app: OpenAPIHono, deps: WebhookRouteDeps): void {
  const { store, config } = deps;

  /** The caller's subscription, or 404 (another tenant's is not confirmed to exist). */
  const owned = async (c: Context, id: string): Promise<Subscription> => {
    const sub = await store.getSubscription(id);
    if (!sub || !mayAccess(callerOf(c), sub.tenantId)) throw notFound('Webhook not found');
    return sub;
  };

  app.openapi(configureRoute, async (c) => {
    const body = c.req.valid('json');
    const url = await assertDeliverableUrl(body.webhook_url, config.FETCH_ALLOWLIST);
    if (body.secret !== undefined && !isSecret(body.secret)) {
      throw badRequest('secret: must be whsec_ followed by base64 of 24 to 64 bytes');
    }
    const events = body.events ? EVENT_TYPES.filter((t) => body.events!.includes(t)) : [...EVENT_TYPES];
    const sub: Subscription = {
      id: `wh_${randomUUID()}`,
      tenantId: callerOf(c).tenantId,
      url,
      events,
      // A fresh secret unless one is given: never the operator's WEBHOOK_SECRET.
      secret: body.secret ?? generateSecret(),
      previousSecret: null,
      previousSecretExpiresAt: null,
      createdAt: Date.now(),
    };
    await store.createSubscription(sub);
    deps.log.info({ id: sub.id, url, events }, 'webhook subscription created');
    return c.json(
      { message: 'Webhook configured successfully', id: sub.id, secret: sub.secret, webhook_url: url, events, created_at: iso(sub.createdAt) },
      201,
    );
  });

  app.openapi(listRoute, async (c) => {
    const subs = await store.listSubscriptions(listScope(callerOf(c)));
    return c.json({ webhooks: subs.map(toWebhookView) }, 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const { id } = c.req.valid('param');
    await owned(c, id);
    if (!(await store.deleteSubscription(id))) throw notFound('Webhook not found');
    deps.log.info({ id }, 'webhook subscription deleted');
    return c.body(null, 204);
  });

  app.openapi(rotateRoute, async (c) => {
    const { id } = c.req.valid('param');
    await owned(c, id);
    const expiresAt = Date.now() + ROTATION_OVERLAP_MS;
    const sub = await store.rotateSecret({ id, newSecret: generateSecret(), previousSecretExpiresAt: expiresAt });
    if (!sub) throw notFound('Webhook not found');
    deps.log.info({ id }, 'webhook secret rotated');
    return c.json({ id: sub.id, secret: sub.secret, previous_secret_expires_at: iso(expiresAt) }, 200);
  });

  app.openapi(deliveriesRoute, async (c) => {
    const { id } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    await owned(c, id);
    const page = await store.listDeliveries(id, { limit, cursor: cursor ?? null });
    return c.json({ deliveries: page.items.map((d) => toDeliveryView(d, d.attemptLog)), next_cursor: page.nextCursor }, 200);
  });

  app.openapi(retryRoute, async (c) => {
    const { id, delivery_id } = c.req.valid('param');
    // A removed subscription's deliveries have nobody to go to (and are not listed either).
    await owned(c, id);
    const d = await store.retryDelivery({ subscriptionId: id, deliveryId: delivery_id, now: Date.now() });
    if (!d) throw notFound('Delivery not found');
    return c.json(toDeliveryView(d, []), 202);
  });
}

function toWebhookView(s: Subscription) {
  return {
    id: s.id,
    webhook_url: s.url,
    events: s.events,
    created_at: iso(s.createdAt),
    previous_secret_expires_at:
      s.previousSecretExpiresAt !== null && s.previousSecretExpiresAt > Date.now() ? iso(s.previousSecretExpiresAt) : null,
  };
}

function toDeliveryView(d: DeliveryRecord, attempts: DeliveryAttempt[]) {
  return {
    id: d.id,
    event_id: d.eventId,
    event_type: d.eventType,
    request_id: d.requestId,
    url: d.url,
    state: d.state,
    attempts: d.attempts,
    next_attempt_at: d.state === 'pending' ? iso(d.nextAttemptAt) : null,
    last_error: d.lastError,
    created_at: iso(d.createdAt),
    updated_at: iso(d.updatedAt),
    attempt_log: attempts.map((a) => ({
      attempt: a.attempt,
      at: iso(a.at),
      status_code: a.statusCode,
      error: a.error,
      duration_ms: a.durationMs,
    })),
  };
}
