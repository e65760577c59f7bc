// The leased-worker loop on its own, over an in-memory queue: claims within capacity, a freed
// slot claims again, wake() claims before the idle wait ends, renewals every third of the
// lease (a job whose lease is not renewed learns it), and stop with grace.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LeasedWorker, type JobContext, type LeasedWorkerOptions } from '../src/jobs/leased-worker.js';

interface Harness {
  worker: LeasedWorker<string>;
  queue: string[];
  claims: number[];
  renewals: string[][];
  /** Jobs being worked on: finish(id) settles one. */
  working: Map<string, { ctx: JobContext; finish: () => void }>;
  finished: string[];
  keep: Set<string> | null;
}

const workers: LeasedWorker<string>[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop(0);
});

function harness(opts: Partial<LeasedWorkerOptions<string>> = {}): Harness {
  const h: Harness = { worker: null!, queue: [], claims: [], renewals: [], working: new Map(), finished: [], keep: null };
  h.worker = new LeasedWorker<string>({
    leaseMs: 300,
    idleMs: 60_000, // only wake() or a freed slot makes it look again within a test
    capacity: 2,
    idOf: (id) => id,
    claim: async (limit) => {
      h.claims.push(limit);
      return h.queue.splice(0, limit);
    },
    process: (id, ctx) => new Promise<void>((resolve) => {
      h.working.set(id, { ctx, finish: () => { h.working.delete(id); h.finished.push(id); resolve(); } });
      ctx.stopped.addEventListener('abort', () => { h.working.delete(id); resolve(); });
    }),
    renew: async (ids) => {
      h.renewals.push(ids);
      return h.keep ? ids.filter((id) => h.keep!.has(id)) : ids;
    },
    onClaimError: () => {},
    onRenewError: () => {},
    ...opts,
  });
  workers.push(h.worker);
  return h;
}

describe('LeasedWorker', () => {
  it('claims up to its capacity, and again as soon as a job settles', async () => {
    const h = harness();
    h.queue.push('a', 'b', 'c');
    h.worker.start();
    await vi.waitFor(() => expect([...h.working.keys()]).toEqual(['a', 'b']));
    expect(h.claims).toEqual([2]);
    h.working.get('a')!.finish();
    await vi.waitFor(() => expect([...h.working.keys()]).toEqual(['b', 'c']));
    expect(h.claims).toEqual([2, 1]);
    expect(h.worker.held).toBe(2);
  });

  it('with claimBatch, waits for that much room before claiming again while jobs are held', async () => {
    const h = harness({ capacity: 4, claimBatch: 2 });
    h.queue.push('a', 'b', 'c', 'd', 'e', 'f', 'g');
    h.worker.start();
    await vi.waitFor(() => expect(h.working.size).toBe(4));
    expect(h.claims).toEqual([4]);
    h.working.get('a')!.finish();
    // the loop reacts to a freed slot through promises only: one macrotask turn lets it run
    await new Promise((r) => setImmediate(r));
    expect(h.claims).toEqual([4]); // one slot free: less than the batch, no claim
    h.working.get('b')!.finish();
    await vi.waitFor(() => expect([...h.working.keys()]).toEqual(['c', 'd', 'e', 'f']));
    expect(h.claims).toEqual([4, 2]);
  });

  it('with claimBatch, claims whatever room there is when nothing is held', async () => {
    const h = harness({ capacity: 4, claimBatch: 4 });
    h.queue.push('a');
    h.worker.start();
    await vi.waitFor(() => expect([...h.working.keys()]).toEqual(['a']));
    h.working.get('a')!.finish();
    h.queue.push('b');
    h.worker.wake();
    await vi.waitFor(() => expect([...h.working.keys()]).toEqual(['b']));
  });

  it('looks again on wake() instead of waiting out the idle time', async () => {
    const h = harness();
    h.worker.start();
    await vi.waitFor(() => expect(h.claims).toEqual([2]));
    h.queue.push('x');
    h.worker.wake();
    await vi.waitFor(() => expect([...h.working.keys()]).toEqual(['x']));
  });

  it('renews the held jobs every third of the lease and tells a job whose lease was not kept', async () => {
    const h = harness();
    h.queue.push('a', 'b');
    h.worker.start();
    await vi.waitFor(() => expect(h.working.size).toBe(2));
    await vi.waitFor(() => expect(h.renewals.at(-1)).toEqual(['a', 'b']));
    expect(h.working.get('a')!.ctx.leaseUntil()).toBeGreaterThan(Date.now());
    h.keep = new Set(['a']);
    const lost = h.working.get('b')!.ctx.lost;
    await new Promise((resolve) => lost.addEventListener('abort', resolve, { once: true }));
    expect(h.working.get('a')!.ctx.lost.aborted).toBe(false);
  });

  it('on stop, lets the jobs in hand finish within the grace', async () => {
    const h = harness();
    h.queue.push('a');
    h.worker.start();
    await vi.waitFor(() => expect(h.working.size).toBe(1));
    const { ctx } = h.working.get('a')!;
    const stopped = h.worker.stop(60_000);
    await vi.waitFor(() => expect(ctx.draining.aborted).toBe(true));
    h.working.get('a')!.finish();
    await stopped;
    expect(h.finished).toEqual(['a']);
    expect(ctx.stopped.aborted).toBe(false);
  });

  it('aborts the jobs still in hand when the grace runs out, with the given reason', async () => {
    const reason = new Error('custom stop');
    const h = harness({ stopReason: () => reason });
    h.queue.push('a');
    h.worker.start();
    await vi.waitFor(() => expect(h.working.size).toBe(1));
    const { ctx } = h.working.get('a')!;
    await h.worker.stop(10);
    expect(ctx.stopped.reason).toBe(reason);
    expect(h.finished).toEqual([]);
    expect(h.worker.held).toBe(0);
  });

  it('does not start jobs a claim returned after stop began', async () => {
    let release!: () => void;
    const h = harness({
      claim: async (limit) => {
        await new Promise<void>((r) => (release = r));
        return ['late'].slice(0, limit);
      },
    });
    h.worker.start();
    await vi.waitFor(() => expect(release).toBeTypeOf('function'));
    const stopped = h.worker.stop(1_000);
    release();
    await stopped;
    expect(h.working.size).toBe(0);
    expect(h.worker.held).toBe(0);
  });
});
