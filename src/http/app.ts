// The HTTP edge: mounts the middleware and the routes, handing each route only what it needs.
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { Metrics } from '../metrics.js';
import type { BlobStorage } from '../storage/types.js';
import { RequestActions } from '../operations/request-actions.js';
import type { Store } from '../store/types.js';
import { identifyCaller } from './caller.js';
import { LiveEvents } from '../live/live-events.js';
import { crossOriginPolicy } from './cross-origin.js';
import { errorHandler, notFoundOrNotAllowed, validationHook } from './error-handler.js';
import { requireJsonBody } from './json-body.js';
import { hostCheck } from './host-check.js';
import { observeRequests } from './observe.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerDocsRoutes } from './routes/docs.js';
import { registerEventRoutes } from './routes/events.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerImageRoutes } from './routes/images.js';
import { registerKeyRoutes } from './routes/keys.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { registerRequestActionRoutes } from './routes/request-actions.js';
import { registerRequestRoutes } from './routes/requests.js';
import { registerStatusRoutes } from './routes/status.js';
import { registerUploadRoutes } from './routes/upload.js';
import { registerWebhookRoutes } from './routes/webhooks.js';
import { securityHeaders } from './security-headers.js';

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
  /** Cancel, retry, delete (with output clean-up); apps built without one act on the store alone. */
  actions?: RequestActions;
  /** The live progress streams (the service closes them at shutdown); fresh ones when absent. */
  live?: LiveEvents;
}

export type App = OpenAPIHono;

export function createApp(deps: AppDeps): App {
  const app = new OpenAPIHono({ defaultHook: validationHook });

  const metrics = deps.metrics ?? new Metrics({ defaultMetrics: false });
  // First: request id, one log line per request, HTTP metrics.
  app.use('*', observeRequests({ log: deps.log, metrics }));
  app.use('*', securityHeaders());

  app.onError(errorHandler(deps.log));
  // A known path asked with another method is 405 with Allow; anything else 404.
  app.notFound(notFoundOrNotAllowed(() => app.routes));
  app.use('*', hostCheck({ apiKey: deps.config.API_KEY, publicBaseUrl: deps.config.PUBLIC_BASE_URL, allowedHosts: deps.config.ALLOWED_HOSTS }));

  registerHealthRoutes(app, deps);
  registerMetricsRoute(app, { metrics, token: deps.config.METRICS_TOKEN });
  if (deps.role === 'worker') return app;

  registerDocsRoutes(app);
  registerDashboardRoutes(app);

  // Before the key check: a preflight carries no key, and a foreign page is refused either way.
  app.use('/api/v1/*', crossOriginPolicy({ publicBaseUrl: deps.config.PUBLIC_BASE_URL, allowedOrigins: deps.config.CORS_ORIGINS }));
  app.use('/api/v1/*', identifyCaller({ apiKey: deps.config.API_KEY, store: deps.store }));
  // JSON bodies are small; only the upload streams, under its own limit.
  app.use('/api/v1/keys', bodyLimit({ maxSize: 4 * 1024, onError: () => { throw new AppError(413, 'Body too large: the limit is 4 KiB'); } }));
  app.use('/api/v1/webhook*', bodyLimit({ maxSize: 64 * 1024, onError: () => { throw new AppError(413, 'Body too large: the limit is 64 KiB'); } }));
  app.use('/api/v1/keys', requireJsonBody());
  app.use('/api/v1/webhook/configure', requireJsonBody());
  registerUploadRoutes(app, deps);
  registerStatusRoutes(app, { store: deps.store, publicBaseUrl: deps.config.PUBLIC_BASE_URL, jpegQuality: deps.config.JPEG_QUALITY });
  registerRequestRoutes(app, { store: deps.store });
  registerRequestActionRoutes(app, { store: deps.store, actions: deps.actions ?? new RequestActions({ store: deps.store }) });
  registerEventRoutes(app, { store: deps.store, live: deps.live ?? new LiveEvents(deps) });
  registerWebhookRoutes(app, deps);
  registerKeyRoutes(app, { store: deps.store, log: deps.log });
  registerImageRoutes(app, deps);
  return app;
}
