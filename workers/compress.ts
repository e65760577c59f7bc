// Piscina worker entry: one image in, its compressed form out. Runs only inside pool threads.
//
// Steps: format by magic bytes -> declared size from the header (refused above maxPixels before
// any decoding) -> decode -> EXIF orientation applied to the pixels -> encode with no metadata ->
// "never worse than the input" (below).
import { appendFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { threadId } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { readDimensions, stripMetadata, type ImageFormat } from '../src/codecs/sniff.js';
import { applyOrientation, CodecError, codecFor, warmUp } from './codecs.js';

export interface CompressTask {
  bytes: Uint8Array;
  maxPixels: number;
  jpegQuality: number;
  /** Set by this thread when it starts the task: ms after submittedAt, plus one (the pool's time limit). */
  started?: Int32Array;
  submittedAt?: number;
}

export interface WarmUpTask {
  warmUp: true;
}

export interface CompressOutput {
  bytes: Uint8Array;
  format: ImageFormat;
  width: number;
  height: number;
  bytesIn: number;
  bytesOut: number;
  /** true when the output is the source's own coded image (possibly with metadata stripped) */
  keptSource: boolean;
}

/** Options every thread receives from the pool through Piscina's workerData. */
export interface CompressWorkerData {
  /** When set, every codec run appends one line to this file (see CompressPool). */
  codecRunLog?: string;
}

const config = (workerData ?? {}) as CompressWorkerData;

// Codec threads give way to the event-loop thread (HTTP, store, downloads) when both want a
// core, so status calls stay fast while the pool is saturated. On Linux the nice value is per
// thread, so this lowers this pool thread only; elsewhere it would renice the whole process.
if (process.platform === 'linux') {
  try {
    setPriority(10);
  } catch {
    // not supported by this runtime: run at normal priority
  }
}

/** Wraps the result so Piscina transfers (not copies) the output buffer to the caller. */
class Transferred {
  constructor(private readonly out: CompressOutput) {}
  get [transferableSymbol](): ArrayBufferLike[] {
    return [this.out.bytes.buffer];
  }
  get [valueSymbol](): CompressOutput {
    return this.out;
  }
}

function logCodecRun(format: ImageFormat, bytesIn: number): void {
  if (!config.codecRunLog) return;
  // one short O_APPEND write per run: lines from many threads and processes never interleave
  appendFileSync(config.codecRunLog, `${process.pid} ${threadId} ${format} ${bytesIn}\n`);
}

export default async function compress(task: CompressTask | WarmUpTask): Promise<unknown> {
  if ('warmUp' in task) {
    await warmUp();
    return { ok: true };
  }
  const { bytes, maxPixels, jpegQuality } = task;
  if (task.started && task.submittedAt !== undefined) Atomics.store(task.started, 0, Math.max(0, Date.now() - task.submittedAt) + 1);
  const row = codecFor(bytes);
  if (!row) throw new CodecError('unsupported image format');

  const declared = readDimensions(bytes, row.format);
  if (!declared) throw new CodecError(`${row.format.toUpperCase()} decode failed: unreadable header`);
  const pixels = declared.width * declared.height;
  if (pixels > maxPixels) {
    throw new CodecError(`image too large: ${declared.width}x${declared.height} (${pixels} pixels) exceeds the limit of ${maxPixels} pixels`);
  }

  logCodecRun(row.format, bytes.length);
  const decoded = await row.decode(bytes);
  if (decoded.width !== declared.width || decoded.height !== declared.height) {
    throw new CodecError(`${row.format.toUpperCase()} decode failed: size differs from the header`);
  }
  const orientation = row.orientation(bytes);
  const upright = applyOrientation(decoded, orientation);
  const encoded = await row.encode(upright, { quality: jpegQuality });

  // Never worse than the input. When the re-encode is not smaller than the source, the source's
  // own coded image is returned instead, with its metadata (EXIF/GPS, XMP, text, comments)
  // stripped from the container — stripping only removes bytes, so "stripped only if that makes
  // it smaller" holds by construction. Two exceptions keep the re-encode even when larger:
  // - the source has an EXIF orientation other than 1: its pixels are stored unrotated and the
  //   rotation lives in the EXIF we must strip, so the source cannot be shown upright without it;
  // - the container cannot be walked safely to strip it.
  let out: Uint8Array = encoded;
  let keptSource = false;
  if (encoded.length >= bytes.length && orientation === 1) {
    const stripped = stripMetadata(bytes, row.format);
    if (stripped && stripped.length < encoded.length) {
      out = stripped.byteLength === stripped.buffer.byteLength ? stripped : stripped.slice();
      keptSource = true;
    }
  }

  const result: CompressOutput = {
    bytes: out,
    format: row.format,
    width: upright.width,
    height: upright.height,
    bytesIn: bytes.length,
    bytesOut: out.length,
    keptSource,
  };
  return move(new Transferred(result));
}

