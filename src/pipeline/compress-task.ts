// What the pool and its threads (workers/compress.ts) say to each other: the task, the answer and
// the thread's settings. A leaf both halves import, so the pool needs nothing from the worker
// files but their path (resolveWorkerFile in src/runtime/worker-file.ts) and the threads nothing
// from the pool.
// Everything here is copied between threads (structured clone): plain data only.
import type { ImageFormat } from '../codecs/formats.js';
import type { ImagePlan } from '../codecs/plan.js';

export interface CompressTask {
  bytes: Uint8Array;
  /** made by the pool from the header; the thread follows it and does not plan again */
  plan: ImagePlan;
  /** Set by the thread when it starts the task: ms after submittedAt, plus one (the pool's time limit). */
  started?: Int32Array;
  submittedAt?: number;
  /** the pool reserved room for every instance at once (plan.memoryKeepingBytes): keep them afterwards */
  keepInstances?: boolean;
  /** bytes of the memory budget reserved for this task */
  reservedBytes?: number;
  /** quality=auto: the answer for the previous image of the same request (the search starts there) */
  previousQuality?: number;
  /** When set, the thread names the output: HMAC-SHA256 of its bytes under this key (CompressOutput.nameMac). */
  nameKey?: Uint8Array;
  /** the pool reserved room for the target's lean encoder only (plan.memoryLeanBytes) */
  lean?: boolean;
  /** `bytes` were transferred to the thread, which may detach them once done (the pool's tasks) */
  ownBytes?: boolean;
}

/** Drop the grown codec instances this thread kept (the pool needs the room, or has gone idle). */
export interface ReleaseTask {
  release: true;
}

export interface WarmUpTask {
  warmUp: true;
}

/** Asks the thread that runs it for its codec instance counts (tests, diagnostics). */
export interface StatsTask {
  stats: true;
}

export interface InstanceStats {
  /** instances made per codec in this thread since it started */
  made: Record<string, number>;
  /** WASM memory bytes held by the live instances */
  live: Record<string, number>;
}

export interface ThreadStats extends InstanceStats {
  threadId: number;
  /** this thread's V8 heap and the ArrayBuffers (pixels) it holds, bytes */
  heapUsed: number;
  arrayBuffers: number;
}

/**
 * - compressed: decoded and encoded (a format or size change, or a smaller re-encode);
 * - passed_through: a JPEG already at or below the quality asked, kept as it is, metadata stripped;
 * - original_kept: the re-encode was not smaller, so the source (metadata stripped) is the output.
 */
export type CompressOutcome = 'compressed' | 'passed_through' | 'original_kept';

/** One output of an image: the request-level one, or a rendition. */
export interface EncodedOutput {
  bytes: Uint8Array;
  format: ImageFormat;
  width: number;
  height: number;
  bytesIn: number;
  bytesOut: number;
  outcome: CompressOutcome;
  /** the encoder quality of the output; null when the output is no encode of ours or its format has none (PNG) */
  quality: number | null;
  /** the SSIMULACRA2 score the output reached against the decoded, upright, resized source (quality=auto only) */
  score: number | null;
  /** HMAC-SHA256 (hex) of `bytes` under the task's nameKey; absent without one */
  nameMac?: string;
  /** what the status should say about this image ("converted from HEIC; first frame of 12"), or null */
  note: string | null;
}

export interface CompressOutput extends EncodedOutput {
  /** the plan's renditions by name, made from the same decode */
  renditions: Record<string, EncodedOutput>;
}

/** Options every thread receives from the pool through Piscina's workerData. */
export interface CompressWorkerData {
  /** When set, every image that enters the codecs appends one line to this file (see CompressPool). */
  codecRunLog?: string;
  /** A codec instance whose WASM memory grew past this many bytes is dropped after its step (default 32 MiB). */
  keepInstanceBytes?: number;
  /** The pool's RetainedMemory buffer: where this thread says what it kept. Without it nothing is kept. */
  retained?: SharedArrayBuffer;
}
