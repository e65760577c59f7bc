// The rules of the lifecycle, written once for every backend: which states are open or
// final, when a request is settled, which event a transition emits and what it carries, how
// event and delivery ids are made, who receives an event, how an attempt moves a delivery,
// the cursor formats, and the order in which work is claimed. A backend only persists.
import { decodeCursor, encodeCursor } from './cursor.js';
import {
  ADMIN_TENANT,
  type AttemptOutcome, type DeliveryAttempt, type DeliveryRecord, type DeliveryState, type EventRecord, type EventType,
  type ItemOutcome, type RequestRecord, type RequestStatus, type Subscription,
} from './types.js';

// ---- request states -------------------------------------------------------------------------

/** Committed requests whose images are still being worked on. */
export const OPEN_STATUSES = ['received', 'processing'] as const satisfies readonly RequestStatus[];
export const FINAL_STATUSES = ['completed', 'failed', 'cancelled'] as const satisfies readonly RequestStatus[];
/** Every state a reader may see (not 'ingesting'). */
export const VISIBLE_STATUSES: readonly RequestStatus[] = [...OPEN_STATUSES, ...FINAL_STATUSES];

export function isOpen(status: RequestStatus): boolean {
  return (OPEN_STATUSES as readonly RequestStatus[]).includes(status);
}

export function isFinal(status: RequestStatus): boolean {
  return (FINAL_STATUSES as readonly RequestStatus[]).includes(status);
}

/**
 * The final status a request reaches once every image has a final state: completed when at
 * least one succeeded, failed when all failed. null while some image is not final.
 */
export function settledStatus(r: Pick<RequestRecord, 'total' | 'done' | 'failed'>): 'completed' | 'failed' | null {
  if (r.done + r.failed < r.total) return null;
  return r.done > 0 ? 'completed' : 'failed';
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
    ? { state: 'done' as const, outputKey: outcome.outputKey, error: null, outcome: outcome.outcome, bytesIn: outcome.bytesIn, bytesOut: outcome.bytesOut, note: outcome.note ?? null }
    : { state: 'failed' as const, outputKey: null, error: outcome.error, outcome: null, bytesIn: null, bytesOut: null, note: null };
}

// ---- events -----------------------------------------------------------------------------------

const EVENT_OF: Record<'processing' | 'completed' | 'failed' | 'cancelled', EventType> = {
  processing: 'processing.started',
  completed: 'processing.completed',
  failed: 'processing.failed',
  cancelled: 'processing.cancelled',
};

/** The event a transition into `status` emits. */
export function eventTypeFor(status: keyof typeof EVENT_OF): EventType {
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
    },
  });
}

/** The event a request's move into `status` writes, fixed at that moment. */
export function transitionEvent(request: RequestRecord, status: keyof typeof EVENT_OF, at: number): EventRecord {
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
    state: 'pending',
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
  const state: DeliveryState = outcome.kind === 'delivered' ? 'delivered' : outcome.kind === 'failed' ? 'failed' : 'pending';
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
