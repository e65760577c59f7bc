// A full garbage collection on demand, for the pool (main thread) and its threads alike: the
// large buffers an image leaves behind (its source, its pixels, its output once written) are
// only returned when the thread that holds them collects, and neither a pool thread parked in
// Atomics.wait nor an idle main thread does so by itself.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

/** A full GC where the runtime offers one (Node: --expose-gc set at run time; Bun: Bun.gc). */
export function collectGarbage(): void {
  if (gc === undefined) {
    gc = null;
    const g = globalThis as { gc?: () => void; Bun?: { gc(sync: boolean): void } };
    if (typeof g.gc === 'function') gc = g.gc;
    else if (g.Bun) gc = () => g.Bun!.gc(true);
    else {
      try {
        setFlagsFromString('--expose-gc');
        const fn = runInNewContext('gc') as unknown;
        if (typeof fn === 'function') gc = fn as () => void;
      } catch {
        // no way to force it here: the memory goes back at the next collection
      }
    }
  }
  gc?.();
}
