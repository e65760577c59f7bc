import { createApp } from "./http/app.js";
import { CompressPool } from "./pipeline/pool.js";
import { PipelineRunner } from "./pipeline/runner.js";
import { serve } from "./runtime/serve.js";
import { openStorage } from "./storage/open.js";
import { openStore } from "./store/open.js";
import { WebhookDispatcher } from "./webhooks/dispatcher.js";
import { eventPayloadBuilder } from "./webhooks/payload.js";
const STALE_INGEST_MS = 60 * 60 * 1e3;
async function startService(config, log) {
  const store = await openStore(config);
  const storage = openStorage(config);
  await storage.check();
  const payload = eventPayloadBuilder(config.PUBLIC_BASE_URL);
  const processes = config.ROLE !== "api";
  const pool = processes ? new CompressPool({
    threads: config.WORKER_THREADS,
    maxPixels: config.MAX_IMAGE_PIXELS,
    jpegQuality: config.JPEG_QUALITY,
    ...config.CODEC_RUN_LOG ? { codecRunLog: config.CODEC_RUN_LOG } : {}
  }) : null;
  const dispatcher = processes ? new WebhookDispatcher({
    store,
    log,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    backoffScale: config.WEBHOOK_BACKOFF_SCALE,
    allowlist: config.FETCH_ALLOWLIST,
    connectTimeoutMs: config.FETCH_CONNECT_TIMEOUT_MS,
    defaultSecret: config.WEBHOOK_SECRET ?? null
  }) : null;
  const runner = pool ? new PipelineRunner({ config, store, storage, pool, log, payload, onEvent: () => dispatcher?.wake() }) : null;
  const cleanup = async () => {
    const removed = await store.cleanupIngesting(Date.now() - STALE_INGEST_MS).catch((err) => {
      log.warn({ err }, "cleaning up abandoned uploads failed");
      return 0;
    });
    if (removed) log.info({ removed }, "removed uploads abandoned mid-ingest");
  };
  await cleanup();
  const cleanupTimer = setInterval(() => void cleanup(), STALE_INGEST_MS / 4);
  cleanupTimer.unref?.();
  const app = createApp({
    config,
    store,
    storage,
    log,
    role: config.ROLE,
    ...pool ? { poolCheck: () => pool.ready() } : {},
    onRequestCommitted: () => runner?.wake()
  });
  if (!config.API_KEY && config.ROLE !== "worker") {
    log.warn("API_KEY is not set: the API is OPEN to anyone who can reach this port. Set API_KEY to require X-API-Key.");
  }
  runner?.start();
  dispatcher?.start();
  const server = await serve(app.fetch, { port: config.PORT, hostname: config.HOST, maxBodyBytes: config.MAX_UPLOAD_BYTES });
  log.info({ port: server.port, runtime: server.runtime, role: config.ROLE, store: store.backend, storage: storage.kind }, "listening");
  let stopped = null;
  const stop = () => stopped ??= (async () => {
    clearInterval(cleanupTimer);
    await server.close();
    await runner?.stop();
    await dispatcher?.stop();
    await pool?.close();
    await store.close();
  })();
  return { server, store, runner, stop };
}
export {
  startService
};
//# sourceMappingURL=service.js.map
