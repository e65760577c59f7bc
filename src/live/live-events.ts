// What the live progress streams of one process share: the store poller and the open streams.
// The service makes one and closes it before the HTTP server, whose close waits for open
// responses (an event stream would never end on its own).
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import { EventStreams } from './event-streams.js';
import { RequestWatcher } from './request-watcher.js';
import { requestView } from '../views/request-views.js';

export class LiveEvents {
  readonly watcher: RequestWatcher;
  readonly streams: EventStreams;

  constructor(deps: { config: Config; store: Store; log: Logger }) {
    const { config, store, log } = deps;
    this.streams = new EventStreams({ max: config.EVENTS_MAX_STREAMS, maxPerTenant: config.EVENTS_MAX_STREAMS_PER_TENANT, keepAliveMs: config.EVENTS_KEEPALIVE_MS });
    this.watcher = new RequestWatcher({
      store,
      pollMs: config.EVENTS_POLL_MS,
      recent: config.EVENTS_RECENT_REQUESTS,
      // It holds everything either kind of stream shows.
      summary: (r) => JSON.stringify(requestView(r)),
      // About as often as a key lookup is cached (caller.ts): a revoked key's streams end as fast as its calls.
      keyCheckEvery: Math.max(1, Math.round(1_000 / config.EVENTS_POLL_MS)),
      onPollError: (err) => log.warn({ err }, 'event streams: reading the store failed; retrying'),
      onPollRecovered: () => log.info('event streams: reading the store works again'),
    });
  }

  /** Ends every stream (their clients see the end) and stops polling. */
  async close(): Promise<void> {
    this.streams.closeAll();
    await this.watcher.stop();
  }
}
