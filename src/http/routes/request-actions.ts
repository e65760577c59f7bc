// Cancel, retry the failed images of, or delete a request. Another tenant's request is 404.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { notFound } from '../../errors.js';
import type { RequestActions } from '../../operations/request-actions.js';
import type { Store } from '../../store/types.js';
import { callerOf, mayAccess } from '../caller.js';
import { commonErrors, errorResponses, RequestIdParam } from '../schemas.js';

const params = RequestIdParam;
const security = [{ ApiKey: [] }];
const Accepted = z.object({ request_id: z.string(), status: z.enum(['cancelled', 'received']), message: z.string() }).openapi('RequestActionAccepted');
const accepted = (description: string) => ({ content: { 'application/json': { schema: Accepted } }, description });

const cancelRoute = createRoute({
  method: 'post', path: '/api/v1/requests/{request_id}/cancel', tags: ['requests'], security,
  summary: 'Cancel a running request',
  description: 'Images not yet started are never started; images in flight finish or are dropped. The request becomes `cancelled` and a `processing.cancelled` event goes out.',
  request: { params },
  responses: { 202: accepted('Cancelled'), 400: errorResponses[400], 404: errorResponses[404], 409: errorResponses[409], ...commonErrors },
});

const retryRoute = createRoute({
  method: 'post', path: '/api/v1/requests/{request_id}/retry', tags: ['requests'], security,
  summary: 'Retry the failed images of a finished request',
  description: 'Every failed image goes back in the queue with fresh attempts; images that succeeded are not touched. The request goes back to `processing` and its events follow as for a new run.',
  request: { params },
  responses: { 202: accepted('Queued again'), 400: errorResponses[400], 404: errorResponses[404], 409: errorResponses[409], ...commonErrors },
});

const deleteRoute = createRoute({
  method: 'delete', path: '/api/v1/requests/{request_id}', tags: ['requests'], security,
  summary: 'Delete a request and its outputs',
  description: 'Cancels it first if it is running, then removes the request, its products, images, events and delivery log: its status and output CSV answer 404 at once. Each output image no other request refers to is removed from storage once BLOB_GRACE_SECONDS have passed.',
  request: { params },
  responses: { 204: { description: 'Deleted' }, 400: errorResponses[400], 404: errorResponses[404], ...commonErrors },
});

export function registerRequestActionRoutes(app: OpenAPIHono, deps: { store: Store; actions: RequestActions }): void {
  const owned = async (c: Context, id: string) => {
    const request = await deps.store.getRequest(id);
    if (!request || !mayAccess(callerOf(c), request.tenantId)) throw notFound('Request ID not found');
  };
  app.openapi(cancelRoute, async (c) => {
    const { request_id } = c.req.valid('param');
    await owned(c, request_id);
    await deps.actions.cancel(request_id);
    return c.json({ request_id, status: 'cancelled' as const, message: 'Request cancelled' }, 202);
  });
  app.openapi(retryRoute, async (c) => {
    const { request_id } = c.req.valid('param');
    await owned(c, request_id);
    const n = await deps.actions.retry(request_id);
    return c.json({ request_id, status: 'received' as const, message: `Retrying ${n} failed image${n === 1 ? '' : 's'}` }, 202);
  });
  app.openapi(deleteRoute, async (c) => {
    const { request_id } = c.req.valid('param');
    await owned(c, request_id);
    await deps.actions.delete(request_id);
    return c.body(null, 204);
  });
}
