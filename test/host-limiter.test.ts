// HostLimiter on its own: the global and per-key bounds, arrival order among waiters that can
// run, a busy key never holding up others, abort while waiting, and no per-key state left over.
import { describe, expect, it } from 'vitest';
import { HostLimiter, LimiterAbortedError } from '../src/net/host-limiter.js';

/** Acquires and records the order in which slots are granted. */
function recorder(limiter: HostLimiter) {
  const granted: string[] = [];
  const releases = new Map<string, () => void>();
  const take = (name: string, key: string, signal?: AbortSignal) =>
    limiter.acquire(key, signal).then((release) => {
      granted.push(name);
      releases.set(name, release);
    });
  return { granted, releases, take };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('HostLimiter', () => {
  it('refuses limits below one', () => {
    expect(() => new HostLimiter({ global: 0, perHost: 1 })).toThrow(RangeError);
    expect(() => new HostLimiter({ global: 1, perHost: 0 })).toThrow(RangeError);
  });

  it('holds at most perHost slots for one key (case-insensitive) and global overall', async () => {
    const limiter = new HostLimiter({ global: 3, perHost: 2 });
    const r = recorder(limiter);
    void r.take('a1', 'A.test');
    void r.take('a2', 'a.test');
    void r.take('a3', 'a.TEST');
    void r.take('b1', 'b.test');
    void r.take('c1', 'c.test');
    await settle();
    expect(r.granted).toEqual(['a1', 'a2', 'b1']);
    expect(limiter.active).toBe(3);
    expect(limiter.activeFor('A.TEST')).toBe(2);
    expect(limiter.pending).toBe(2);
    expect(limiter.loadFor('a.test')).toBe(3);
  });

  it('grants freed slots in arrival order among the waiters that can run, skipping a busy key', async () => {
    const limiter = new HostLimiter({ global: 2, perHost: 1 });
    const r = recorder(limiter);
    void r.take('a1', 'a');
    void r.take('b1', 'b');
    void r.take('a2', 'a'); // waits for a's slot
    void r.take('c1', 'c'); // waits for a global slot
    await settle();
    r.releases.get('b1')!(); // a2 cannot run (a is busy), so c1 gets it
    await settle();
    expect(r.granted).toEqual(['a1', 'b1', 'c1']);
    r.releases.get('a1')!();
    await settle();
    expect(r.granted).toEqual(['a1', 'b1', 'c1', 'a2']);
  });

  it('gives a slot back once however often release is called', async () => {
    const limiter = new HostLimiter({ global: 1, perHost: 1 });
    const release = await limiter.acquire('a');
    release();
    release();
    expect(limiter.active).toBe(0);
    const again = await limiter.acquire('a');
    expect(limiter.active).toBe(1);
    again();
  });

  it('rejects a waiter whose signal fires, and takes it out of the line', async () => {
    const limiter = new HostLimiter({ global: 1, perHost: 1 });
    const held = await limiter.acquire('a');
    const controller = new AbortController();
    const waiting = limiter.acquire('b', controller.signal);
    expect(limiter.pending).toBe(1);
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(LimiterAbortedError);
    expect(limiter.pending).toBe(0);
    await expect(limiter.acquire('c', controller.signal)).rejects.toBeInstanceOf(LimiterAbortedError);
    held();
  });

  it('keeps no state for a key once nothing runs for it, and run() releases on failure', async () => {
    const limiter = new HostLimiter({ global: 4, perHost: 2 });
    await limiter.run('x', async () => 1);
    await expect(limiter.run('y', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(limiter.active).toBe(0);
    expect(limiter.trackedHosts).toBe(0);
  });
});
