// Live progress as server-sent events: one request until it is final, or the caller's whole
// list. Every stream is fed by the process's one store poller (src/live/request-watcher.ts), so an
// open stream costs no store query of its own, and a change made through any server sharing
// the store reaches the streams of every server.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { notFound } from '../../errors.js';
import type { RequestRecord, Store } from '../../store/types.js';
import { callerOf, mayAccess, type Caller } from '../caller.js';
import { EVENT_STREAM_HEADERS, type EventStream } from '../../live/event-streams.js';
import type { LiveEvents } from '../../live/live-events.js';
import { commonErrors, errorResponses, RequestIdParam } from '../schemas.js';
import { isFinal } from '../../store/lifecycle.js';

/** At most 4 progress events a second per stream. */
const MIN_PROGRESS_GAP_MS = 250;

const stream = (description: string, example: string) => ({
  content: { 'text/event-stream': { schema: z.string().openapi({ example }) } },
  description,
});

const statusEventsRoute = createRoute({
  method: 'get', path: '/api/v1/status/{request_id}/events', tags: ['requests'], summary: 'Live progress of a request (server-sent events)',
  description: [
    'A `text/event-stream`. First `event: progress` with `{request_id, status, progress}`; another `progress` on every change,',
    'at most 4 a second; last `event: completed`, `failed` or `cancelled` with the same shape, then the stream ends. For a request',
    'that is already final, only the final event. Each event has an increasing `id:`; a `: keep-alive` comment comes every 15 s.',
    'Send the key as a header (read the stream with fetch(); EventSource cannot send headers, so it works in open mode only,',
    'and should be closed on the final event or it reconnects).',
  ].join(' '),
  security: [{ ApiKey: [] }],
  request: { params: RequestIdParam },
  responses: {
    200: stream('The event stream', 'id: 1\nevent: progress\ndata: {"request_id":"0f8f…","status":"processing","progress":{"total":3,"done":1,"failed":0}}\n\n'
      + 'id: 2\nevent: completed\ndata: {"request_id":"0f8f…","status":"completed","progress":{"total":3,"done":3,"failed":0}}\n\n'),
    400: errorResponses[400], 404: errorResponses[404], 429: errorResponses[429], 503: errorResponses[503], ...commonErrors,
  },
});

const listEventsRoute = createRoute({
  method: 'get', path: '/api/v1/requests/events', tags: ['requests'], summary: "Live changes to the caller's requests (server-sent events)",
  description: [
    'A `text/event-stream` of `event: request` with a request summary `{request_id, status, progress, created_at, updated_at}`',
    'whenever one of the caller\'s requests changes or a new one is accepted (the admin sees every tenant\'s), with increasing `id:`',
    'lines and a `: keep-alive` comment every 15 s. It covers the server\'s most recent requests (EVENTS_RECENT_REQUESTS, 200 by default).',
    'To show a list, open the stream, then read GET /api/v1/requests: nothing that changes after that read is missed.',
  ].join(' '),
  security: [{ ApiKey: [] }],
  responses: {
    200: stream('The event stream', ': connected\n\nid: 1\nevent: request\ndata: {"request_id":"0f8f…","status":"processing","progress":{"total":3,"done":1,"failed":0},"created_at":"2025-01-01T12:00:00.000Z","updated_at":"2025-01-01T12:00:02.000Z"}\n\n'),
    429: errorResponses[429], 503: errorResponses[503], ...commonErrors,
  },
});

/** The key a stream's access rests on, when revoking it can end the stream. */
const revocableKey = (caller: Caller) => (caller.keyed && !caller.admin ? caller.tenantId : null);

/** A status event's data, serialised once per state however many streams follow the request. */
const progressJsonOf = new WeakMap<RequestRecord, string>();
function progressJson(r: RequestRecord): string {
  let json = progressJsonOf.get(r);
  if (json === undefined) {
    json = JSON.stringify({ request_id: r.id, status: r.status, progress: { total: r.total, done: r.done, failed: r.failed } });
    progressJsonOf.set(r, json);
  }
  return json;
}

/**
 * One request's events on one stream: the state first, changes no closer than
 * MIN_PROGRESS_GAP_MS apart (the latest one wins), the final state at once, then the end.
 */
class ProgressFollower {
  #started = false;
  #latest: RequestRecord | null = null;
  #lastSent = '';
  #lastSentAt = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly stream: EventStream) {}

  /** A state of the request, from the watcher (null: it was deleted). Older versions are ignored. */
  update(r: RequestRecord | null): void {
    if (r === null) return this.stream.close();
    if (this.#latest && r.version < this.#latest.version) return;
    this.#latest = r;
    if (this.#started) this.#emit();
  }

  /** The state read when the stream opened (a change delivered meanwhile may be newer). */
  start(r: RequestRecord): void {
    if (!this.#latest || r.version >= this.#latest.version) this.#latest = r;
    this.#started = true;
    this.#emit();
  }

  dispose(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #emit(): void {
    const r = this.#latest!;
    if (isFinal(r.status)) {
      this.dispose();
      this.stream.send(r.status, progressJson(r));
      this.stream.close();
      return;
    }
    if (this.#timer) return; // the pending send will carry the latest state
    const wait = this.#lastSentAt + MIN_PROGRESS_GAP_MS - Date.now();
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#emit();
      }, wait);
      return;
    }
    const json = progressJson(r);
    if (json === this.#lastSent) return; // a change no client sees (a claim): nothing to say
    this.#lastSent = json;
    this.#lastSentAt = Date.now();
    this.stream.send('progress', json);
  }
}

export function registerEventRoutes(app: OpenAPIHono, deps: { store: Store; live: LiveEvents }): void {
  const { store, live } = deps;

  /**
   * Opens a stream; cleanup runs once, however it ends. A client that goes away cancels the
   * body on every runtime (request.signal is not used: Deno aborts it on success too, and warns).
   */
  const openStream = (c: Context, cleanup: () => void): EventStream =>
    live.streams.open(callerOf(c), cleanup, (seconds) => c.header('retry-after', seconds));
  const respond = (c: Context, s: EventStream) => c.body(s.body, 200, EVENT_STREAM_HEADERS) as never;

  app.openapi(statusEventsRoute, async (c) => {
    const { request_id } = c.req.valid('param');
    const caller = callerOf(c);
    let unwatch = () => {};
    const s = openStream(c, () => {
      unwatch();
      follower.dispose();
    });
    const follower = new ProgressFollower(s);
    try {
      // Watch first, then read: a change after the read is delivered, none is lost between.
      unwatch = await live.watcher.add({ requestId: request_id, tenantKey: revocableKey(caller), changed: (r) => follower.update(r), revoked: () => s.close() });
      const request = await store.getRequest(request_id);
      // Another tenant's request is "not found", as on the status route.
      if (!request || !mayAccess(caller, request.tenantId)) throw notFound('Request ID not found');
      follower.start(request);
    } catch (err) {
      s.close();
      throw err;
    }
    return respond(c, s);
  });

  app.openapi(listEventsRoute, async (c) => {
    const caller = callerOf(c);
    let unwatch = () => {};
    const s = openStream(c, () => unwatch());
    try {
      unwatch = await live.watcher.add({
        requestId: null,
        tenantKey: revocableKey(caller),
        // `summary` is the request's summary as JSON, made once for every stream.
        changed: (r, summary) => {
          if (r && mayAccess(caller, r.tenantId)) s.send('request', summary);
        },
        revoked: () => s.close(),
      });
    } catch (err) {
      s.close();
      throw err;
    }
    // Sent at once so the client has the response (its headers) before anything changes.
    s.comment('connected');
    return respond(c, s);
  });
}
