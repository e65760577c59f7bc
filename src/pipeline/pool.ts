// The compress stage: a Piscina worker-thread pool running the WASM codecs (workers/compress.ts),
// with a bounded queue in front of it so producers (downloads) wait when the pool is saturated,
// and one memory budget: every image's peak memory is known from its header before it is decoded
// (src/codecs/plan.ts), and images start only while their sum fits (a FIFO weighted semaphore), so
// two giants never decode at once while small images keep flowing beside one. Threads keep the
// codec instances an image grew for the next one when the budget can hold them (see
// `keepInstances` below); what idle threads keep counts against the budget too, and they let it
// go when an image needs the room or the pool goes idle. The HTTP event loop never runs a codec.
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { DEFAULT_OUTPUT_OPTIONS, type OutputOptions } from '../codecs/output-options.js';
import { planImage, type ImagePlan } from '../codecs/plan.js';
import { collectGarbage } from '../runtime/collect-garbage.js';
import type { Rendition } from '../codecs/renditions.js';
import type { CompressOutput, CompressTask, CompressWorkerData, ReleaseTask, ThreadStats } from './compress-task.js';
import { RetainedMemory } from './retained-memory.js';
import { resolveWorkerFile } from '../runtime/worker-file.js';

export type { CompressOutcome } from './compress-task.js';
export type CompressResult = CompressOutput;

/** One image's output options (already validated where they came in; DEFAULT_OUTPUT_OPTIONS when absent) and an abort signal. */
export interface CompressOptions {
  options?: Readonly<OutputOptions>;
  /** Extra outputs made from the same decode (CompressResult.renditions, in this order); none by default. */
  renditions?: readonly Rendition[];
  signal?: AbortSignal;
  /** Runs once the image is admitted (slot and memory held), before a thread takes it. */
  onAdmitted?: () => Promise<void>;
  /** quality=auto: the previous image's answer in the same request, where the search starts */
  previousQuality?: number;
  /** Key of the HMAC-SHA256 the thread computes over the output (result.nameMac), off the event loop. */
  nameKey?: Uint8Array;
  /**
   * The caller gives `bytes` up: when they are the whole of their own ArrayBuffer, it is moved to
   * the thread (and detached here) instead of copied. Off by default: the caller keeps its bytes.
   */
  handOver?: boolean;
}

export interface CompressPoolOptions {
  /** worker threads (WORKER_THREADS) */
  threads: number;
  /** tasks allowed to wait beyond the ones running; default threads * 2 */
  maxQueue?: number;
  /** MAX_IMAGE_PIXELS: images whose header declares more are refused before decoding */
  maxPixels: number;
  /**
   * Optional path of a file to which every codec run (one image that passed the header checks,
   * taken into the codecs) appends one line "pid threadId format bytesIn\n" with O_APPEND. Meant for tests that count codec runs
   * across threads and processes (e.g. two servers sharing one store); off when unset.
   */
  codecRunLog?: string;
  /**
   * Decode JPEGs shrunk on load (DCT scaling) when the output is smaller (default true). Off only
   * to measure the full-size path beside it (bench large section); not a user setting.
   */
  shrinkOnLoad?: boolean;
  /**
   * MAX_DECODE_MEMORY_MB: the memory all images being compressed may hold together (decoded
   * pixels, codec working memory, resize buffers, the target encoder). An image that alone needs
   * more is refused before decoding. Default DEFAULT_DECODE_MEMORY_MB.
   */
  maxDecodeMemoryMb?: number;
  /**
   * A codec instance whose WASM memory grew past this (a large image went through it) is dropped
   * after the step, so its memory goes back to the system. Default 32 MiB (workers/codecs/wasm.ts).
   */
  keepInstanceBytes?: number;
  /**
   * An idle pool lets its threads drop the instances they kept this long after its last image
   * (default 1000 ms), so what a burst of large images grew goes back to the system.
   */
  releaseIdleMs?: number;
  /** Override the worker module (absolute path); by default it is found next to this file. */
  workerFile?: string;
  /** Told how long each image spent in this stage, waiting for a thread included (metrics). */
  onTask?: (t: CompressTiming) => void;
  /**
   * Longest a thread may work on one image (time waiting for a thread not counted); the thread is
   * then ended (Piscina replaces it) and the image refused. A hostile file (e.g. a progressive
   * JPEG with thousands of scans) can otherwise hold a thread for an hour. Default 120000.
   */
  taskTimeoutMs?: number;
}

export const DEFAULT_TASK_TIMEOUT_MS = 120_000;
/** See MAX_DECODE_MEMORY_MB in README.md: fits one 50-megapixel JPEG, and 2 threads in ~1.2 GB. */
export const DEFAULT_DECODE_MEMORY_MB = 1024;
const MB = 1024 * 1024;

/**
 * After an image this large (declared pixels, or source bytes) the main thread collects soon
 * after: its source copy and its output, once the caller has written it, are hundreds of MB that
 * an idle event loop would otherwise keep (146 MB of source for an 8000x6000 PNG with alpha).
 * Twice a 12 MP photo, so the usual images never pay for a full collection.
 */
const LARGE_IMAGE_PIXELS = 24_000_000;
const LARGE_SOURCE_BYTES = 32 * MB;
/** How long after a large image the main thread collects: time for the caller to store and drop its output. */
const COLLECT_AFTER_MS = 200;

export interface CompressTiming {
  /** Output format; null when compression failed. */
  format: string | null;
  ok: boolean;
  seconds: number;
}

export interface PoolStats {
  threads: number;
  /** tasks inside the pool that a thread is executing */
  running: number;
  /** tasks waiting: in Piscina's queue plus callers waiting for a slot in ours */
  queued: number;
  /** Piscina's utilisation since start, 0..1 */
  utilization: number;
  /** tasks that finished with a result */
  completed: number;
  /** tasks that finished with an error (bad image, codec error, abort) */
  failed: number;
  /** bytes of the memory budget held by admitted images, and the budget */
  memoryInUse: number;
  memoryBudget: number;
  /** images waiting for room in the memory budget */
  memoryWaiting: number;
  /** bytes idle threads hold in codec instances kept for the next image (counted in the budget) */
  memoryRetained: number;
  /** times the threads were told to drop what they kept: an image needed the room, or the pool idled */
  releases: { blocked: number; idle: number };
}

export type { ThreadStats };

/**
 * A FIFO weighted semaphore over bytes. An acquire is granted when it is first in line and fits
 * beside what is held: nothing overtakes a waiting giant (so it cannot starve), and while one giant
 * runs, images that fit beside it keep starting.
 */
export class MemoryBudget {
  private held = 0;
  private grants = 0;
  private readonly queue: { bytes: number; grant(): void }[] = [];
  /**
   * `outside`: bytes held outside the reservations that count against the capacity too (what
   * idle threads keep), less what the next image is sure to take over. `onBlocked` is told when
   * the first in line does not fit.
   */
  constructor(
    readonly capacity: number,
    private readonly outside: () => number = () => 0,
    private readonly onBlocked: () => void = () => {},
  ) {}

  get inUse(): number {
    return this.held;
  }
  get waiting(): number {
    return this.queue.length;
  }
  /** reservations granted and not yet released */
  get granted(): number {
    return this.grants;
  }

  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes > this.capacity) return Promise.reject(new Error('larger than the whole budget'));
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    if (this.queue.length === 0 && this.fits(bytes)) {
      this.held += bytes;
      this.grants++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.queue.indexOf(entry);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal?.reason ?? new Error('aborted'));
        this.drain(); // the next in line may fit now
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(entry);
      this.onBlocked();
    });
  }

  release(bytes: number): void {
    this.held -= bytes;
    this.grants--;
    this.drain();
  }

  /** Grants what fits now (call when the outside holdings have shrunk). */
  drain(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) {
      const next = this.queue.shift()!;
      this.held += next.bytes;
      this.grants++;
      next.grant();
    }
    if (this.queue.length > 0) this.onBlocked();
  }

  private fits(bytes: number): boolean {
    return this.held + this.outside() + bytes <= this.capacity;
  }
}

interface Waiter {
  /** true: takes a slot (compress); false: only waits for one to be free (waitForCapacity) */
  take: boolean;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * What an image reserves in the budget. Keeping every codec instance (through the image, and after
 * it for the next one) needs all its steps' memory at once; that is done when each thread could
 * hold so much, so kept instances never starve another thread. Otherwise each grown instance is
 * dropped after its step and the image reserves its largest step.
 */
export function reservationFor(plan: ImagePlan, capacityBytes: number, threads: number): { bytes: number; keepInstances: boolean; lean: boolean } {
  const keepInstances = plan.memoryKeepingBytes <= capacityBytes / threads;
  // every image the pixel limit admits is processed: when the usual path does not fit, the lean one
  if (!keepInstances && plan.memoryBytes > capacityBytes && plan.memoryLeanBytes !== null && plan.memoryLeanBytes <= capacityBytes) {
    return { bytes: plan.memoryLeanBytes, keepInstances: false, lean: true };
  }
  return { bytes: keepInstances ? plan.memoryKeepingBytes : plan.memoryBytes, keepInstances, lean: false };
}

export class CompressPool {
  private readonly piscina: Piscina;
  private readonly capacity: number;
  private readonly threads: number;
  private inFlight = 0;
  private readonly waiters: Waiter[] = [];
  private completed = 0;
  private failed = 0;
  private closed = false;
  private warm: Promise<void> | undefined;
  private readonly memory: MemoryBudget;
  private readonly budgetMb: number;
  private readonly retained: RetainedMemory;
  private releasing: Promise<void> | null = null;
  private readonly releases = { blocked: 0, idle: 0 };
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private collectTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: CompressPoolOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new Error('CompressPool: threads must be a positive integer');
    this.threads = options.threads;
    this.capacity = options.threads + Math.max(0, options.maxQueue ?? options.threads * 2);
    this.budgetMb = options.maxDecodeMemoryMb ?? DEFAULT_DECODE_MEMORY_MB;
    // a slot per thread, and as many again for threads replacing ones that died
    this.retained = new RetainedMemory(options.threads * 2);
    this.memory = new MemoryBudget(this.budgetMb * MB, () => this.retainedNotTakenOver(), () => this.releaseKept('blocked'));
    const workerData: CompressWorkerData = {
      ...(options.codecRunLog ? { codecRunLog: options.codecRunLog } : {}),
      ...(options.keepInstanceBytes !== undefined ? { keepInstanceBytes: options.keepInstanceBytes } : {}),
      retained: this.retained.buffer,
    };
    this.piscina = new Piscina({
      filename: pathToFileURL(options.workerFile ?? resolveWorkerFile('compress')).href,
      minThreads: options.threads,
      maxThreads: options.threads,
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
      workerData,
    });
    // A worker that dies is replaced by Piscina; its task is rejected. Nothing else to do here,
    // but an 'error' event without a listener would crash the process.
    this.piscina.on('error', () => {});
    // what a thread kept goes with it
    this.piscina.on('workerDestroy', (worker: { id: number }) => {
      this.retained.forget(worker.id);
      this.memory.drain();
    });
  }

  /**
   * What idle threads hold, less what the next image is sure to take over: it goes to an idle
   * thread, and when every idle thread keeps something it takes over at least the smallest. Every
   * image granted memory is on its way to a thread, so the idle ones are the rest.
   */
  private retainedNotTakenOver(): number {
    const { total, holders, smallest } = this.retained.summary();
    const idle = this.threads - this.memory.granted;
    return idle > 0 && holders === idle ? total - smallest : total;
  }

  /**
   * Tells the threads to drop what they kept: when an image waits for room while idle threads
   * hold some ('blocked'), or when the pool has gone idle. One release task per thread: Piscina
   * hands them to idle threads, and a busy thread holds nothing (its task took its instances over).
   */
  private releaseKept(why: 'blocked' | 'idle'): void {
    if (this.releasing || this.closed || this.retained.summary().total === 0) return;
    if (why === 'blocked' && this.memory.granted >= this.threads) return; // every thread busy: a completion will recheck
    this.releases[why]++;
    const release: ReleaseTask = { release: true };
    this.releasing = Promise.allSettled(Array.from({ length: this.threads }, () => this.piscina.run(release))).then(() => {
      this.releasing = null;
      this.memory.drain();
    });
  }

  /** A main-thread collection a little later (one for a burst of large images). */
  private collectSoon(): void {
    if (this.collectTimer || this.closed) return;
    this.collectTimer = setTimeout(() => {
      this.collectTimer = undefined;
      collectGarbage();
    }, COLLECT_AFTER_MS);
    this.collectTimer.unref?.();
  }

  private scheduleIdleRelease(): void {
    clearTimeout(this.idleTimer);
    if (this.inFlight > 0 || this.closed) return;
    this.idleTimer = setTimeout(() => {
      if (this.inFlight === 0) this.releaseKept('idle');
    }, this.options.releaseIdleMs ?? 1000);
    this.idleTimer.unref?.();
  }

  /** Resolves when a compress() call would start without waiting for a slot. */
  waitForCapacity(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('compress pool is closed'));
    if (this.inFlight < this.capacity && this.waiters.every((w) => !w.take)) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ take: false, resolve, reject }));
  }

  /**
   * Compresses one image in a worker thread. The bytes are copied into the task (the caller's
   * buffer is left intact) and the output buffer is transferred back, not copied. Rejects with a
   * short message for unsupported formats, too many pixels, an image that alone
   * needs more than the memory budget, undecodable input and codec errors. Waits (abortably) for a
   * slot in the bounded queue, then for room in the memory budget.
   */
  /**
   * Compresses one image on a pool thread. `opts.onAdmitted` runs once the image holds a slot
   * and its memory and before it is handed to a thread (the runner records there that the image
   * entered a codec).
   */
  async compress(bytes: Uint8Array, opts: CompressOptions | AbortSignal = {}): Promise<CompressResult> {
    const { signal, onAdmitted, nameKey, handOver, options = DEFAULT_OUTPUT_OPTIONS, renditions = [], previousQuality } = opts instanceof AbortSignal ? { signal: opts } : opts;
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    if (this.closed) throw new Error('compress pool is closed');
    let need: number;
    let keepInstances: boolean;
    let lean: boolean;
    let plan: ImagePlan;
    try {
      // the header alone: format, declared size (pixel limit), output size and the memory it takes
      plan = planImage(bytes, options, this.options.maxPixels, renditions, { shrinkOnLoad: this.options.shrinkOnLoad });
      ({ bytes: need, keepInstances, lean } = reservationFor(plan, this.memory.capacity, this.threads));
      if (need > this.memory.capacity) {
        const { width, height } = plan.declared;
        throw new Error(`image refused: ${width}x${height} needs about ${Math.ceil(need / MB)} MB to process, more than MAX_DECODE_MEMORY_MB=${this.budgetMb}`);
      }
    } catch (err) {
      this.failed++;
      this.options.onTask?.({ format: null, ok: false, seconds: seconds() });
      throw err;
    }
    await this.acquire(signal);
    try {
      await this.memory.acquire(need, signal);
      try {
        await onAdmitted?.();
      } catch (err) {
        this.memory.release(need);
        throw err;
      }
    } catch (err) {
      this.release();
      throw err;
    }
    // The thread writes into `startedAt` when it picks the task up, so the time limit counts only
    // the time it works on it, never the wait behind other images.
    const limit = this.options.taskTimeoutMs ?? DEFAULT_TASK_TIMEOUT_MS;
    const startedAt = new Int32Array(new SharedArrayBuffer(4));
    const submittedAt = Date.now();
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = () => {
      const at = Atomics.load(startedAt, 0); // ms after submittedAt, plus one; 0 = not started yet
      const ranFor = at === 0 ? 0 : Date.now() - (submittedAt + at - 1);
      if (ranFor >= limit) {
        timedOut = true;
        ctl.abort(new Error('compression timed out'));
      } else {
        timer = setTimeout(check, limit - ranFor);
        timer.unref?.();
      }
    };
    timer = setTimeout(check, limit);
    timer.unref?.();
    try {
      const own = handOver && ownsWholeBuffer(bytes) ? bytes : bytes.slice();
      const task: CompressTask = {
        bytes: own, ownBytes: true, plan, started: startedAt, submittedAt, keepInstances, reservedBytes: need, ...(lean ? { lean } : {}), ...(nameKey ? { nameKey } : {}),
        ...(previousQuality !== undefined && { previousQuality }),
      };
      let result: CompressResult;
      try {
        result = (await this.piscina.run(task, { signal: ctl.signal, transferList: [own.buffer] })) as CompressResult;
      } catch (err) {
        if (timedOut) throw new Error(`image refused: compressing it took longer than ${limit} ms`);
        throw err;
      }
      this.completed++;
      this.options.onTask?.({ format: result.format, ok: true, seconds: seconds() });
      return result;
    } catch (err) {
      this.failed++;
      if (!signal?.aborted) this.options.onTask?.({ format: null, ok: false, seconds: seconds() });
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.memory.release(need);
      this.release();
      this.scheduleIdleRelease();
      if (plan.declared.width * plan.declared.height >= LARGE_IMAGE_PIXELS || bytes.length >= LARGE_SOURCE_BYTES) this.collectSoon();
    }
  }

  /** Codec instance counts of the thread that runs this (with one thread: the pool's). */
  async threadStats(): Promise<ThreadStats> {
    if (this.closed) throw new Error('compress pool is closed');
    return (await this.piscina.run({ stats: true })) as ThreadStats;
  }

  stats(): PoolStats {
    const piscinaQueued = this.piscina.queueSize;
    return {
      threads: this.threads,
      running: Math.max(0, this.inFlight - piscinaQueued - this.memory.waiting),
      queued: piscinaQueued + this.waiters.filter((w) => w.take).length + this.memory.waiting,
      utilization: this.piscina.utilization,
      completed: this.completed,
      failed: this.failed,
      memoryInUse: this.memory.inUse,
      memoryBudget: this.memory.capacity,
      memoryWaiting: this.memory.waiting,
      memoryRetained: this.retained.summary().total,
      releases: { ...this.releases },
    };
  }

  /**
   * Resolves once a thread has loaded every codec; rejects if they cannot load or the pool is
   * closed. The first success is remembered, so readiness probes never queue behind images
   * (Piscina replaces dead threads itself).
   */
  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('compress pool is closed'));
    this.warm ??= this.piscina.run({ warmUp: true }).then(
      () => undefined,
      (err: unknown) => {
        this.warm = undefined;
        throw err;
      },
    );
    return this.warm;
  }

  /** Stops accepting work, lets running tasks finish, and ends the threads. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.collectTimer);
    for (const w of this.waiters.splice(0)) w.reject(new Error('compress pool is closed'));
    await this.piscina.close();
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new Error('compress pool is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    if (this.inFlight < this.capacity && this.waiters.length === 0) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        take: true,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject,
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason ?? new Error('aborted'));
        this.pump();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private release(): void {
    this.inFlight--;
    this.pump();
  }

  private pump(): void {
    while (this.waiters.length > 0 && this.inFlight < this.capacity) {
      const w = this.waiters.shift()!;
      if (w.take) this.inFlight++;
      w.resolve();
    }
  }
}

/** The view covers all of an ArrayBuffer (not shared, not a slice of a pooled slab): it can be transferred. */
function ownsWholeBuffer(bytes: Uint8Array): bytes is Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
}
