// Prometheus metrics (prom-client) for one service instance. Each instance has its own registry
// (never prom-client's global one), so several apps can live in one process (tests).
//
// Counters and histograms are fed by hooks (HTTP middleware, runner onItem, the timed compress
// pool, the webhook dispatcher's onAttempt); gauges are read when /metrics is scraped, from the
// store (pendingStats: all runners' work), the pool and the local runner and dispatcher.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PoolStats } from './pipeline/pool.js';
import type { AttemptOutcome, EventType, ItemOutcome, Store } from './store/types.js';

export interface MetricsSources {
  /** Work across all runners sharing the store: pending/running items, oldest pending age. */
  store?: Pick<Store, 'pendingStats'>;
  pool?: { stats(): PoolStats };
  runner?: { readonly inFlight: number };
  dispatcher?: { readonly inFlight: number };
  eventStreams?: { readonly size: number };
}

export interface MetricsOptions {
  /** Node process metrics (CPU, memory, event loop lag, GC). Default true. */
  defaultMetrics?: boolean;
  /** Constant labels on every series, e.g. { role: 'worker' }. */
  labels?: Record<string, string>;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const ITEM_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly imagesProcessed: Counter<'format' | 'outcome'>;
  readonly imageBytesIn: Counter<'format'>;
  readonly imageBytesOut: Counter<'format'>;
  readonly imageDuration: Histogram<'outcome'>;
  readonly compressDuration: Histogram<'format' | 'outcome'>;
  readonly webhookDeliveries: Counter<'event' | 'outcome'>;
  readonly webhookDuration: Histogram<'outcome'>;
  readonly imageOutcomes: Counter<'outcome'>;
  readonly requestsDeleted: Counter<'reason'>;
  readonly outputsRemoved: Counter;

  #sources: MetricsSources = {};
  #pending: { at: number; value: Promise<{ pending: number; running: number; oldestPendingAt: number | null } | null> } | null = null;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    if (options.labels) this.registry.setDefaultLabels(options.labels);
    // The event-loop lag histogram samples every 100 ms, not prom-client's 10 ms: a 10 ms timer
    // wakes the main thread 100 times a second (3-4 ms of CPU per second on an idle service).
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });

    this.httpRequests = new Counter({
      name: 'http_requests_total', help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'], registers,
    });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds', help: 'Time from request to response headers, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'], buckets: LATENCY_BUCKETS, registers,
    });
    this.imagesProcessed = new Counter({
      name: 'images_processed_total', help: 'Images that reached a final state, by output format (unknown when failed) and outcome (succeeded|failed)',
      labelNames: ['format', 'outcome'], registers,
    });
    this.imageBytesIn = new Counter({
      name: 'image_bytes_in_total', help: 'Bytes downloaded for images that succeeded, by output format', labelNames: ['format'], registers,
    });
    this.imageBytesOut = new Counter({
      name: 'image_bytes_out_total', help: 'Bytes of stored output images, by format', labelNames: ['format'], registers,
    });
    this.imageDuration = new Histogram({
      name: 'image_processing_duration_seconds', help: 'Per image, claim to recorded outcome (download + compress + store), by outcome',
      labelNames: ['outcome'], buckets: ITEM_BUCKETS, registers,
    });
    this.compressDuration = new Histogram({
      name: 'image_compress_duration_seconds', help: 'Per image, time in the compress pool (waiting for a thread + decode/encode), by format and outcome',
      labelNames: ['format', 'outcome'], buckets: LATENCY_BUCKETS, registers,
    });
    this.imageOutcomes = new Counter({
      name: 'image_outcomes_total', help: 'Images done, by how the output came about (compressed|reused|passed_through|original_kept)', labelNames: ['outcome'], registers,
    });
    this.requestsDeleted = new Counter({
      name: 'requests_deleted_total', help: 'Requests deleted, by reason (api|retention)', labelNames: ['reason'], registers,
    });
    this.outputsRemoved = new Counter({
      name: 'outputs_removed_total', help: 'Output images removed from storage because no request refers to them', registers,
    });
    this.webhookDeliveries = new Counter({
      name: 'webhook_deliveries_total', help: 'Webhook delivery attempts, by event type and outcome (delivered|retry|failed)',
      labelNames: ['event', 'outcome'], registers,
    });
    this.webhookDuration = new Histogram({
      name: 'webhook_delivery_duration_seconds', help: 'Webhook delivery attempt time, by outcome',
      labelNames: ['outcome'], buckets: LATENCY_BUCKETS, registers,
    });

    // ---- gauges read at scrape time ----
    const self = this;
    new Gauge({
      name: 'pipeline_items', help: 'Work items in the store not yet final, by state (pending|running), across all runners',
      labelNames: ['state'], registers,
      async collect() {
        const s = await self.#pendingStats();
        if (!s) return;
        this.set({ state: 'pending' }, s.pending);
        this.set({ state: 'running' }, s.running);
      },
    });
    new Gauge({
      name: 'pipeline_oldest_pending_age_seconds', help: 'Age of the oldest pending work item (0 when none)', registers,
      async collect() {
        const s = await self.#pendingStats();
        if (!s) return;
        this.set(s.oldestPendingAt === null ? 0 : Math.max(0, (Date.now() - s.oldestPendingAt) / 1000));
      },
    });
    new Gauge({
      name: 'pipeline_in_flight', help: 'Images this instance is downloading, compressing or storing', registers,
      collect() {
        this.set(self.#sources.runner?.inFlight ?? 0);
      },
    });
    const poolGauge = (name: string, help: string, pick: (s: PoolStats) => number) =>
      new Gauge({
        name, help, registers,
        collect() {
          const pool = self.#sources.pool;
          if (pool) this.set(pick(pool.stats()));
        },
      });
    poolGauge('compress_pool_threads', 'Worker threads in the compress pool', (s) => s.threads);
    poolGauge('compress_pool_busy', 'Compress tasks running on a thread', (s) => s.running);
    poolGauge('compress_pool_queue_depth', 'Compress tasks waiting for a thread', (s) => s.queued);
    poolGauge('compress_pool_utilization', 'Compress pool utilisation since start, 0..1', (s) => s.utilization);
    new Gauge({
      name: 'event_streams_open', help: 'Server-sent event streams open on this instance (bounded by EVENTS_MAX_STREAMS)', registers,
      collect() {
        this.set(self.#sources.eventStreams?.size ?? 0);
      },
    });
    new Gauge({
      name: 'webhook_deliveries_in_flight', help: 'Webhook deliveries this instance holds (sending or queued for a host)', registers,
      collect() {
        this.set(self.#sources.dispatcher?.inFlight ?? 0);
      },
    });
  }

  /** Where scrape-time gauges read from; call again as parts are created. */
  attach(sources: MetricsSources): void {
    this.#sources = { ...this.#sources, ...sources };
  }

  observeHttp(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  /** Runner onItem hook: one image reached its final state. */
  observeItem(outcome: ItemOutcome, ms: number): void {
    if (outcome.ok) {
      this.imagesProcessed.inc({ format: outcome.format, outcome: 'succeeded' });
      this.imageBytesIn.inc({ format: outcome.format }, outcome.bytesIn);
      this.imageBytesOut.inc({ format: outcome.format }, outcome.bytesOut);
      this.imageOutcomes.inc({ outcome: outcome.outcome });
    } else {
      this.imagesProcessed.inc({ format: 'unknown', outcome: 'failed' });
    }
    this.imageDuration.observe({ outcome: outcome.ok ? 'succeeded' : 'failed' }, ms / 1000);
  }

  observeCompress(format: string | null, ok: boolean, seconds: number): void {
    this.compressDuration.observe({ format: format ?? 'unknown', outcome: ok ? 'succeeded' : 'failed' }, seconds);
  }

  /** Dispatcher onAttempt hook. */
  observeWebhook(event: EventType, outcome: AttemptOutcome['kind'], ms: number): void {
    this.webhookDeliveries.inc({ event, outcome });
    this.webhookDuration.observe({ outcome }, ms / 1000);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    this.#pending = null;
    return this.registry.metrics();
  }

  /** One store read per scrape, shared by the gauges that need it; a store error skips them. */
  #pendingStats() {
    const store = this.#sources.store;
    if (!store) return Promise.resolve(null);
    const now = Date.now();
    if (!this.#pending || now - this.#pending.at > 1000) {
      this.#pending = { at: now, value: store.pendingStats(now).catch(() => null) };
    }
    return this.#pending.value;
  }
}
