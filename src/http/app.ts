// The HTTP edge: routes, auth and the one place where errors become responses.
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { Metrics } from '../metrics.js';
import type { BlobStorage } from '../storage/types.js';
import type { Store } from '../store/types.js';
import { requireApiKey } from './auth.js';
import { observeRequests } from './observe.js';
import { registerDocsRoutes } from './routes/docs.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerImageRoutes } from './routes/images.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { registerStatusRoutes } from './routes/status.js';
import { registerUploadRoutes } from './routes/upload.js';
import { registerWebhookRoutes } from './routes/webhooks.js';

export interface AppDeps {
  config: Config;
  store: Store;
  storage: BlobStorage;
  log: Logger;
  /** 'worker' instances serve only the health endpoints. */
  role?: Config['ROLE'];
  /** Throws unless the compression pool is up; absent when this instance runs no pipeline. */
  poolCheck?: () => Promise<void>;
  /** Called when an upload has been stored, so a local runner starts on it at once. */
  onRequestCommitted?: () => void;
  /** This instance's metrics registry (served at /metrics); a fresh one when absent. */
  metrics?: Metrics;
}

export type App = OpenAPIHono;

export function errorResponse(c: Context, status: number, detail: string) {
  return c.json({ detail }, status as 400);
}

export function createApp(deps: AppDeps): App {
  const app = new OpenAPIHono({
    // Schema validation failures answer like every other bad input: 400 { detail }.
    defaultHook: (result, c) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
        return errorResponse(c, 400, `${where}${issue?.message ?? 'invalid request'}`);
      }
    },
  });

  const metrics = deps.metrics ?? new Metrics({ defaultMetrics: false });
  // First: request id, one log line per request, HTTP metrics.
  app.use('*', observeRequests({ log: deps.log, metrics }));

  app.onError((err, c) => {
    if (err instanceof AppError) return errorResponse(c, err.status, err.detail);
    // Hono's own refusals (e.g. a malformed JSON body) keep their status and get our shape.
    if (err instanceof HTTPException && err.status < 500) return errorResponse(c, err.status, err.message || 'Bad request');
    deps.log.error({ err, req_id: c.get('requestId'), path: c.req.path }, 'unhandled error');
    return errorResponse(c, 500, 'Internal server error');
  });
  app.notFound((c) => errorResponse(c, 404, 'Not found'));

  registerHealthRoutes(app, deps);
  registerMetricsRoute(app, metrics);
  if (deps.role === 'worker') return app;

  registerDocsRoutes(app, deps);

  if (deps.config.API_KEY) app.use('/api/v1/*', requireApiKey(deps.config.API_KEY));
  // JSON bodies are small; only the upload streams, under its own limit.
  app.use('/api/v1/webhook*', bodyLimit({ maxSize: 64 * 1024, onError: (c) => errorResponse(c, 413, 'Body too large: the limit is 64 KiB') }));
  registerUploadRoutes(app, deps);
  registerStatusRoutes(app, deps);
  registerWebhookRoutes(app, deps);
  registerImageRoutes(app, deps);
  return app;
}
