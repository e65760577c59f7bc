// The lifecycle rules on their own: the action tables, visibility, what a retry resets, and
// the fair claim order on a small input whose order is worked out by hand. The last test
// keeps the rules in one place: no backend file names a state itself.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  afterAttempt, claimFairly, claimRounds, DELIVERY, DELIVERY_ACTIONS, FINAL_STATUSES, HIDDEN, INVISIBLE_STATUSES, ITEM,
  ITEM_ACTIONS, may, OPEN_STATUSES, readStatus, REQUEST, REQUEST_ACTIONS, RETRY, settledStatus, SUBSCRIPTION_DELETED,
  VISIBLE_STATUSES, type Action, type ClaimCandidate,
} from '../src/store/lifecycle.js';

const ROOT = join(import.meta.dirname, '..');

describe('request states', () => {
  it('splits every state into open, final or invisible, each exactly once', () => {
    const all = Object.values(REQUEST);
    const groups = [...OPEN_STATUSES, ...FINAL_STATUSES, ...INVISIBLE_STATUSES.filter((s) => s === REQUEST.ingesting)];
    expect([...groups].sort()).toEqual([...all].sort());
    expect(VISIBLE_STATUSES).toEqual([...OPEN_STATUSES, ...FINAL_STATUSES]);
    for (const s of INVISIBLE_STATUSES) expect(VISIBLE_STATUSES).not.toContain(s);
  });

  it('reads the hidden MongoDB states as ingesting (invisible) and every other state as itself', () => {
    expect(readStatus(HIDDEN.aborting)).toBe(REQUEST.ingesting);
    expect(readStatus(HIDDEN.deleting)).toBe(REQUEST.ingesting);
    for (const s of Object.values(REQUEST)) expect(readStatus(s)).toBe(s);
  });

  it('settles a request once every image is final: completed if any succeeded, else failed', () => {
    expect(settledStatus({ total: 3, done: 1, failed: 1 })).toBeNull();
    expect(settledStatus({ total: 3, done: 1, failed: 2 })).toBe(REQUEST.completed);
    expect(settledStatus({ total: 2, done: 0, failed: 2 })).toBe(REQUEST.failed);
  });
});

/** `action` may start from `from`, not from `notFrom` (null: it may start from anything), and leads to `to`. */
function expectAction(action: Action<string>, from: string, notFrom: string | null, to: unknown): void {
  expect(may(action, from)).toBe(true);
  if (notFrom !== null) expect(may(action, notFrom)).toBe(false);
  expect(action.to).toEqual(to);
}

describe('action tables', () => {
  // [action, a state it may start from, a state it may not start from, where it leads]
  const requestCases = [
    ['commit', REQUEST.ingesting, REQUEST.received, REQUEST.received],
    ['claim', REQUEST.received, REQUEST.processing, REQUEST.processing],
    ['settle', REQUEST.processing, REQUEST.completed, [REQUEST.completed, REQUEST.failed]],
    ['cancel', REQUEST.received, REQUEST.failed, REQUEST.cancelled],
    ['cancel', REQUEST.processing, REQUEST.cancelled, REQUEST.cancelled],
    ['retry', REQUEST.failed, REQUEST.processing, REQUEST.received],
    ['retry', REQUEST.cancelled, REQUEST.ingesting, REQUEST.received],
    ['delete', REQUEST.completed, REQUEST.ingesting, null],
    ['expire', REQUEST.cancelled, REQUEST.received, null],
    ['abort', REQUEST.ingesting, REQUEST.received, null],
  ] as const;
  it.each(requestCases)('request %s: may start from %s, not from %s; leads to %j', (name, from, notFrom, to) => {
    expectAction(REQUEST_ACTIONS[name], from, notFrom, to);
  });

  it('lets only open requests be cancelled or settled, and only final ones be retried or expire', () => {
    expect([...REQUEST_ACTIONS.cancel.from]).toEqual([...OPEN_STATUSES]);
    expect([...REQUEST_ACTIONS.settle.from]).toEqual([...OPEN_STATUSES]);
    expect([...REQUEST_ACTIONS.retry.from]).toEqual([...FINAL_STATUSES]);
    expect([...REQUEST_ACTIONS.expire.from]).toEqual([...FINAL_STATUSES]);
    expect([...REQUEST_ACTIONS.delete.from]).toEqual([...VISIBLE_STATUSES]);
  });

  const itemCases = [
    ['claim', ITEM.pending, ITEM.running, ITEM.running],
    ['reclaim', ITEM.running, ITEM.pending, ITEM.running],
    ['settle', ITEM.running, ITEM.done, [ITEM.done, ITEM.failed]],
    ['release', ITEM.running, ITEM.failed, ITEM.pending],
    ['retry', ITEM.failed, ITEM.done, ITEM.pending],
  ] as const;
  it.each(itemCases)('item %s: may start from %s, not from %s; leads to %j', (name, from, notFrom, to) => {
    expectAction(ITEM_ACTIONS[name], from, notFrom, to);
  });

  const deliveryCases = [
    ['claim', DELIVERY.pending, DELIVERY.delivered, DELIVERY.pending],
    ['settle', DELIVERY.pending, DELIVERY.failed, [DELIVERY.delivered, DELIVERY.failed, DELIVERY.pending]],
    ['redeliver', DELIVERY.delivered, null, DELIVERY.pending],
    ['orphan', DELIVERY.pending, DELIVERY.delivered, DELIVERY.failed],
  ] as const;
  it.each(deliveryCases)('delivery %s: may start from %s, not from %s; leads to %j', (name, from, notFrom, to) => {
    expectAction(DELIVERY_ACTIONS[name], from, notFrom, to);
  });

  it('fails the undelivered deliveries of a deleted subscription, saying why', () => {
    expect(SUBSCRIPTION_DELETED).toEqual({ state: DELIVERY.failed, lastError: 'subscription deleted' });
  });

  it('moves a delivery by its attempt: delivered, failed for good, or pending again at the retry time', () => {
    const attempt = { deliveryId: 'd', attempt: 1, at: 10, statusCode: 500, error: null, durationMs: 5 };
    expect(afterAttempt(attempt, { kind: 'retry', nextAttemptAt: 99 }, 10)).toEqual({ state: DELIVERY.pending, nextAttemptAt: 99, lastError: 'HTTP 500' });
    expect(afterAttempt(attempt, { kind: 'failed' }, 10)).toEqual({ state: DELIVERY.failed, nextAttemptAt: 10, lastError: 'HTTP 500' });
    expect(afterAttempt({ ...attempt, statusCode: 204 }, { kind: 'delivered' }, 10)).toEqual({ state: DELIVERY.delivered, nextAttemptAt: 10, lastError: null });
  });

  it('resets retried items to pending with fresh counters and lowers failed by the items put back', () => {
    expect(RETRY.itemReset).toEqual({ state: ITEM.pending, attempts: 0, claims: 0, error: null, leaseOwner: null, leaseUntil: null });
    expect(RETRY.failedDelta(3)).toBe(-3);
  });
});

describe('fair claim order', () => {
  // Three tenants, five requests. B was served last (10), A's a1 at 5, C never: so C goes
  // first, then A (its never-served a2 before a1), then B.
  const candidates: ClaimCandidate[] = [
    { requestId: 'a1', tenantId: 'A', lastClaimAt: 5, createdAt: 1 },
    { requestId: 'b1', tenantId: 'B', lastClaimAt: 10, createdAt: 2 },
    { requestId: 'c1', tenantId: 'C', lastClaimAt: 0, createdAt: 3 },
    { requestId: 'a2', tenantId: 'A', lastClaimAt: 0, createdAt: 4 },
    { requestId: 'c2', tenantId: 'C', lastClaimAt: 0, createdAt: 5 },
  ];

  it('orders rounds by the tenant served longest ago, each round one request per tenant', () => {
    expect(claimRounds(candidates)).toEqual([['c1', 'a2', 'b1'], ['c2', 'a1', 'b1']]);
  });

  it('hands out slots round by round and gives the slots of a request that runs dry to the others', async () => {
    const pending = new Map([['a1', 3], ['a2', 1], ['b1', 2], ['c1', 1], ['c2', 2]]);
    const claimed: string[] = [];
    await claimFairly(candidates, 8, async (id, n) => {
      const got = Math.min(n, pending.get(id)!);
      pending.set(id, pending.get(id)! - got);
      for (let i = 0; i < got; i++) claimed.push(id);
      return got;
    });
    // First pass, 8 slots over the rounds: c1 2, a2 2, b1 2, c2 1, a1 1; c1 and a2 have only 1.
    // Second pass, without them, 2 slots over the round [c2, a1, b1]: c2 and a1.
    expect(claimed).toEqual(['c1', 'a2', 'b1', 'b1', 'c2', 'a1', 'c2', 'a1']);
    expect([...pending.values()].reduce((a, b) => a + b)).toBe(1);
  });

  it('claims nothing when there is nothing to claim or no slot', async () => {
    const take = async () => { throw new Error('must not be asked'); };
    await claimFairly([], 5, take);
    await claimFairly(candidates, 0, take);
  });
});

describe('the backends name no state themselves', () => {
  const STATE = /(['"`])(ingesting|received|processing|completed|failed|cancelled|pending|running|done|delivered|aborting|deleting)\1/;
  // The rules' own files, and the frozen migrations, which keep the literals of their time.
  const exempt = (file: string) => /\/store\/(lifecycle|types)\.ts$|\/migrations\.ts$/.test(file);

  function* sources(dir: string): Generator<string> {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) yield* sources(path);
      else if (path.endsWith('.ts')) yield path;
    }
  }

  it('has no state literal in src/store outside lifecycle.ts, types.ts and the migrations', () => {
    const offenders: string[] = [];
    const files = [...sources(join(ROOT, 'src/store'))];
    expect(files.some((f) => f.endsWith('/sqlite/pipeline.ts')) && files.some((f) => f.endsWith('/mongo/pipeline.ts'))).toBe(true);
    for (const file of files) {
      if (exempt(file)) continue;
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '');
        if (STATE.test(code)) offenders.push(`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });

  it('would catch one (the pattern matches a quoted state, not a word in a comment)', () => {
    expect(STATE.test("WHERE state = 'running'")).toBe(true);
    expect(STATE.test('{ status: "deleting" }')).toBe(true);
    expect(STATE.test('ITEM.running')).toBe(false);
  });
});
