// Delivers the events outbox: claims due deliveries from the store with a lease, signs and POSTs
// each one through the SSRF guard, and records every attempt with its outcome. It runs on its
// own timers, apart from image processing: the pipeline only writes events (in its own store
// transaction) and may call wake(); nothing it does ever waits on a receiver.
//
// Bounds: at most `concurrency` sends in flight, at most `perHost` of them to one host (both
// through a HostLimiter), each limited by `timeoutMs`; deliveries claimed while their host is
// busy wait for a slot in the limiter's line (bounded overall and per host). Beyond that a
// claimed delivery is parked: it is
// not sent and its lease simply runs out, so it is claimed again later without counting as an
// attempt. So a receiver that hangs holds `perHost` slots for at most timeoutMs each, and the
// rest of the outbox keeps flowing to everyone else.
//
// The claim / lease / renew / wake / stop loop is the LeasedWorker's. Leases are short and
// renewed while a delivery is held (waiting or sending), so a delivery cut off by a crash is
// sent again by another dispatcher within about one lease, and never by two at once.
import { randomUUID } from 'node:crypto';
import { LeasedWorker, type JobContext } from '../jobs/leased-worker.js';
import type { Logger } from '../log.js';
import type { AllowlistInput } from '../net/index.js';
import { FetchError, HostLimiter, postJson } from '../net/index.js';
import { ADMIN_TENANT, type AttemptOutcome, type DeliveryRecord, type EventType, type Store } from '../store/types.js';
import { retryDelay } from './backoff.js';
import { renderEventBody } from './payload.js';
import { normalizeSecret, sign } from './signing.js';

/** Sends one signed POST; resolves with the HTTP status (any), rejects when no response came. */
export type SendFn = (
  url: string,
  body: string,
  headers: Record<string, string>,
  opts: { timeoutMs: number; signal: AbortSignal },
) => Promise<{ status: number; durationMs?: number }>;

export interface WebhookDispatcherOptions {
  store: Store;
  /** PUBLIC_BASE_URL: the output CSV link in every body starts with it. */
  publicBaseUrl: string;
  /** Per-send timeout (WEBHOOK_TIMEOUT_MS). */
  timeoutMs: number;
  /** WEBHOOK_BACKOFF_SCALE: multiplies the retry schedule (1 in production). */
  backoffScale?: number;
  /** FETCH_ALLOWLIST, used by the default sender. */
  allowlist?: AllowlistInput;
  /** Connect timeout of the default sender (FETCH_CONNECT_TIMEOUT_MS); capped at timeoutMs. */
  connectTimeoutMs?: number;
  /** Outbound POST; default: the SSRF-guarded postJson (no redirects followed). */
  send?: SendFn;
  /**
   * WEBHOOK_SECRET: adds a signature to every delivery of the admin tenant (all of them in
   * open mode), so receivers set up with the operator's secret keep verifying. A tenant's
   * deliveries are signed with its own secrets only. Raw or whsec_...; see normalizeSecret.
   */
  defaultSecret?: string | null;
  /** How often to look for due deliveries when not woken. Default 1000. */
  pollIntervalMs?: number;
  /** Sends in flight at once. Default 16. */
  concurrency?: number;
  /** Sends in flight to one host (host:port). Default 4. */
  perHost?: number;
  /** Claimed deliveries waiting for a slot: overall (default 4 × concurrency) and per host (default 4 × perHost). */
  maxQueued?: number;
  maxQueuedPerHost?: number;
  /**
   * Lease on claimed deliveries, renewed every third of it while held; a send starts only with
   * at least timeoutMs + 1 s of lease left, so it ends before the lease can run out even if
   * renewals fail. Default timeoutMs + 10 s (20 s at the default timeout): a delivery cut off
   * by a crash is sent again about that long after.
   */
  leaseMs?: number;
  /** How long stop() waits for in-flight sends before aborting them. Default timeoutMs + 1000. */
  stopGraceMs?: number;
  /** Lease owner id; default unique per instance. */
  owner?: string;
  log?: Logger;
  now?: () => number;
  /** Observes every recorded attempt (metrics). */
  onAttempt?: (attempt: { type: EventType; outcome: AttemptOutcome['kind']; statusCode: number | null; durationMs: number }) => void;
}

export class WebhookDispatcher {
  readonly owner: string;
  readonly #store: Store;
  readonly #publicBaseUrl: string;
  readonly #send: SendFn;
  readonly #timeoutMs: number;
  readonly #scale: number;
  readonly #defaultSecret: string | null;
  readonly #perHost: number;
  readonly #maxQueuedPerHost: number;
  readonly #leaseMs: number;
  readonly #stopGraceMs: number;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  readonly #onAttempt: WebhookDispatcherOptions['onAttempt'];
  /** Send slots, overall and per host; its line is where claimed deliveries wait. */
  readonly #limiter: HostLimiter;
  readonly #worker: LeasedWorker<DeliveryRecord>;

  constructor(opts: WebhookDispatcherOptions) {
    this.#store = opts.store;
    this.#publicBaseUrl = opts.publicBaseUrl;
    this.#timeoutMs = opts.timeoutMs;
    this.#scale = opts.backoffScale ?? 1;
    this.#defaultSecret = opts.defaultSecret ? normalizeSecret(opts.defaultSecret) : null;
    const concurrency = Math.max(1, opts.concurrency ?? 16);
    this.#perHost = Math.max(1, opts.perHost ?? 4);
    const maxQueued = Math.max(0, opts.maxQueued ?? 4 * concurrency);
    this.#maxQueuedPerHost = Math.max(0, opts.maxQueuedPerHost ?? 4 * this.#perHost);
    this.#leaseMs = Math.max(opts.leaseMs ?? this.#timeoutMs + 10_000, this.#timeoutMs + 3_000);
    this.#stopGraceMs = opts.stopGraceMs ?? this.#timeoutMs + 1000;
    this.owner = opts.owner ?? `dispatcher-${randomUUID()}`;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#onAttempt = opts.onAttempt;
    const allowlist = opts.allowlist;
    const connectTimeoutMs = Math.min(opts.connectTimeoutMs ?? 5000, this.#timeoutMs);
    this.#send =
      opts.send ??
      ((url, body, headers, o) =>
        postJson(url, body, headers, { allowlist, timeoutMs: o.timeoutMs, connectTimeoutMs, signal: o.signal, retries: 0 }));
    this.#limiter = new HostLimiter({ global: concurrency, perHost: this.#perHost });
    const store = this.#store;
    this.#worker = new LeasedWorker<DeliveryRecord>({
      leaseMs: this.#leaseMs,
      idleMs: opts.pollIntervalMs ?? 1000,
      capacity: concurrency + maxQueued,
      idOf: (d) => d.id,
      claim: (limit, now) => store.claimDeliveries({ owner: this.owner, limit, leaseMs: this.#leaseMs, now }),
      process: (d, ctx) => this.#take(d, ctx),
      renew: (ids, now) => store.renewDeliveryLeases({ owner: this.owner, deliveryIds: ids, leaseMs: this.#leaseMs, now }),
      onClaimError: (err) => this.#log?.warn({ err }, 'webhook dispatcher: claiming deliveries failed'),
      onRenewError: (err) => this.#log?.warn({ err }, 'webhook dispatcher: renewing leases failed'),
      stopReason: () => new FetchError('aborted: dispatcher stopping', 'aborted', false),
      now: this.#now,
    });
  }

  /** Starts polling. Idempotent. */
  start(): void {
    this.#worker.start();
  }

  /** Asks for a look at the outbox now (e.g. right after an event was written). Cheap; never blocks. */
  wake(): void {
    this.#worker.wake();
  }

  /**
   * Stops claiming, drops the deliveries still waiting for a slot, waits up to stopGraceMs for
   * sends in flight to settle and be recorded, then aborts the rest (not recorded). Deliveries
   * not sent are left to their lease, which runs out and lets any dispatcher send them; nothing
   * claimed by others is touched.
   */
  async stop(): Promise<void> {
    await this.#worker.stop(this.#stopGraceMs);
  }

  /** Deliveries held by this instance, sending or waiting for a slot (tests, metrics). */
  get inFlight(): number {
    return this.#worker.held;
  }

  /**
   * Waits for a send slot for the delivery's host, then sends it. A delivery whose host already
   * has perHost sending and maxQueuedPerHost waiting is parked: its lease runs out and it is
   * claimed again later; no attempt is counted. One that loses its lease, or whose dispatcher
   * stops, while waiting is left to the next claim; a send under way finishes and is fenced by
   * the store.
   */
  async #take(d: DeliveryRecord, ctx: JobContext): Promise<void> {
    const host = hostOf(d.url);
    if (this.#limiter.loadFor(host) >= this.#perHost + this.#maxQueuedPerHost) {
      this.#log?.debug({ request_id: d.requestId, deliveryId: d.id, host }, 'webhook dispatcher: host busy, delivery deferred');
      return;
    }
    let release: () => void;
    try {
      release = await this.#limiter.acquire(host, AbortSignal.any([ctx.lost, ctx.draining]));
    } catch {
      return;
    }
    try {
      // Too little lease left to finish the send (renewals failing): leave it to whoever claims it next.
      if (this.#now() + this.#timeoutMs + 1000 > ctx.leaseUntil()) return;
      await this.#deliver(d, ctx.stopped);
    } catch (err) {
      this.#log?.error({ err, request_id: d.requestId, deliveryId: d.id }, 'webhook dispatcher: delivery crashed');
    } finally {
      release();
    }
  }

  /**
   * The secrets a delivery is signed with: the receiver's own (a subscription's, with the
   * previous one during a rotation, or the request's per-upload secret), plus WEBHOOK_SECRET
   * when the receiver belongs to the admin tenant. A string says why it cannot be signed.
   */
  async #secretsFor(d: DeliveryRecord, now: number): Promise<string[] | string> {
    const secrets: string[] = [];
    let tenantId: string;
    if (d.subscriptionId !== null) {
      const sub = await this.#store.getSubscription(d.subscriptionId);
      if (!sub) return 'subscription deleted';
      secrets.push(sub.secret);
      if (sub.previousSecret && sub.previousSecretExpiresAt !== null && sub.previousSecretExpiresAt > now) {
        secrets.push(sub.previousSecret);
      }
      tenantId = sub.tenantId;
    } else {
      const request = await this.#store.getRequest(d.requestId);
      if (!request) return 'request deleted';
      if (request.webhookSecret) secrets.push(normalizeSecret(request.webhookSecret));
      tenantId = request.tenantId;
    }
    if (tenantId === ADMIN_TENANT && this.#defaultSecret && !secrets.includes(this.#defaultSecret)) secrets.push(this.#defaultSecret);
    return secrets.length > 0 ? secrets : 'no signing secret for this receiver';
  }
  async #deliver(d: DeliveryRecord, signal: AbortSignal): Promise<void> {
    const attemptNo = d.attempts + 1;
    const at = this.#now();
    const secrets = await this.#secretsFor(d, at);
    if (typeof secrets === 'string') {
      await this.#record(d, { attempt: attemptNo, at, statusCode: null, error: secrets, durationMs: 0 }, { kind: 'failed' });
      return;
    }
    const timestamp = Math.floor(at / 1000);
    const body = renderEventBody(d.payload, this.#publicBaseUrl);
    const headers = {
      'content-type': 'application/json',
      'webhook-id': d.eventId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': sign(secrets, d.eventId, timestamp, body),
    };
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    let durationMs: number;
    try {
      const res = await this.#send(d.url, body, headers, { timeoutMs: this.#timeoutMs, signal });
      statusCode = res.status;
      durationMs = res.durationMs ?? performance.now() - started;
    } catch (err) {
      durationMs = performance.now() - started;
      if (err instanceof FetchError && err.kind === 'aborted') return; // shutting down: the lease will expire
      error = err instanceof FetchError ? err.reason : err instanceof Error ? err.message : String(err);
    }
    const ok = statusCode !== null && statusCode >= 200 && statusCode < 300;
    let outcome: AttemptOutcome;
    if (ok) outcome = { kind: 'delivered' };
    else {
      const delay = retryDelay(attemptNo, this.#scale);
      outcome = delay === null ? { kind: 'failed' } : { kind: 'retry', nextAttemptAt: this.#now() + delay };
    }
    await this.#record(d, { attempt: attemptNo, at, statusCode, error, durationMs: Math.round(durationMs) }, outcome);
  }

  async #record(
    d: DeliveryRecord,
    a: { attempt: number; at: number; statusCode: number | null; error: string | null; durationMs: number },
    outcome: AttemptOutcome,
  ): Promise<void> {
    const recorded = await this.#store.recordAttempt({ owner: this.owner, attempt: { deliveryId: d.id, ...a }, outcome, now: this.#now() });
    const fields = { request_id: d.requestId, deliveryId: d.id, eventId: d.eventId, type: d.eventType, attempt: a.attempt, status: a.statusCode, error: a.error, outcome: outcome.kind };
    if (recorded) this.#onAttempt?.({ type: d.eventType, outcome: outcome.kind, statusCode: a.statusCode, durationMs: a.durationMs });
    if (!recorded) this.#log?.warn(fields, 'webhook attempt not recorded: lease lost or delivery changed');
    else if (outcome.kind === 'delivered') this.#log?.info(fields, 'webhook delivered');
    else this.#log?.info(fields, outcome.kind === 'failed' ? 'webhook delivery failed for good' : 'webhook attempt failed, will retry');
  }
}

/** The limiter key of a receiver: its host:port, or '' for a URL that cannot be parsed. */
function hostOf(url: string): string {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return '';
  }
}
