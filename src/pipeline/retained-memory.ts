// What idle pool threads still hold: codec instances a task grew and the thread kept for the next
// image (instantiating MozJPEG afresh and faulting its memory in again costs ~17% of a 12 MP
// re-encode). Each thread writes its own figure into a slot of a SharedArrayBuffer; the pool's
// memory budget counts the sum beside its reservations. A thread empties its slot when it starts
// a task (that task's reservation covers its instances from then on) and when told to let go.
//
// Layout: per slot two Int32s, [threadId, KiB]; a slot whose threadId is 0 is free.

export class RetainedMemory {
  readonly slots: Int32Array;

  /** A number makes a new buffer with that many slots (the pool); a buffer shares it (its threads). */
  constructor(size: number | SharedArrayBuffer) {
    this.slots = new Int32Array(typeof size === 'number' ? new SharedArrayBuffer(size * 2 * 4) : size);
  }

  get buffer(): SharedArrayBuffer {
    return this.slots.buffer as SharedArrayBuffer;
  }

  /** The thread's slot index, claiming a free one when `claim`; -1 when it has none. */
  private slotOf(threadId: number, claim: boolean): number {
    for (let i = 0; i < this.slots.length; i += 2) if (Atomics.load(this.slots, i) === threadId) return i;
    if (!claim) return -1;
    for (let i = 0; i < this.slots.length; i += 2) if (Atomics.compareExchange(this.slots, i, 0, threadId) === 0) return i;
    return -1;
  }

  /** Sets what this thread holds (0 to clear). Returns false if no slot is free (nothing may be kept then). */
  set(threadId: number, bytes: number): boolean {
    const i = this.slotOf(threadId, bytes > 0);
    if (i < 0) return bytes <= 0;
    Atomics.store(this.slots, i + 1, Math.ceil(bytes / 1024));
    return true;
  }

  /** Frees the slot of a thread that has ended (what it held went with it). */
  forget(threadId: number): void {
    for (let i = 0; i < this.slots.length; i += 2) {
      if (Atomics.load(this.slots, i) === threadId) {
        Atomics.store(this.slots, i + 1, 0);
        Atomics.store(this.slots, i, 0);
      }
    }
  }

  /** Bytes held by all threads, and how many threads hold some and the smallest such amount. */
  summary(): { total: number; holders: number; smallest: number } {
    let total = 0;
    let holders = 0;
    let smallest = Infinity;
    for (let i = 0; i < this.slots.length; i += 2) {
      const kib = Atomics.load(this.slots, i + 1);
      if (kib <= 0) continue;
      total += kib * 1024;
      holders++;
      smallest = Math.min(smallest, kib * 1024);
    }
    return { total, holders, smallest: holders ? smallest : 0 };
  }
}
