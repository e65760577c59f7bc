// The caller's requests, newest first (the admin sees every tenant's).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Store } from '../../store/types.js';
import { callerOf, listScope } from '../caller.js';
import { commonErrors, errorResponses, RequestSummarySchema } from '../schemas.js';
import { requestView } from '../../views/request-views.js';

const listRequestsRoute = createRoute({
  method: 'get', path: '/api/v1/requests', tags: ['requests'], summary: 'List requests, newest first', security: [{ ApiKey: [] }],
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(1000).default(100).openapi({ description: 'Requests per page (1–1000, default 100)' }),
      cursor: z.string().max(200).optional(),
    }),
  },
  responses: {
    200: {
      content: { 'application/json': { schema: z.object({ requests: z.array(RequestSummarySchema), next_cursor: z.string().nullable() }) } },
      description: 'One page of requests; next_cursor is null on the last page',
    },
    400: errorResponses[400], ...commonErrors,
  },
});

export function registerRequestRoutes(app: OpenAPIHono, deps: { store: Store }): void {
  app.openapi(listRequestsRoute, async (c) => {
    const { limit, cursor } = c.req.valid('query');
    const page = await deps.store.listRequests({ tenantId: listScope(callerOf(c)), limit, cursor: cursor ?? null });
    return c.json({ requests: page.items.map(requestView), next_cursor: page.nextCursor }, 200);
  });
}
