// StatusCache on its own: a page is served only for the version it was rendered at, the
// total size stays within its bound, and the least recently used page goes first.
import { describe, expect, it } from 'vitest';
import { StatusCache } from '../src/http/status-cache.js';

describe('StatusCache', () => {
  it('serves a page only for the version it was rendered at', () => {
    const cache = new StatusCache(100);
    cache.set('r1', 3, 'page at 3');
    expect(cache.get('r1', 3)).toBe('page at 3');
    expect(cache.get('r1', 4)).toBeUndefined();
    expect(cache.get('r2', 3)).toBeUndefined();
    cache.set('r1', 4, 'page at 4');
    expect(cache.get('r1', 3)).toBeUndefined();
    expect(cache.get('r1', 4)).toBe('page at 4');
  });

  it('drops the least recently used pages once the total size passes the bound', () => {
    const cache = new StatusCache(30);
    cache.set('a', 1, 'x'.repeat(10));
    cache.set('b', 1, 'y'.repeat(10));
    cache.set('c', 1, 'z'.repeat(10));
    expect(cache.get('a', 1)).toBe('x'.repeat(10)); // a is now the most recently used
    cache.set('d', 1, 'w'.repeat(10)); // 40 > 30: b, the least recently used, goes
    expect(cache.get('b', 1)).toBeUndefined();
    expect(cache.get('a', 1)).toBeDefined();
    expect(cache.get('c', 1)).toBeDefined();
    expect(cache.get('d', 1)).toBeDefined();
  });

  it('counts a replaced page once, and never keeps a page bigger than the whole bound', () => {
    const cache = new StatusCache(20);
    cache.set('a', 1, 'x'.repeat(15));
    cache.set('a', 2, 'x'.repeat(15)); // replaces: 15 held, not 30
    cache.set('b', 1, 'y'.repeat(5));
    expect(cache.get('a', 2)).toBeDefined();
    expect(cache.get('b', 1)).toBeDefined();
    cache.set('huge', 1, 'h'.repeat(21));
    expect(cache.get('huge', 1)).toBeUndefined();
    expect(cache.get('a', 2)).toBeDefined();
    cache.set('a', 3, 'h'.repeat(21)); // too big: the old page of a goes too, never served stale
    expect(cache.get('a', 2)).toBeUndefined();
  });
});
