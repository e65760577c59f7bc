// Garbage collection on demand, for the pool (main thread), its threads and the download thread:
// the large buffers an image leaves behind (its source, its pixels, its output once written) are
// only returned when the thread that holds them collects, and neither a pool thread parked in
// Atomics.wait nor an idle main thread does so by itself. The download thread asks for the young
// generation only: what it leaves behind (socket reads) dies young.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options?: { type: 'minor' | 'major' }) => void;

let gc: Gc | null | undefined;

/**
 * A garbage collection where the runtime offers one (Node: --expose-gc set at run time; Bun:
 * Bun.gc): of the whole heap by default, or of the young generation only (a scavenge, a few ms
 * at most; on Bun a collection it may run later).
 */
export function collectGarbage(generation: 'full' | 'young' = 'full'): void {
  if (gc === undefined) {
    gc = null;
    const g = globalThis as { gc?: Gc; Bun?: { gc(sync: boolean): void } };
    if (typeof g.gc === 'function') gc = g.gc;
    else if (g.Bun) gc = (options) => g.Bun!.gc(options?.type !== 'minor');
    else {
      try {
        setFlagsFromString('--expose-gc');
        const fn = runInNewContext('gc') as unknown;
        if (typeof fn === 'function') gc = fn as Gc;
      } catch {
        // no way to force it here: the memory goes back at the next collection
      }
    }
  }
  gc?.(generation === 'young' ? { type: 'minor' } : undefined);
}
