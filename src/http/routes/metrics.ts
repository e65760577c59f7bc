// GET /metrics: Prometheus text exposition of this instance's registry (see src/metrics.ts).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Metrics } from '../../metrics.js';

const route = createRoute({
  method: 'get', path: '/metrics', tags: ['operations'], summary: 'Prometheus metrics',
  description: 'Prometheus text format (prom-client): HTTP requests and latency by route and status, images processed by format and outcome, '
    + 'bytes in and out, compress time, queue depths, pool utilisation, webhook deliveries by outcome, oldest pending item age, '
    + 'plus Node process metrics. Not behind the API key: expose it to your scraper only.',
  responses: {
    200: {
      content: {
        'text/plain': {
          schema: z.string().openapi({ example: '# HELP images_processed_total ...\nimages_processed_total{format="jpeg",outcome="succeeded"} 3\n' }),
        },
      },
      description: 'Prometheus text exposition format 0.0.4',
    },
  },
});

export function registerMetricsRoute(app: OpenAPIHono, metrics: Metrics): void {
  // Documented from the route, served by a plain handler (the body is text, not a zod schema).
  app.openAPIRegistry.registerPath(route);
  app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' }));
}
