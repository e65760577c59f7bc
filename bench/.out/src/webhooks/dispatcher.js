import { randomUUID } from "node:crypto";
import { FetchError, postJson } from "../pipeline/guarded-fetch.js";
import { retryDelay } from "./backoff.js";
import { normalizeSecret, sign } from "./signing.js";
class WebhookDispatcher {
  owner;
  #store;
  #send;
  #timeoutMs;
  #scale;
  #defaultSecret;
  #pollMs;
  #concurrency;
  #perHost;
  #maxQueued;
  #maxQueuedPerHost;
  #leaseMs;
  #stopGraceMs;
  #log;
  #now;
  #running = false;
  #loop = null;
  #wakeUp = null;
  #woken = false;
  /** The last claim filled its batch, so more may be due. */
  #moreDue = false;
  /** Claimed, waiting for a free slot (global or per host), oldest first. */
  #queue = [];
  #queuedPerHost = /* @__PURE__ */ new Map();
  #sendingPerHost = /* @__PURE__ */ new Map();
  #tasks = /* @__PURE__ */ new Set();
  #abort = new AbortController();
  constructor(opts) {
    this.#store = opts.store;
    this.#timeoutMs = opts.timeoutMs;
    this.#scale = opts.backoffScale ?? 1;
    this.#defaultSecret = opts.defaultSecret ? normalizeSecret(opts.defaultSecret) : null;
    this.#pollMs = opts.pollIntervalMs ?? 1e3;
    this.#concurrency = Math.max(1, opts.concurrency ?? 16);
    this.#perHost = Math.max(1, opts.perHost ?? 4);
    this.#maxQueued = Math.max(0, opts.maxQueued ?? 4 * this.#concurrency);
    this.#maxQueuedPerHost = Math.max(0, opts.maxQueuedPerHost ?? 4 * this.#perHost);
    this.#leaseMs = opts.leaseMs ?? 10 * this.#timeoutMs + 3e4;
    this.#stopGraceMs = opts.stopGraceMs ?? this.#timeoutMs + 1e3;
    this.owner = opts.owner ?? `dispatcher-${randomUUID()}`;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    const allowlist = opts.allowlist;
    const connectTimeoutMs = Math.min(opts.connectTimeoutMs ?? 5e3, this.#timeoutMs);
    this.#send = opts.send ?? ((url, body, headers, o) => postJson(url, body, headers, { allowlist, timeoutMs: o.timeoutMs, connectTimeoutMs, signal: o.signal, retries: 0 }));
  }
  /** Starts polling. Idempotent. */
  start() {
    if (this.#running) return;
    this.#running = true;
    if (this.#abort.signal.aborted) this.#abort = new AbortController();
    this.#loop = this.#run();
  }
  /** Asks for a look at the outbox now (e.g. right after an event was written). Cheap; never blocks. */
  wake() {
    this.#woken = true;
    this.#wakeUp?.();
  }
  /**
   * Stops claiming, waits up to stopGraceMs for sends in flight to settle and be recorded, then
   * aborts the rest (not recorded). Claimed deliveries not sent are left to their lease, which
   * runs out and lets any dispatcher send them; nothing claimed by others is touched.
   */
  async stop() {
    if (!this.#running) return;
    this.#running = false;
    this.wake();
    await this.#loop;
    this.#queue.splice(0);
    this.#queuedPerHost.clear();
    const settled = Promise.allSettled([...this.#tasks]);
    let timer;
    const timedOut = await Promise.race([
      settled.then(() => false),
      new Promise((r) => timer = setTimeout(() => r(true), this.#stopGraceMs))
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#abort.abort(new FetchError("aborted: dispatcher stopping", "aborted", false));
      await settled;
    }
  }
  /** Deliveries held by this instance, sending or queued (tests, metrics). */
  get inFlight() {
    return this.#tasks.size + this.#queue.length;
  }
  async #run() {
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
          this.#log?.warn({ err }, "webhook dispatcher: claiming deliveries failed");
        }
      }
      if (!this.#running) break;
      if (claimed > 0 && claimed === room && this.inFlight < this.#concurrency + this.#maxQueued) continue;
      await this.#sleep(this.#pollMs);
    }
  }
  #sleep(ms) {
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
  #accept(delivery, leaseUntil) {
    let host;
    try {
      host = new URL(delivery.url).host.toLowerCase();
    } catch {
      host = "";
    }
    const queuedHere = this.#queuedPerHost.get(host) ?? 0;
    const heldHere = queuedHere + (this.#sendingPerHost.get(host) ?? 0);
    if (heldHere >= this.#perHost + this.#maxQueuedPerHost) {
      this.#log?.debug({ deliveryId: delivery.id, host }, "webhook dispatcher: host busy, delivery deferred");
      return;
    }
    this.#queue.push({ delivery, host, leaseUntil });
    this.#queuedPerHost.set(host, queuedHere + 1);
  }
  /** Starts queued deliveries, oldest first, while there are free slots for their hosts. */
  #pump() {
    for (let i = 0; i < this.#queue.length && this.#tasks.size < this.#concurrency; ) {
      const h = this.#queue[i];
      const busy = this.#sendingPerHost.get(h.host) ?? 0;
      if (busy >= this.#perHost) {
        i++;
        continue;
      }
      this.#queue.splice(i, 1);
      const q = (this.#queuedPerHost.get(h.host) ?? 1) - 1;
      if (q > 0) this.#queuedPerHost.set(h.host, q);
      else this.#queuedPerHost.delete(h.host);
      if (this.#now() + this.#timeoutMs + 5e3 > h.leaseUntil) continue;
      this.#sendingPerHost.set(h.host, busy + 1);
      const task = this.#deliver(h.delivery).catch((err) => this.#log?.error({ err, deliveryId: h.delivery.id }, "webhook dispatcher: delivery crashed")).finally(() => {
        this.#tasks.delete(task);
        const n = (this.#sendingPerHost.get(h.host) ?? 1) - 1;
        if (n > 0) this.#sendingPerHost.set(h.host, n);
        else this.#sendingPerHost.delete(h.host);
        if (this.#running) {
          this.#pump();
          if (this.#moreDue) this.wake();
        }
      });
      this.#tasks.add(task);
    }
  }
  async #secretsFor(d, now) {
    if (d.subscriptionId !== null) {
      const sub = await this.#store.getSubscription(d.subscriptionId);
      if (!sub) return "subscription deleted";
      const secrets = [sub.secret];
      if (sub.previousSecret && sub.previousSecretExpiresAt !== null && sub.previousSecretExpiresAt > now) {
        secrets.push(sub.previousSecret);
      }
      return secrets;
    }
    const request = await this.#store.getRequest(d.requestId);
    const secret = request?.webhookSecret ?? this.#defaultSecret;
    return secret ? [normalizeSecret(secret)] : "no signing secret for this receiver";
  }
  async #deliver(d) {
    const attemptNo = d.attempts + 1;
    const at = this.#now();
    const secrets = await this.#secretsFor(d, at);
    if (typeof secrets === "string") {
      await this.#record(d, { attempt: attemptNo, at, statusCode: null, error: secrets, durationMs: 0 }, { kind: "failed" });
      return;
    }
    const timestamp = Math.floor(at / 1e3);
    const headers = {
      "content-type": "application/json",
      "webhook-id": d.eventId,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": sign(secrets, d.eventId, timestamp, d.payload)
    };
    const started = performance.now();
    let statusCode = null;
    let error = null;
    let durationMs;
    try {
      const res = await this.#send(d.url, d.payload, headers, { timeoutMs: this.#timeoutMs, signal: this.#abort.signal });
      statusCode = res.status;
      durationMs = res.durationMs ?? performance.now() - started;
    } catch (err) {
      durationMs = performance.now() - started;
      if (err instanceof FetchError && err.kind === "aborted") return;
      error = err instanceof FetchError ? err.reason : err instanceof Error ? err.message : String(err);
    }
    const ok = statusCode !== null && statusCode >= 200 && statusCode < 300;
    let outcome;
    if (ok) outcome = { kind: "delivered" };
    else {
      const delay = retryDelay(attemptNo, this.#scale);
      outcome = delay === null ? { kind: "failed" } : { kind: "retry", nextAttemptAt: this.#now() + delay };
    }
    await this.#record(d, { attempt: attemptNo, at, statusCode, error, durationMs: Math.round(durationMs) }, outcome);
  }
  async #record(d, a, outcome) {
    const recorded = await this.#store.recordAttempt({ owner: this.owner, attempt: { deliveryId: d.id, ...a }, outcome, now: this.#now() });
    const fields = { deliveryId: d.id, eventId: d.eventId, type: d.eventType, attempt: a.attempt, status: a.statusCode, error: a.error, outcome: outcome.kind };
    if (!recorded) this.#log?.warn(fields, "webhook attempt not recorded: lease lost or delivery changed");
    else if (outcome.kind === "delivered") this.#log?.debug(fields, "webhook delivered");
    else this.#log?.info(fields, outcome.kind === "failed" ? "webhook delivery failed for good" : "webhook attempt failed, will retry");
  }
}
export {
  WebhookDispatcher
};
//# sourceMappingURL=dispatcher.js.map
