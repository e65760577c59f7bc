// Delivers the events outbox: claims due deliveries from the store with a lease, signs and POSTs
// each one through the SSRF guard, and records every attempt with its outcome. It runs on its
// own timers, apart from image processing: the pipeline only writes events (in its own store
// transaction) and may call wake(); nothing it does ever waits on a receiver.
//
// Bounds: at most `concurrency` sends in flight, at most `perHost` of them to one host, each
// limited by `timeoutMs`; deliveries claimed while their host is busy wait in a small local
// queue (bounded overall and per host). Beyond that queue a claimed delivery is parked: it is
// not sent and its lease simply runs out, so it is claimed again later without counting as an
// attempt. So a receiver that hangs holds `perHost` slots for at most timeoutMs each, and the
// rest of the outbox keeps flowing to everyone else.
//
// Leases are short and renewed while a delivery is held (queued or sending), so a delivery cut
// off by a crash is sent again by another dispatcher within about one lease, and never by two
// at once.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { AllowlistInput } from '../net/index.js';
import { FetchError, postJson } from '../net/index.js';
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

interface Held {
  delivery: DeliveryRecord;
  host: string;
  leaseUntil: number;
}

export class WebhookDispatcher {
  readonly owner: string;
  readonly #store: Store;
  readonly #publicBaseUrl: string;
  readonly #send: SendFn;
  readonly #timeoutMs: number;
  readonly #scale: number;
  readonly #defaultSecret: string | null;
  readonly #pollMs: number;
  readonly #concurrency: number;
  readonly #perHost: number;
  readonly #maxQueued: number;
  readonly #maxQueuedPerHost: number;
  readonly #leaseMs: number;
  readonly #stopGraceMs: number;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  readonly #onAttempt: WebhookDispatcherOptions['onAttempt'];

  #running = false;
  #loop: Promise<void> | null = null;
  #wakeUp: (() => void) | null = null;
  #woken = false;
  /** The last claim filled its batch, so more may be due. */
  #moreDue = false;
  /** Claimed, waiting for a free slot (global or per host), oldest first. */
  readonly #queue: Held[] = [];
  readonly #queuedPerHost = new Map<string, number>();
  readonly #sendingPerHost = new Map<string, number>();
  readonly #tasks = new Set<Promise<void>>();
  /** Every delivery this instance holds a lease on, queued or sending. */
  readonly #held = new Map<string, Held>();
  #renewTimer: ReturnType<typeof setInterval> | null = null;
  #abort = new AbortController();

  constructor(opts: WebhookDispatcherOptions) {
    this.#store = opts.store;
    this.#publicBaseUrl = opts.publicBaseUrl;
    this.#timeoutMs = opts.timeoutMs;
    this.#scale = opts.backoffScale ?? 1;
    this.#defaultSecret = opts.defaultSecret ? normalizeSecret(opts.defaultSecret) : null;
    this.#pollMs = opts.pollIntervalMs ?? 1000;
    this.#concurrency = Math.max(1, opts.concurrency ?? 16);
    this.#perHost = Math.max(1, opts.perHost ?? 4);
    this.#maxQueued = Math.max(0, opts.maxQueued ?? 4 * this.#concurrency);
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
  }

  /** Starts polling. Idempotent. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    if (this.#abort.signal.aborted) this.#abort = new AbortController();
    this.#renewTimer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(this.#leaseMs / 3)));
    this.#renewTimer.unref?.();
    this.#loop = this.#run();
  }

  /** Keeps the leases of held deliveries; one another dispatcher took over is dropped. */
  async #renew(): Promise<void> {
    if (this.#held.size === 0) return;
    const ids = [...this.#held.keys()];
    const now = this.#now();
    try {
      const kept = new Set(await this.#store.renewDeliveryLeases({ owner: this.owner, deliveryIds: ids, leaseMs: this.#leaseMs, now }));
      for (const id of ids) {
        const h = this.#held.get(id);
        if (!h) continue;
        if (kept.has(id)) h.leaseUntil = now + this.#leaseMs;
        else this.#drop(h);
      }
    } catch (err) {
      this.#log?.warn({ err }, 'webhook dispatcher: renewing leases failed');
    }
  }

  /** Forgets a queued delivery (its lease is gone); a send in progress finishes and is fenced by the store. */
  #drop(h: Held): void {
    const i = this.#queue.indexOf(h);
    if (i < 0) return;
    this.#queue.splice(i, 1);
    this.#held.delete(h.delivery.id);
    const q = (this.#queuedPerHost.get(h.host) ?? 1) - 1;
    if (q > 0) this.#queuedPerHost.set(h.host, q);
    else this.#queuedPerHost.delete(h.host);
  }

  /** Asks for a look at the outbox now (e.g. right after an event was written). Cheap; never blocks. */
  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /**
   * Stops claiming, waits up to stopGraceMs for sends in flight to settle and be recorded, then
   * aborts the rest (not recorded). Claimed deliveries not sent are left to their lease, which
   * runs out and lets any dispatcher send them; nothing claimed by others is touched.
   */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.wake();
    await this.#loop;
    for (const h of this.#queue) this.#held.delete(h.delivery.id);
    this.#queue.splice(0);
    this.#queuedPerHost.clear();
    const settled = Promise.allSettled([...this.#tasks]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      settled.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.#stopGraceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#abort.abort(new FetchError('aborted: dispatcher stopping', 'aborted', false));
      await settled;
    }
    if (this.#renewTimer) clearInterval(this.#renewTimer);
    this.#renewTimer = null;
  }

  /** Deliveries held by this instance, sending or queued (tests, metrics). */
  get inFlight(): number {
    return this.#tasks.size + this.#queue.length;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      this.#woken = false;
      const room = this.#concurrency + this.#maxQueued - this.inFlight;
      let claimed = 0;
      if (room > 0) {
        try {
          const now = this.#now();
          const batch = await this.#store.claimDeliveries({ owner: this.owner, limit: room, leaseMs: this.#leaseMs, now });
          claimed = batch.length;
          this.#moreDue = claimed === room;
          for (const d of batch) this.#accept(d, now + this.#leaseMs);
          this.#pump();
        } catch (err) {
          this.#log?.warn({ err }, 'webhook dispatcher: claiming deliveries failed');
        }
      }
      if (!this.#running) break;
      // A full batch means more may be due: look again at once if there is room.
      if (claimed > 0 && claimed === room && this.inFlight < this.#concurrency + this.#maxQueued) continue;
      await this.#sleep(this.#pollMs);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#woken || !this.#running) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const wakeUp = () => done();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeUp = wakeUp;
    });
  }

  #accept(delivery: DeliveryRecord, leaseUntil: number): void {
    let host: string;
    try {
      host = new URL(delivery.url).host.toLowerCase();
    } catch {
      host = '';
    }
    const queuedHere = this.#queuedPerHost.get(host) ?? 0;
    const heldHere = queuedHere + (this.#sendingPerHost.get(host) ?? 0);
    if (heldHere >= this.#perHost + this.#maxQueuedPerHost) {
      // Parked: its lease runs out and it is claimed again later; no attempt is counted.
      this.#log?.debug({ request_id: delivery.requestId, deliveryId: delivery.id, host }, 'webhook dispatcher: host busy, delivery deferred');
      return;
    }
    const held: Held = { delivery, host, leaseUntil };
    this.#queue.push(held);
    this.#held.set(delivery.id, held);
    this.#queuedPerHost.set(host, queuedHere + 1);
  }

  /** Starts queued deliveries, oldest first, while there are free slots for their hosts. */
  #pump(): void {
    for (let i = 0; i < this.#queue.length && this.#tasks.size < this.#concurrency; ) {
      const h = this.#queue[i]!;
      const busy = this.#sendingPerHost.get(h.host) ?? 0;
      if (busy >= this.#perHost) {
        i++;
        continue;
      }
      this.#queue.splice(i, 1);
      const q = (this.#queuedPerHost.get(h.host) ?? 1) - 1;
      if (q > 0) this.#queuedPerHost.set(h.host, q);
      else this.#queuedPerHost.delete(h.host);
      // Too little lease left to finish the send (renewals failing): leave it to whoever claims it next.
      if (this.#now() + this.#timeoutMs + 1000 > h.leaseUntil) {
        this.#held.delete(h.delivery.id);
        continue;
      }
      this.#sendingPerHost.set(h.host, busy + 1);
      const task: Promise<void> = this.#deliver(h.delivery)
        .catch((err) => this.#log?.error({ err, request_id: h.delivery.requestId, deliveryId: h.delivery.id }, 'webhook dispatcher: delivery crashed'))
        .finally(() => {
          this.#tasks.delete(task);
          this.#held.delete(h.delivery.id);
          const n = (this.#sendingPerHost.get(h.host) ?? 1) - 1;
          if (n > 0) this.#sendingPerHost.set(h.host, n);
          else this.#sendingPerHost.delete(h.host);
          if (this.#running) {
            this.#pump();
            if (this.#moreDue) this.wake(); // room again and more is due: claim now, not at the next poll
          }
        });
      this.#tasks.add(task);
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
  async #deliver(d: DeliveryRecord): Promise<void> {
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
      const res = await this.#send(d.url, body, headers, { timeoutMs: this.#timeoutMs, signal: this.#abort.signal });
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
