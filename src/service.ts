// Wires the parts of the shape in docs/architecture.md together for one instance, by ROLE:
// api = HTTP only; worker = pipeline runner + webhook dispatcher (+ health endpoints); all = both.
import { randomUUID } from 'node:crypto';
import type { Config } from './config.js';
import { createApp } from './http/app.js';
import { LiveEvents } from './live/live-events.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { OutputCleanup } from './operations/output-cleanup.js';
import { RequestActions } from './operations/request-actions.js';
import { Retention } from './operations/retention.js';
import { redactUrl } from './net/index.js';
import { PipelineRunner } from './pipeline/runner.js';
import { CompressPool } from './pipeline/pool.js';
import { serve, type ConnectionLimits, type RunningServer } from './runtime/serve.js';
import { openStorage } from './storage/open.js';
import { tightenPrivateFiles } from './storage/private-files.js';
import { openStore } from './store/open.js';
import type { ItemOutcome, ItemRecord, Store } from './store/types.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';

/** Uploads never stay 'ingesting' longer than this; older ones were left by a crash. */
const STALE_INGEST_MS = 60 * 60 * 1000;

export interface RunningService {
  server: RunningServer;
  store: Store;
  runner: PipelineRunner | null;
  metrics: Metrics;
  stop(): Promise<void>;
}

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const tightened = await tightenPrivateFiles(config.DATA_DIR, config.STORAGE === 'local' ? config.IMAGE_STORAGE_PATH : null);
  if (tightened.length > 0) {
    log.warn({ count: tightened.length, first: tightened[0] }, `tightened ${tightened.length} files and folders under DATA_DIR / IMAGE_STORAGE_PATH to 0600 / 0700 (they were readable by others)`);
  }
  const store = await openStore(config);
  const storage = openStorage(config);
  await storage.check();
  const processes = config.ROLE !== 'api';
  const metrics = new Metrics();

  const pool = processes
    ? new CompressPool({
      threads: config.WORKER_THREADS, maxPixels: config.MAX_IMAGE_PIXELS,
      maxDecodeMemoryMb: config.MAX_DECODE_MEMORY_MB,
      ...(config.CODEC_RUN_LOG ? { codecRunLog: config.CODEC_RUN_LOG } : {}),
      onTask: (t) => metrics.observeCompress(t.format, t.ok, t.seconds),
    })
    : null;
  const dispatcher = processes ? new WebhookDispatcher({
    store, log, publicBaseUrl: config.PUBLIC_BASE_URL,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    backoffScale: config.WEBHOOK_BACKOFF_SCALE,
    allowlist: config.FETCH_ALLOWLIST,
    connectTimeoutMs: config.FETCH_CONNECT_TIMEOUT_MS,
    defaultSecret: config.WEBHOOK_SECRET ?? null,
    // Shutdown must not wait on a slow receiver: an unfinished send is sent again later.
    stopGraceMs: Math.min(config.WEBHOOK_TIMEOUT_MS + 1000, 5000),
    onAttempt: (a) => metrics.observeWebhook(a.type, a.outcome, a.durationMs),
  }) : null;
  const runner = pool
    ? new PipelineRunner({
      config, store, storage, pool, log,
      onEvent: () => dispatcher?.wake(),
      onItem: (item, outcome, ms) => {
        metrics.observeItem(outcome, ms);
        logItem(log, item, outcome, ms);
      },
    })
    : null;
  const outputCleanup = new OutputCleanup({
    store, storage, log, graceMs: config.BLOB_GRACE_SECONDS * 1000, onRemoved: (n) => metrics.outputsRemoved.inc(n),
  });
  const actions = new RequestActions({
    store, cleanup: outputCleanup,
    onChange: () => { runner?.wake(); dispatcher?.wake(); },
    onDeleted: (reason) => metrics.requestsDeleted.inc({ reason }),
  });
  const retention = new Retention({
    store, actions, cleanup: outputCleanup, log, owner: `upkeep-${randomUUID()}`, retentionDays: config.REQUEST_RETENTION_DAYS ?? null,
  });
  metrics.attach({ store, ...(pool ? { pool } : {}), ...(runner ? { runner } : {}), ...(dispatcher ? { dispatcher } : {}) });

  const cleanupIngesting = async () => {
    const removed = await store.cleanupIngesting(Date.now() - STALE_INGEST_MS).catch((err) => {
      log.warn({ err }, 'cleaning up abandoned uploads failed');
      return 0;
    });
    if (removed) log.info({ removed }, 'removed uploads abandoned mid-ingest');
  };
  await cleanupIngesting();
  const cleanupTimer = setInterval(() => void cleanupIngesting(), STALE_INGEST_MS / 4);
  cleanupTimer.unref?.();

  const live = new LiveEvents({ config, store, log });
  metrics.attach({ eventStreams: live.streams });
  const app = createApp({
    config, store, storage, log, role: config.ROLE, live,
    ...(pool ? { poolCheck: () => pool.ready() } : {}),
    onRequestCommitted: () => runner?.wake(),
    metrics,
    actions,
  });
  if (!config.API_KEY && config.ROLE !== 'worker') {
    log.warn('API_KEY is not set: the API is OPEN to anyone who can reach this port. Set API_KEY to require X-API-Key.');
  }

  /** Everything but the HTTP server, in dependency order: no new work, then the parts it used. */
  const stopProcessing = async () => {
    clearInterval(cleanupTimer);
    await retention.stop();
    outputCleanup.stop();
    await runner?.stop();
    await dispatcher?.stop();
    await pool?.close();
    await store.close();
  };

  runner?.start();
  dispatcher?.start();
  retention.start();
  let server: RunningServer;
  try {
    server = await serve(app.fetch, {
      port: config.PORT, hostname: config.HOST, maxBodyBytes: config.MAX_UPLOAD_BYTES, limits: connectionLimits(config),
    });
  } catch (err) {
    await live.close();
    await stopProcessing(); // e.g. the port is taken: the caller reports it and exits cleanly
    throw err;
  }
  log.info({ port: server.port, runtime: server.runtime, role: config.ROLE, store: store.backend, storage: storage.kind }, whereToGo(config, server.port));

  let stopped: Promise<void> | null = null;
  const stop = () => (stopped ??= (async () => {
    await live.close(); // first: the server's close waits for open responses, and a stream never ends by itself
    await server.close();
    await stopProcessing();
  })());
  return { server, store, runner, metrics, stop };
}

function connectionLimits(config: Config): ConnectionLimits {
  return {
    headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    maxConnections: config.HTTP_MAX_CONNECTIONS,
    // The upload streams for as long as it keeps up UPLOAD_MIN_BYTES_PER_SEC (src/ingest/multipart.ts).
    untimed: (method, path) => method === 'POST' && path === '/api/v1/upload',
  };
}

/** One line per finished image: failures at info (with the reason), successes at debug. */
function logItem(log: Logger, item: ItemRecord, outcome: ItemOutcome, ms: number): void {
  // a line per image: build it only when its level is written (successes are debug)
  if (!log.isLevelEnabled(outcome.ok ? 'debug' : 'info')) return;
  const url = redactUrl(item.url);
  if (outcome.ok) {
    log.debug({ request_id: item.requestId, url, format: outcome.format, bytes_in: outcome.bytesIn, bytes_out: outcome.bytesOut, duration_ms: ms }, 'image processed');
  } else {
    log.info({ request_id: item.requestId, url, error: outcome.error, duration_ms: ms }, 'image failed');
  }
}

/**
 * The start-up line a newcomer reads: where the dashboard, the API docs and the OpenAPI document
 * are. A wildcard or loopback HOST is reached as localhost; any other HOST by its own address.
 */
export function whereToGo(config: Pick<Config, 'HOST' | 'ROLE'>, port: number): string {
  const host = config.HOST.trim();
  const local = ['', '0.0.0.0', '::', '[::]', 'localhost', '::1', '[::1]'].includes(host) || host.startsWith('127.');
  const shown = local ? 'localhost' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const base = `http://${shown}:${port}`;
  if (config.ROLE === 'worker') return `worker listening on ${base} (/healthz, /readyz and /metrics only)`;
  return `listening: open ${base}/ (dashboard), ${base}/docs (API docs), ${base}/openapi.json (OpenAPI document)`;
}
