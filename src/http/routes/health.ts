import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Logger } from '../../log.js';
import type { BlobStorage } from '../../storage/types.js';
import type { Store } from '../../store/types.js';

const Health = z.object({
  status: z.string().openapi({ example: 'ready' }),
  checks: z.record(z.string(), z.enum(['ok', 'failed'])).optional().openapi({
    description: 'Each check by name (store, storage, pool) and its state; why one failed is in the server log, never here.',
    example: { store: 'ok', storage: 'ok', pool: 'ok' },
  }),
}).openapi('Health');

const liveness = createRoute({
  method: 'get', path: '/healthz', tags: ['health'], summary: 'Liveness: the process answers',
  responses: { 200: { content: { 'application/json': { schema: Health } }, description: 'Alive' } },
});

const readiness = createRoute({
  method: 'get', path: '/readyz', tags: ['health'], summary: 'Readiness: store reachable, storage usable, pool up',
  responses: {
    200: { content: { 'application/json': { schema: Health } }, description: 'Ready' },
    503: { content: { 'application/json': { schema: Health } }, description: 'Not ready; checks say which part' },
  },
});

export interface HealthRouteDeps {
  store: Pick<Store, 'ping'>;
  storage: Pick<BlobStorage, 'check'>;
  /** Throws unless the compression pool is up; absent when this instance runs no pipeline. */
  poolCheck?: (() => Promise<void>) | undefined;
  log: Logger;
}

export function registerHealthRoutes(app: OpenAPIHono, deps: HealthRouteDeps): void {
  app.openapi(liveness, (c) => c.json({ status: 'ok' }, 200));
  app.openapi(readiness, async (c) => {
    const checks: Record<string, 'ok' | 'failed'> = {};
    const probe = async (name: string, fn: () => Promise<void> | void) => {
      try {
        await fn();
        checks[name] = 'ok';
      } catch (err) {
        // The reason (paths, hosts, driver messages) is for operators: logged, not answered.
        deps.log.warn({ err, check: name }, 'readiness check failed');
        checks[name] = 'failed';
      }
    };
    await Promise.all([
      probe('store', () => deps.store.ping()),
      probe('storage', () => deps.storage.check()),
      ...(deps.poolCheck ? [probe('pool', deps.poolCheck)] : []),
    ]);
    const ready = Object.values(checks).every((v) => v === 'ok');
    return c.json({ status: ready ? 'ready' : 'not ready', checks }, ready ? 200 : 503);
  });
}
