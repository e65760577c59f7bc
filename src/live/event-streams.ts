// Server-sent event streams (text/event-stream, per the HTML spec's EventSource format): the
// framing, a cap on how many are open at once, one keep-alive timer for all of them, and
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

export class EventStreams {
  readonly #open = new Set<EventStream>();
  readonly #max: number;
  readonly #keepAliveMs: number;
  #keepAlive: ReturnType<typeof setInterval> | null = null;
  #stopping = false;

  constructor(opts: { max: number; keepAliveMs: number }) {
    this.#max = opts.max;
    this.#keepAliveMs = opts.keepAliveMs;
  }

  get size(): number {
    return this.#open.size;
  }

  /**
   * A new stream, counted until it ends (`onClose` runs then, once). Throws 503 with
   * Retry-After (set through `setRetryAfter`) when `max` are open or the server is stopping.
   */
  open(onClose: () => void, setRetryAfter: (seconds: string) => void): EventStream {
    if (this.#stopping || this.#open.size >= this.#max) {
      setRetryAfter(String(RETRY_AFTER_S));
      throw new AppError(503, this.#stopping ? 'The server is stopping; reconnect in a moment' : 'Too many event streams are open on this server; retry later');
    }
    const stream = new EventStream(() => {
      this.#open.delete(stream);
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
