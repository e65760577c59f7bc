import { createHash, randomUUID } from "node:crypto";
import { blobKey } from "../storage/types.js";
import { HostLimiter } from "./concurrency.js";
import { downloadImage, FetchError } from "./guarded-fetch.js";
class PipelineRunner {
  owner = `runner-${randomUUID()}`;
  #deps;
  #limiter;
  /** Items in flight, with the controller that cancels them if their lease is lost. */
  #inFlight = /* @__PURE__ */ new Map();
  /** Fetch + compress slots: downloads beyond this wait until the pool drains. */
  #capacity;
  #stopping = false;
  #loop = null;
  #wake = null;
  #slotFreed = null;
  #renewTimer = null;
  constructor(deps) {
    this.#deps = deps;
    const { DOWNLOAD_CONCURRENCY, DOWNLOAD_PER_HOST, WORKER_THREADS } = deps.config;
    this.#limiter = new HostLimiter({ global: DOWNLOAD_CONCURRENCY, perHost: DOWNLOAD_PER_HOST });
    this.#capacity = DOWNLOAD_CONCURRENCY + WORKER_THREADS * 2;
  }
  get inFlight() {
    return this.#inFlight.size;
  }
  start() {
    if (this.#loop) return;
    this.#renewTimer = setInterval(() => void this.#renew(), Math.max(250, Math.floor(this.#deps.config.LEASE_MS / 3)));
    this.#renewTimer.unref?.();
    this.#loop = this.#run().catch((err) => this.#deps.log.fatal({ err }, "pipeline runner stopped unexpectedly"));
  }
  /** Looks for work now instead of at the next poll (a request was just committed). */
  wake() {
    this.#wake?.();
  }
  /**
   * Stops claiming; waits up to graceMs for items in flight to finish, then cancels the rest
   * and hands them back to the store for another runner.
   */
  async stop(graceMs = 1e4) {
    this.#stopping = true;
    this.#wake?.();
    this.#slotFreed?.();
    const deadline = Date.now() + graceMs;
    while (this.#inFlight.size > 0 && Date.now() < deadline) await sleep(50);
    for (const controller of this.#inFlight.values()) controller.abort(new Error("shutting down"));
    await this.#loop;
    if (this.#renewTimer) clearInterval(this.#renewTimer);
    const released = await this.#deps.store.releaseItems(this.owner);
    if (released) this.#deps.log.info({ released }, "released unfinished items for another runner");
  }
  async #run() {
    const { store, config, log, payload } = this.#deps;
    const idle = this.#deps.idlePollMs ?? 500;
    while (!this.#stopping) {
      const room = this.#capacity - this.#inFlight.size;
      if (room <= 0) {
        await new Promise((resolve) => this.#slotFreed = resolve);
        continue;
      }
      let claimed = [];
      try {
        claimed = await store.claimItems({ owner: this.owner, limit: room, leaseMs: config.LEASE_MS, now: Date.now(), payload });
      } catch (err) {
        log.error({ err }, "claiming work failed; retrying");
      }
      if (claimed.length > 0) this.#deps.onEvent?.();
      for (const item of claimed) this.#process(item);
      if (claimed.length === 0) {
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, idle);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = null;
      }
    }
    while (this.#inFlight.size > 0) await sleep(20);
  }
  #process(item) {
    const controller = new AbortController();
    this.#inFlight.set(item.id, controller);
    const started = Date.now();
    void this.#handle(item, controller.signal).then(async (outcome) => {
      if (controller.signal.aborted) return;
      const result = await this.#deps.store.completeItem({
        itemId: item.id,
        owner: this.owner,
        outcome,
        now: Date.now(),
        payload: this.#deps.payload
      });
      if (!result.applied) this.#deps.log.warn({ requestId: item.requestId, url: item.url }, "lease lost before completion; result discarded");
      if (result.finalStatus) {
        this.#deps.log.info({ requestId: item.requestId, status: result.finalStatus }, "request finished");
        this.#deps.onEvent?.();
      }
      this.#deps.onItem?.(item, outcome, Date.now() - started);
    }).catch((err) => this.#deps.log.error({ err, requestId: item.requestId, url: item.url }, "recording an item failed; its lease will expire and it will be retried")).finally(() => {
      this.#inFlight.delete(item.id);
      this.#slotFreed?.();
      this.#slotFreed = null;
    });
  }
  /** Fetch, compress, store. Every failure becomes this item's error, never the process's. */
  async #handle(item, signal) {
    const { config, pool, storage } = this.#deps;
    if (item.attempts > config.MAX_ITEM_ATTEMPTS) {
      return { ok: false, error: `gave up after ${config.MAX_ITEM_ATTEMPTS} attempts (processing stopped each time)` };
    }
    try {
      const host = new URL(item.url).host;
      const source = await this.#limiter.run(host, () => downloadImage(item.url, {
        allowlist: config.FETCH_ALLOWLIST,
        connectTimeoutMs: config.FETCH_CONNECT_TIMEOUT_MS,
        timeoutMs: config.FETCH_TIMEOUT_MS,
        retries: config.FETCH_RETRIES,
        retryBaseMs: config.FETCH_RETRY_BASE_MS,
        maxBytes: config.MAX_IMAGE_BYTES,
        signal
      }), signal);
      await pool.waitForCapacity();
      const result = await pool.compress(source.bytes, signal);
      const key = blobKey(createHash("sha256").update(result.bytes).digest("hex"), result.format);
      await storage.put(key, result.bytes, `image/${result.format}`);
      return { ok: true, outputKey: key, format: result.format, bytesIn: result.bytesIn, bytesOut: result.bytesOut };
    } catch (err) {
      return { ok: false, error: describeFailure(err) };
    }
  }
  async #renew() {
    if (this.#inFlight.size === 0) return;
    const ids = [...this.#inFlight.keys()];
    try {
      const held = new Set(await this.#deps.store.renewLeases({ owner: this.owner, itemIds: ids, leaseMs: this.#deps.config.LEASE_MS, now: Date.now() }));
      for (const id of ids) {
        if (!held.has(id)) this.#inFlight.get(id)?.abort(new Error("lease lost"));
      }
    } catch (err) {
      this.#deps.log.warn({ err }, "renewing leases failed");
    }
  }
}
function describeFailure(err) {
  if (err instanceof FetchError) return err.reason;
  if (err instanceof Error) return err.message.split("\n")[0].slice(0, 300);
  return "processing failed";
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export {
  PipelineRunner
};
//# sourceMappingURL=runner.js.map
