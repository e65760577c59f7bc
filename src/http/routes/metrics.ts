// GET /metrics: Prometheus text exposition of this instance's registry (see src/metrics.ts).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Metrics } from '../../metrics.js';
import { requireBearerToken } from '../auth.js';
import { ErrorSchema, HEADERS } from '../schemas.js';

const route = createRoute({
  method: 'get', path: '/metrics', tags: ['operations'], summary: 'Prometheus metrics',
  description: 'Prometheus text format (prom-client): HTTP requests and latency by route and status, images processed by format and outcome, '
    + 'bytes in and out, compress time, queue depths, pool utilisation, webhook deliveries by outcome, oldest pending item age, '
    + 'plus Node process metrics. Not behind the API key; when the server sets METRICS_TOKEN it requires `Authorization: Bearer <METRICS_TOKEN>` '
    + '(401 without it or with a wrong one). Expose it to your scraper only.',
  responses: {
    200: {
      content: {
        'text/plain': {
          schema: z.string().openapi({ example: '# HELP images_processed_total ...\nimages_processed_total{format="jpeg",outcome="succeeded"} 3\n' }),
        },
      },
      description: 'Prometheus text exposition format 0.0.4',
    },
    401: { content: { 'application/json': { schema: ErrorSchema } }, headers: { 'WWW-Authenticate': HEADERS.wwwAuthenticate }, description: 'METRICS_TOKEN is set and the bearer token is missing or wrong' },
  },
});

export interface MetricsRouteDeps {
  metrics: Metrics;
  /** METRICS_TOKEN: when set, scrapers must send it as a bearer token. */
  token?: string | undefined;
}

export function registerMetricsRoute(app: OpenAPIHono, deps: MetricsRouteDeps): void {
  const { metrics, token } = deps;
  // Documented from the route, served by a plain handler (the body is text, not a zod schema).
  app.openAPIRegistry.registerPath(route);
  if (token) app.use(route.path, requireBearerToken(token, 'metrics'));
  app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' }));
}
