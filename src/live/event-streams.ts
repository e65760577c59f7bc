// Server-sent event streams (text/event-stream, per the HTML spec's EventSource format): the
// framing, caps on how many are open at once (per process, per tenant), one keep-alive timer for all of them, and
// closing them all when the server stops. Web-standard ReadableStreams, so every runtime
// serves them the same way.
import { AppError } from '../errors.js';

export const EVENT_STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // nginx buffers proxied responses unless told not to.
  'x-accel-buffering': 'no',
} as const;

/** A client that lets this much pile up unread is cut off (it can reconnect and read the state again). */
const MAX_QUEUED_BYTES = 1024 * 1024;
/** How long a client refused for too many streams is asked to wait before retrying. */
const RETRY_AFTER_S = 5;

const encoder = new TextEncoder();

/** One open stream. Sending on a closed stream does nothing. */
export class EventStream {
  readonly body: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #lastId = 0;
  #closed = false;
  readonly #onClose: () => void;

  constructor(onClose: () => void) {
    this.#onClose = onClose;
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        cancel: () => this.#end(), // the client went away
      },
      new ByteLengthQueuingStrategy({ highWaterMark: 16 * 1024 }),
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * `event: <event>` with `json` (one line of JSON) as its data, under the next id (1, 2, 3, ...
   * per stream). The JSON comes made: one change goes to many streams, and is serialised once.
   */
  send(event: string, json: string): void {
    this.#write(`id: ${++this.#lastId}\nevent: ${event}\ndata: ${json}\n\n`);
  }

  /** A comment line: ignored by clients, keeps proxies and idle timers from closing the connection. */
  comment(text: string): void {
    this.#write(`: ${text}\n\n`);
  }

  /** Ends the stream after what was sent (the client reads it all, then the end). */
  close(): void {
    if (this.#closed) return;
    this.#controller.close();
    this.#end();
  }

  #write(text: string): void {
    if (this.#closed) return;
    if ((this.#controller.desiredSize ?? 0) < -MAX_QUEUED_BYTES) {
      this.#controller.error(new Error('event stream client is not reading'));
      this.#end();
      return;
    }
    this.#controller.enqueue(encoder.encode(text));
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
  }
}

/** Who opens a stream, as far as the caps go. */
export interface StreamOwner {
  tenantId: string;
  admin: boolean;
  /** false in open mode: one implicit tenant, only the process cap applies. */
  keyed: boolean;
}

/**
 * The caps: `max` per process; with keys, `maxPerTenant` per tenant key, and the last 10 % of
 * `max` kept for the admin, so one tenant (or all of them) can never lock the operator out.
 */
export class EventStreams {
  readonly #open = new Set<EventStream>();
  readonly #perTenant = new Map<string, number>();
  readonly #max: number;
  readonly #maxPerTenant: number;
  readonly #adminReserve: number;
  readonly #keepAliveMs: number;
  #keepAlive: ReturnType<typeof setInterval> | null = null;
  #stopping = false;

  constructor(opts: { max: number; maxPerTenant: number; keepAliveMs: number }) {
    this.#max = opts.max;
    this.#maxPerTenant = opts.maxPerTenant;
    this.#adminReserve = Math.floor(opts.max / 10);
    this.#keepAliveMs = opts.keepAliveMs;
  }

  get size(): number {
    return this.#open.size;
  }

  /**
   * A new stream, counted until it ends (`onClose` runs then, once). Throws with Retry-After
   * (set through `setRetryAfter`): 429 when the tenant has its `maxPerTenant` open, 503 when
   * the process is full for this caller or the server is stopping.
   */
  open(owner: StreamOwner, onClose: () => void, setRetryAfter: (seconds: string) => void): EventStream {
    const tenantKey = owner.keyed && !owner.admin ? owner.tenantId : null;
    const processCap = tenantKey === null ? this.#max : this.#max - this.#adminReserve;
    if (this.#stopping || this.#open.size >= processCap) {
      setRetryAfter(String(RETRY_AFTER_S));
      throw new AppError(503, this.#stopping ? 'The server is stopping; reconnect in a moment' : 'Too many event streams are open on this server; retry later');
    }
    const ownCount = tenantKey === null ? 0 : (this.#perTenant.get(tenantKey) ?? 0);
    if (tenantKey !== null && ownCount >= this.#maxPerTenant) {
      setRetryAfter(String(RETRY_AFTER_S));
      throw new AppError(429, `Too many event streams for this API key: EVENTS_MAX_STREAMS_PER_TENANT is ${this.#maxPerTenant}; close one or retry later`);
    }
    if (tenantKey !== null) this.#perTenant.set(tenantKey, ownCount + 1);
    const stream = new EventStream(() => {
      this.#open.delete(stream);
      if (tenantKey !== null) {
        const left = (this.#perTenant.get(tenantKey) ?? 1) - 1;
        if (left > 0) this.#perTenant.set(tenantKey, left);
        else this.#perTenant.delete(tenantKey);
      }
      if (this.#open.size === 0 && this.#keepAlive) {
        clearInterval(this.#keepAlive);
        this.#keepAlive = null;
      }
      onClose();
    });
    this.#open.add(stream);
    this.#keepAlive ??= setInterval(() => {
      for (const s of this.#open) s.comment('keep-alive');
    }, this.#keepAliveMs);
    return stream;
  }

  /** Ends every open stream and refuses new ones (shutdown). */
  closeAll(): void {
    this.#stopping = true;
    for (const s of [...this.#open]) s.close();
  }
}
