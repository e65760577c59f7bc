// The rules of the lifecycle, written once for every backend: the states of requests, items and
// deliveries, which action may move what from where to where, what is visible, what a retry
// resets, when a request is settled, which event a transition emits and what it carries, how
// event and delivery ids are made, who receives an event, how an attempt moves a delivery, the
// cursor formats, and the order in which work is claimed. A backend only persists: it builds its
// SQL and MongoDB filters from the exports here and writes no state name of its own.
import { decodeCursor, encodeCursor } from './cursor.js';
import {
  ADMIN_TENANT,
  type AttemptOutcome, type DeliveryAttempt, type DeliveryRecord, type DeliveryState, type EventRecord, type EventType,
  type ItemOutcome, type ItemState, type RequestRecord, type RequestStatus, type Subscription,
} from './types.js';

// ---- states -----------------------------------------------------------------------------------

export const REQUEST = {
  ingesting: 'ingesting', received: 'received', processing: 'processing',
  completed: 'completed', failed: 'failed', cancelled: 'cancelled',
} as const satisfies { [S in RequestStatus]: S };

export const ITEM = { pending: 'pending', running: 'running', done: 'done', failed: 'failed' } as const satisfies { [S in ItemState]: S };

export const DELIVERY = { pending: 'pending', delivered: 'delivered', failed: 'failed' } as const satisfies { [S in DeliveryState]: S };

/** Committed requests whose images are still being worked on. */
export const OPEN_STATUSES = [REQUEST.received, REQUEST.processing] as const satisfies readonly RequestStatus[];
export const FINAL_STATUSES = [REQUEST.completed, REQUEST.failed, REQUEST.cancelled] as const satisfies readonly RequestStatus[];
/** Every state a reader may see: a request being ingested is invisible until committed. */
export const VISIBLE_STATUSES: readonly RequestStatus[] = [...OPEN_STATUSES, ...FINAL_STATUSES];

/**
 * States MongoDB stores but no reader sees: a removal there takes several writes, so the request
 * is first marked, which hides it and stops a concurrent commit or claim. 'aborting' is an
 * ingesting request being removed, 'deleting' a committed one. SQLite removes in one
 * transaction and never stores them.
 */
export const HIDDEN = { aborting: 'aborting', deleting: 'deleting' } as const;
export type HiddenStatus = (typeof HIDDEN)[keyof typeof HIDDEN];
/** Both hidden states read as 'ingesting': invisible, as if never committed. */
export function readStatus(stored: RequestStatus | HiddenStatus): RequestStatus {
  return stored === HIDDEN.aborting || stored === HIDDEN.deleting ? REQUEST.ingesting : stored;
}
/** Every stored state no reader sees (the complement of VISIBLE_STATUSES). */
export const INVISIBLE_STATUSES = [REQUEST.ingesting, HIDDEN.aborting, HIDDEN.deleting] as const;
/** The stored states of a request that is not yet committed (or is being removed before it was). */
export const UNCOMMITTED_STATUSES = [REQUEST.ingesting, HIDDEN.aborting] as const;

// ---- actions ----------------------------------------------------------------------------------

/** An action may start from any state in `from`; `to` is where it leads, null when it removes the record. */
export interface Action<S extends string> {
  readonly from: readonly S[];
  readonly to: S | readonly S[] | null;
}

/** What may happen to a request. Claim moves it only on its first claim of a run. */
export const REQUEST_ACTIONS = {
  commit: { from: [REQUEST.ingesting], to: REQUEST.received },
  claim: { from: [REQUEST.received], to: REQUEST.processing },
  settle: { from: OPEN_STATUSES, to: [REQUEST.completed, REQUEST.failed] },
  cancel: { from: OPEN_STATUSES, to: REQUEST.cancelled },
  retry: { from: FINAL_STATUSES, to: REQUEST.received },
  delete: { from: VISIBLE_STATUSES, to: null },
  expire: { from: FINAL_STATUSES, to: null },
  /** An upload that failed or was abandoned before its commit. */
  abort: { from: [REQUEST.ingesting], to: null },
} as const satisfies Record<string, Action<RequestStatus>>;

/**
 * What may happen to an image. A claim takes a pending item or one whose lease ran out (its
 * runner died), in an open request only; a release gives a held item back unfinished.
 */
export const ITEM_ACTIONS = {
  claim: { from: [ITEM.pending], to: ITEM.running },
  reclaim: { from: [ITEM.running], to: ITEM.running },
  settle: { from: [ITEM.running], to: [ITEM.done, ITEM.failed] },
  release: { from: [ITEM.running], to: ITEM.pending },
  retry: { from: [ITEM.failed], to: ITEM.pending },
} as const satisfies Record<string, Action<ItemState>>;

/**
 * What may happen to a delivery. A claim leases a due pending one (the state stays pending);
 * an attempt settles it (see afterAttempt); a manual redelivery makes any delivery pending
 * again unless a dispatcher holds it right now; deleting its subscription fails a pending one.
 */
export const DELIVERY_ACTIONS = {
  claim: { from: [DELIVERY.pending], to: DELIVERY.pending },
  settle: { from: [DELIVERY.pending], to: [DELIVERY.delivered, DELIVERY.failed, DELIVERY.pending] },
  redeliver: { from: [DELIVERY.pending, DELIVERY.delivered, DELIVERY.failed], to: DELIVERY.pending },
  orphan: { from: [DELIVERY.pending], to: DELIVERY.failed },
} as const satisfies Record<string, Action<DeliveryState>>;

/** True when `action` may start from `state`. */
export function may(action: { readonly from: readonly string[] }, state: string): boolean {
  return action.from.includes(state);
}

/** What deleting a subscription does to its undelivered deliveries: they fail, with this error. */
export const SUBSCRIPTION_DELETED = { state: DELIVERY_ACTIONS.orphan.to, lastError: 'subscription deleted' } as const;

/**
 * What a retry resets. Its failed items go back to pending with fresh counters; the request
 * reopens in the next run, and its failed counter drops by the number of items put back. The
 * drop is relative (failed - n), not a reset to 0: MongoDB resets the items and the counter in
 * separate writes, and a runner may claim and fail a reset item in between; `failed: 0` would
 * then lose that failure and the request could never settle, while `failed - n` commutes with it.
 */
export const RETRY = {
  itemReset: { state: ITEM_ACTIONS.retry.to, attempts: 0, claims: 0, error: null, leaseOwner: null, leaseUntil: null },
  failedDelta: (itemsPutBack: number) => -itemsPutBack,
} as const;

export function isOpen(status: RequestStatus): boolean {
  return (OPEN_STATUSES as readonly RequestStatus[]).includes(status);
}

export function isFinal(status: RequestStatus): boolean {
  return (FINAL_STATUSES as readonly RequestStatus[]).includes(status);
}

export type SettledStatus = typeof REQUEST.completed | typeof REQUEST.failed;

/**
 * The final status a request reaches once every image has a final state: completed when at
 * least one succeeded, failed when all failed. null while some image is not final.
 */
export function settledStatus(r: Pick<RequestRecord, 'total' | 'done' | 'failed'>): SettledStatus | null {
  if (r.done + r.failed < r.total) return null;
  return r.done > 0 ? REQUEST.completed : REQUEST.failed;
}

/** What a finished item adds to its request's counters. */
export function counterDelta(outcome: ItemOutcome): { done: number; failed: number; bytesIn: number; bytesOut: number } {
  return outcome.ok
    ? { done: 1, failed: 0, bytesIn: outcome.bytesIn, bytesOut: outcome.bytesOut }
    : { done: 0, failed: 1, bytesIn: 0, bytesOut: 0 };
}

/** The columns an item's outcome sets. */
export function itemResult(outcome: ItemOutcome) {
  return outcome.ok
    ? { state: ITEM.done, outputKey: outcome.outputKey, renditionKeys: nonEmpty(outcome.renditionKeys), error: null, outcome: outcome.outcome, bytesIn: outcome.bytesIn, bytesOut: outcome.bytesOut, note: outcome.note ?? null }
    : { state: ITEM.failed, outputKey: null, renditionKeys: null, error: outcome.error, outcome: null, bytesIn: null, bytesOut: null, note: null };
}

const nonEmpty = (keys: Record<string, string> | null | undefined) => (keys && Object.keys(keys).length > 0 ? keys : null);

// ---- events -----------------------------------------------------------------------------------

/** The states a transition that emits an event leads to. */
export type EventfulStatus = typeof REQUEST.processing | typeof REQUEST.completed | typeof REQUEST.failed | typeof REQUEST.cancelled;

const EVENT_OF: Record<EventfulStatus, EventType> = {
  [REQUEST.processing]: 'processing.started',
  [REQUEST.completed]: 'processing.completed',
  [REQUEST.failed]: 'processing.failed',
  [REQUEST.cancelled]: 'processing.cancelled',
};

/** The event a transition into `status` emits. */
export function eventTypeFor(status: EventfulStatus): EventType {
  return EVENT_OF[status];
}

/**
 * One event per (request, run, transition), so writing it twice is a no-op and every backend
 * gives receivers the same `webhook-id` format.
 */
export function eventIdFor(requestId: string, run: number, type: EventType): string {
  const name = type.slice('processing.'.length);
  return run === 0 ? `evt_${requestId}_${name}` : `evt_${requestId}_${name}_${run}`;
}

/** One delivery per (event, receiver). */
export function deliveryIdFor(eventId: string, subscriptionId: string | null): string {
  return `dlv_${eventId.slice('evt_'.length)}_${subscriptionId ?? 'request'}`;
}

/** Orders a run's events of one millisecond: started before the final one. */
export function eventOrder(type: EventType): number {
  return type === 'processing.started' ? 0 : 1;
}

/**
 * The event body as stored: `{type, timestamp, data: {request_id, status, progress}}`.
 * Nothing deployment-specific: the dispatcher adds `output_csv_url` when it sends it.
 */
export function eventPayload(type: EventType, request: RequestRecord, at: number): string {
  return JSON.stringify({
    type,
    timestamp: new Date(at).toISOString(),
    data: {
      request_id: request.id,
      status: request.status,
      progress: { total: request.total, done: request.done, failed: request.failed },
      // the names of the renditions asked for (their URLs are in the status and output.csv); absent when none
      ...(request.options?.renditions?.length ? { renditions: request.options.renditions.map((r) => r.name) } : {}),
    },
  });
}

/** The event a request's move into `status` writes, fixed at that moment. */
export function transitionEvent(request: RequestRecord, status: EventfulStatus, at: number): EventRecord {
  const type = eventTypeFor(status);
  return {
    id: eventIdFor(request.id, request.run, type),
    requestId: request.id,
    type,
    payload: eventPayload(type, { ...request, status }, at),
    createdAt: at,
  };
}

// ---- receivers and deliveries ----------------------------------------------------------------

type SubscriptionView = Pick<Subscription, 'id' | 'tenantId' | 'url' | 'events'>;

/**
 * Who gets an event: subscriptions of the request's tenant that asked for its type, the
 * admin's subscriptions (they see every tenant), and the request's own per-upload receiver.
 */
export function receiversFor(
  type: EventType, request: Pick<RequestRecord, 'tenantId' | 'webhookUrl'>, subscriptions: SubscriptionView[],
): Array<{ subscriptionId: string | null; url: string }> {
  const receivers: Array<{ subscriptionId: string | null; url: string }> = subscriptions
    .filter((s) => s.events.includes(type) && (s.tenantId === request.tenantId || s.tenantId === ADMIN_TENANT))
    .map((s) => ({ subscriptionId: s.id, url: s.url }));
  if (request.webhookUrl) receivers.push({ subscriptionId: null, url: request.webhookUrl });
  return receivers;
}

/** The deliveries an event fans out to, due at once. */
export function deliveriesFor(
  event: EventRecord, request: Pick<RequestRecord, 'tenantId' | 'webhookUrl'>, subscriptions: SubscriptionView[],
): DeliveryRecord[] {
  return receiversFor(event.type, request, subscriptions).map((r) => ({
    id: deliveryIdFor(event.id, r.subscriptionId),
    eventId: event.id,
    subscriptionId: r.subscriptionId,
    requestId: event.requestId,
    url: r.url,
    eventType: event.type,
    payload: event.payload,
    state: DELIVERY.pending,
    attempts: 0,
    nextAttemptAt: event.createdAt,
    leaseOwner: null,
    leaseUntil: null,
    lastError: null,
    createdAt: event.createdAt,
    updatedAt: event.createdAt,
  }));
}

/** How one attempt's outcome moves its delivery. */
export function afterAttempt(attempt: DeliveryAttempt, outcome: AttemptOutcome, now: number): {
  state: DeliveryState; nextAttemptAt: number; lastError: string | null;
} {
  const state: DeliveryState = outcome.kind === 'delivered' ? DELIVERY.delivered : outcome.kind === 'failed' ? DELIVERY.failed : DELIVERY.pending;
  return { state, nextAttemptAt: outcome.kind === 'retry' ? outcome.nextAttemptAt : now, lastError: describeAttempt(attempt) };
}

export function describeAttempt(a: DeliveryAttempt): string | null {
  if (a.error) return a.error;
  if (a.statusCode !== null && (a.statusCode < 200 || a.statusCode >= 300)) return `HTTP ${a.statusCode}`;
  return null;
}

// ---- cursors --------------------------------------------------------------------------------

/** Products page in serial order; a cursor not made here starts from the beginning. */
export const serialCursor = {
  encode: (serial: number) => encodeCursor([serial]),
  decode(cursor: string | null | undefined): number {
    const [serial] = cursor ? decodeCursor(cursor) : [];
    return typeof serial === 'number' && Number.isFinite(serial) ? serial : 0;
  },
};

/** Newest-first lists (requests, deliveries) page by (createdAt, id); a foreign cursor starts at the newest. */
export const newestFirstCursor = {
  encode: (at: number, id: string) => encodeCursor([at, id]),
  decode(cursor: string | null | undefined): { at: number; id: string } | null {
    const [at, id] = cursor ? decodeCursor(cursor) : [];
    return typeof at === 'number' && Number.isFinite(at) && typeof id === 'string' ? { at, id } : null;
  },
};

/** Takes one row beyond the page to know whether there is a next page. */
export function pageOf<T>(rows: T[], limit: number, cursorOf: (last: T) => string): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last !== undefined ? cursorOf(last) : null };
}

// ---- claim order ----------------------------------------------------------------------------

export interface ClaimCandidate {
  requestId: string;
  tenantId: string;
  /** When the request last had an item claimed (0 if never). */
  lastClaimAt: number;
  createdAt: number;
}

/**
 * Fair order of claims: tenants first (the one served longest ago goes first), then a
 * tenant's requests the same way; each round gives every tenant one item. A small request
 * behind a big one therefore starts at the next claim instead of after the big one.
 */
export function claimRounds(candidates: ClaimCandidate[]): string[][] {
  const byTenant = new Map<string, ClaimCandidate[]>();
  for (const c of candidates) {
    const list = byTenant.get(c.tenantId);
    if (list) list.push(c);
    else byTenant.set(c.tenantId, [c]);
  }
  const older = (a: ClaimCandidate, b: ClaimCandidate) => a.lastClaimAt - b.lastClaimAt || a.createdAt - b.createdAt || (a.requestId < b.requestId ? -1 : 1);
  const tenants = [...byTenant.values()].map((list) => list.sort(older));
  const servedAt = (list: ClaimCandidate[]) => Math.max(...list.map((c) => c.lastClaimAt));
  const bornAt = (list: ClaimCandidate[]) => Math.min(...list.map((c) => c.createdAt));
  tenants.sort((a, b) => servedAt(a) - servedAt(b) || bornAt(a) - bornAt(b));
  // Round r takes each tenant's r-th request (cycling through its requests).
  const longest = Math.max(0, ...tenants.map((t) => t.length));
  return Array.from({ length: longest }, (_, r) => tenants.map((t) => t[r % t.length]!.requestId));
}

/**
 * Claims up to `limit` items in fair order: `take(requestId, n)` claims at most n pending items
 * of that request and returns how many it got. A request that runs dry drops out and the
 * remaining slots go to the others.
 */
export async function claimFairly(
  candidates: ClaimCandidate[], limit: number, take: (requestId: string, n: number) => Promise<number>,
): Promise<void> {
  let active = candidates;
  let left = limit;
  while (left > 0 && active.length > 0) {
    // One pass: hand out slots round by round, then claim each request's share at once.
    const share = new Map<string, number>();
    let slots = left;
    for (const round of cycle(claimRounds(active))) {
      for (const id of round) {
        if (slots === 0) break;
        share.set(id, (share.get(id) ?? 0) + 1);
        slots--;
      }
      if (slots === 0) break;
    }
    const dry = new Set<string>();
    for (const [id, n] of share) {
      const got = await take(id, n);
      left -= got;
      if (got < n) dry.add(id);
    }
    if (dry.size === 0) break; // every share was met, so no slot is left
    active = active.filter((c) => !dry.has(c.requestId));
  }
}

function* cycle<T>(rounds: T[]): Generator<T> {
  for (;;) yield* rounds;
}
