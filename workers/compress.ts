// Piscina worker entry: one image in, its compressed form out. Runs only inside pool threads.
//
// Steps, following the plan the pool made from the header (src/codecs/plan.ts: format by magic
// bytes, declared size, output format and size, encode settings): JPEG pass-through when the
// source is already at or below the quality asked -> decode -> EXIF orientation applied to the
// pixels -> resize (fit inside, never enlarge) -> alpha flattened on white for JPEG -> encode with
// no metadata -> the source's ICC profile carried over -> "never worse than the input" (below).
// Between steps, codec instances that grew past the keep limit are dropped (memory comes back),
// unless the pool reserved room for keeping them all (`keepInstances`): then they are kept for the
// next image and this thread tells the pool how much it holds (src/pipeline/retained-memory.ts).
import { createHmac } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { threadId } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import type { ImageFormat, InputFormat } from '../src/codecs/formats.js';
import type { Raster } from '../src/codecs/types.js';
import type { CompressOutcome, CompressOutput, CompressTask, CompressWorkerData, ReleaseTask, StatsTask, ThreadStats, WarmUpTask } from '../src/pipeline/compress-task.js';
import { RetainedMemory } from '../src/pipeline/retained-memory.js';
import { applyOrientation, CODECS, CodecError, grownBytes, instanceStats, releaseGrown, resize, SOURCES, warmUp } from './codecs.js';
import { collectGarbage, setKeepLimit } from './codecs/wasm.js';

const config = (workerData ?? {}) as CompressWorkerData;
if (config.keepInstanceBytes !== undefined) setKeepLimit(config.keepInstanceBytes);
const retained = config.retained ? new RetainedMemory(config.retained) : null;

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

function logCodecRun(format: InputFormat, bytesIn: number): void {
  if (!config.codecRunLog) return;
  // one short O_APPEND write per run: lines from many threads and processes never interleave
  appendFileSync(config.codecRunLog, `${process.pid} ${threadId} ${format} ${bytesIn}\n`);
}

/** JPEG has no alpha: composite on white, in place (the raster is this thread's own copy). */
function flattenOnWhite(image: Raster): void {
  const d = image.data;
  for (let i = 3; i < d.length; i += 4) {
    const a = d[i]!;
    if (a === 255) continue;
    const w = 255 * (255 - a);
    d[i - 3] = (d[i - 3]! * a + w + 127) / 255;
    d[i - 2] = (d[i - 2]! * a + w + 127) / 255;
    d[i - 1] = (d[i - 1]! * a + w + 127) / 255;
    d[i] = 255;
  }
}

/** Every alpha value is 255: what picks JPEG over PNG for an input-only format under format=original. */
function isOpaque(image: Raster): boolean {
  if (image.opaque) return true;
  const d = image.data;
  for (let i = 3; i < d.length; i += 4) if (d[i] !== 255) return false;
  return true;
}

const own = (b: Uint8Array) => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice());

/** Inputs whose decoded pixels (or file) pass these sizes get a collection after their task. */
const LARGE_INPUT_BYTES = 8 * 1024 * 1024;
const LARGE_PIXELS = 4_000_000;

async function compressImage(task: CompressTask): Promise<CompressOutput> {
  const { bytes, plan } = task;
  const releaseGrownUnlessKept = () => {
    if (!task.keepInstances) releaseGrown();
  };
  const { orientation, output } = plan;
  const source = SOURCES[plan.source];
  // under format=original an input-only format's target is picked after decoding, from the two the plan names
  let target = CODECS[plan.target];
  // an input-only format is always converted, and the status says from what
  const notes: string[] = source.originalAs ? [`converted from ${source.label}`] : [];
  const result = (out: Uint8Array, outcome: CompressOutcome, format: ImageFormat = target.format): CompressOutput => ({
    bytes: own(out), format, width: output.width, height: output.height, bytesIn: bytes.length, bytesOut: out.length, outcome,
    note: notes.length > 0 ? notes.join('; ') : null,
  });
  // The output keeps the input's format and size: only then may the source itself be the output.
  const sameShape = plan.target === plan.source && output.width === plan.upright.width && output.height === plan.upright.height;
  logCodecRun(source.format, bytes.length);

  // Pass-through: re-encoding a JPEG that is already at or below the quality asked only loses
  // detail. Not when it needs rotating: its EXIF orientation goes with the stripped metadata.
  if (sameShape && orientation === 1 && source.sourceQuality) {
    const q = source.sourceQuality(bytes);
    const stripped = q !== null && q <= plan.encode.quality ? source.stripMetadata(bytes) : null;
    if (stripped) return result(stripped, 'passed_through');
  }

  let image = await source.decode(bytes);
  if (image.width !== plan.declared.width || image.height !== plan.declared.height) {
    throw new CodecError(`${source.format.toUpperCase()} decode failed: size differs from the header`);
  }
  releaseGrownUnlessKept();
  if (image.notes) notes.push(...image.notes);
  if (plan.opaqueTarget !== plan.target && isOpaque(image)) target = CODECS[plan.opaqueTarget];
  image = applyOrientation(image, orientation);
  if (image.width !== output.width || image.height !== output.height) {
    image = await resize(image, output.width, output.height);
    releaseGrownUnlessKept();
  }
  if (target.format === 'jpeg' && !image.opaque) flattenOnWhite(image);
  let encoded = task.lean && target.encodeLean ? await target.encodeLean(image, plan.encode) : await target.encode(image, plan.encode);
  releaseGrownUnlessKept();

  // Colour: the decoders hand over the pixels untouched (no colour management), so the source's
  // ICC profile describes the output pixels too and goes with them; except CMYK, which the
  // decoder converted to sRGB (its CMYK profile describes nothing in the output).
  const icc = image.srgb ? null : await source.readIcc(bytes);
  if (icc && target.embedIcc) encoded = await target.embedIcc(encoded, icc);

  // Never worse than the input. When the output keeps the input's format and size and the
  // re-encode is not smaller than the source, the source's own coded image is returned instead,
  // with its metadata (EXIF/GPS, XMP, text, comments) stripped from the container — stripping
  // only removes bytes, so "stripped only if that makes it smaller" holds by construction. Two
  // exceptions keep the re-encode even when larger:
  // - the source has an EXIF orientation other than 1: its pixels are stored unrotated and the
  //   rotation lives in the EXIF we must strip, so the source cannot be shown upright without it;
  // - the container cannot be walked safely to strip it.
  // A requested format or size change is honoured even when the result is bigger.
  // (Not for an animation: the output is its first frame, and the source is all of them. Not on
  // the lean path either: an image the budget admits only that way is processed, not passed back.)
  if (sameShape && !task.lean && !notes.some((n) => n.startsWith('first frame')) && encoded.length >= bytes.length && orientation === 1) {
    const stripped = source.stripMetadata(bytes);
    if (stripped && stripped.length < encoded.length) return result(stripped, 'original_kept');
  }
  return result(encoded, 'compressed');
}

/** What this thread keeps is from now on either this task's (covered by its reservation) or dropped. */
function takeOverKept(task: CompressTask): void {
  if (!retained) return;
  const kept = grownBytes();
  retained.set(threadId, 0);
  // kept instances are reused in place: fine when the task's reservation covers them, else dropped
  if (kept > 0 && (!task.keepInstances || kept > (task.reservedBytes ?? 0))) releaseGrown();
}

/** After a task: keep the grown instances and say so, or drop them. */
function settleKept(task: CompressTask, ok: boolean): void {
  if (!task.keepInstances) return;
  const kept = ok && retained ? grownBytes() : 0;
  if (kept === 0 || !retained!.set(threadId, kept)) releaseGrown();
}

export default async function compress(task: CompressTask | WarmUpTask | StatsTask | ReleaseTask): Promise<unknown> {
  if ('warmUp' in task) {
    await warmUp();
    return { ok: true };
  }
  if ('release' in task) {
    retained?.set(threadId, 0);
    releaseGrown();
    return { ok: true };
  }
  if ('stats' in task) {
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    return { threadId, ...instanceStats(), heapUsed, arrayBuffers } satisfies ThreadStats;
  }
  if (task.started && task.submittedAt !== undefined) Atomics.store(task.started, 0, Math.max(0, Date.now() - task.submittedAt) + 1);
  const large = task.bytes.length > LARGE_INPUT_BYTES || task.plan.declared.width * task.plan.declared.height > LARGE_PIXELS;
  takeOverKept(task);
  let out: CompressOutput;
  let ok = false;
  try {
    out = await compressImage(task);
    // The output's name (the runner's HMAC under the deployment secret), here so the event loop
    // does not hash every output.
    if (task.nameKey) out.nameMac = createHmac('sha256', task.nameKey).update(out.bytes).digest('hex');
    ok = true;
  } finally {
    settleKept(task, ok);
    // The decoded pixels of a large image (hundreds of MB of ArrayBuffer) are garbage once
    // compressImage has returned, but nothing would collect them: between tasks Piscina parks
    // this thread in Atomics.wait, so no timer or idle-time GC runs. Collect now, before replying.
    if (large) collectGarbage();
  }
  return move(new Transferred(out));
}
