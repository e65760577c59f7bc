// Piscina worker entry: one image in, its compressed form out. Runs only inside pool threads.
//
// Steps, following the plan the pool made from the header (src/codecs/plan.ts: format by magic
// bytes, declared size, output format and size, encode settings): JPEG pass-through when the
// source is already at or below the quality asked -> decode (a JPEG shrunk on load when the
// largest output is smaller) -> EXIF orientation applied to the pixels -> resize (fit inside, never
// enlarge) -> alpha flattened on white for JPEG -> encode (progressive JPEG if asked; with
// quality=auto on a JPEG or WebP output, the quality searched: workers/auto-quality.ts) with no
// metadata -> the source's ICC profile carried over -> "never worse than the input" (below).
// Between steps, codec instances that grew past the keep limit are dropped (memory comes back),
// unless the pool reserved room for keeping them all (`keepInstances`): then they are kept for the
// next image and this thread tells the pool how much it holds (src/pipeline/retained-memory.ts).
import { createHmac } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { threadId } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import type { ImageFormat, InputFormat } from '../src/codecs/formats.js';
import type { EncodeOptions, Raster } from '../src/codecs/types.js';
import type { CompressOutcome, CompressOutput, CompressTask, EncodedOutput, CompressWorkerData, ReleaseTask, StatsTask, ThreadStats, WarmUpTask } from '../src/pipeline/compress-task.js';
import { RetainedMemory } from '../src/pipeline/retained-memory.js';
import { applyOrientation, CODECS, CodecError, grownBytes, instanceStats, releaseGrown, resize, SOURCES, warmUp } from './codecs.js';
import { collectGarbage, ownBytes, setKeepLimit } from './codecs/wasm.js';
import { predictQuality, searchQuality } from './auto-quality.js';
import { AUTO_QUALITY_FORMATS } from '../src/codecs/plan.js';

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
    // a Set: two outputs may be views of one buffer (a pass-through may return the source itself)
    return [...new Set([this.out.bytes.buffer, ...Object.values(this.out.renditions).map((r) => r.bytes.buffer)])];
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

/** Inputs whose decoded pixels (or file) pass these sizes get a collection after their task. */
const LARGE_INPUT_BYTES = 8 * 1024 * 1024;
const LARGE_PIXELS = 4_000_000;

/** Images over this many pixels let go of their codec instances step by step (compressImage). */
const STEPWISE_RELEASE_PIXELS = 16_000_000;
const isLarge = (task: CompressTask) => task.bytes.length > LARGE_INPUT_BYTES || task.plan.declared.width * task.plan.declared.height > LARGE_PIXELS;

/** What one output is: the request-level output or a rendition, as the plan gives it. */
interface OutputTarget {
  target: ImageFormat;
  opaqueTarget: ImageFormat;
  encode: EncodeOptions;
  /** quality=auto: the score to reach, where the target format is one the search applies to */
  auto: { target: number } | null;
  output: { width: number; height: number };
}

/**
 * One decode, then a loop over the outputs (the request-level one and each rendition), largest
 * first, all made from the same decoded, upright pixels. The decode happens only when some output
 * needs it (none when every output is a pass-through), and at most once. A smaller output is
 * resized from an earlier, larger one when that is at least twice its size (Lanczos3 still has a
 * 2x reduction of its own to antialias) rather than from the full decode: three WebP renditions
 * (1600, 800, 320 px) of a 24 MP JPEG took 1.6x the 1600 px one alone when each resize read the
 * whole decode (bench/convert.ts, convert.renditions.time_vs_one).
 */
async function compressImage(task: CompressTask): Promise<CompressOutput> {
  const { bytes, plan } = task;
  const bytesIn = bytes.length;
  const large = isLarge(task);
  // An image beyond the usual camera's size lets go of every codec instance after its step (and
  // collects), even where the pool has room to keep them: what one step grew is then not added to
  // the next step's memory, as the plan counts each step on its own (48 MP JPEG at 1600 px: peak
  // 59 -> 46 MiB above idle, bench/large-images.ts); making them again costs a few ms against
  // the seconds such an image takes.
  const stepwise = plan.declared.width * plan.declared.height > STEPWISE_RELEASE_PIXELS;
  const releaseGrownUnlessKept = () => {
    if (stepwise) releaseGrown(0);
    else if (!task.keepInstances) releaseGrown();
  };
  const source = SOURCES[plan.source];
  logCodecRun(source.format, bytes.length);
  // an input-only format is always converted, and the status says from what (every output)
  const notes: string[] = source.originalAs ? [`converted from ${source.label}`] : [];
  let upright: Raster | null = null;
  /** whether the decoded image has no transparency (input-only formats under format=original pick their target by it) */
  let opaque = false;
  let srgb = false;
  const decodeOnce = async (): Promise<Raster> => {
    if (upright) return upright;
    // shrunk on load when the plan says so (JPEG: 1/2, 1/4 or 1/8 in the DCT domain), a scale
    // chosen from the largest output, so every output is still a reduction of these pixels;
    // orientation and the resizes below compose with it, since the scale is the same on both sides
    const image = await source.decode(bytes, { scale: plan.decodeScale });
    if (image.width !== plan.decoded.width || image.height !== plan.decoded.height) {
      throw new CodecError(`${source.format.toUpperCase()} decode failed: size differs from the header`);
    }
    if (image.notes) notes.push(...image.notes);
    opaque = isOpaque(image);
    srgb = image.srgb === true;
    // A large source no output can pass through is not needed once decoded (its profile read):
    // this thread owns it, so it goes with the decoder's memory.
    if (large && task.ownBytes && !sourceMayBeOutput) {
      await sourceIcc();
      dropSource(bytes);
    }
    releaseGrownUnlessKept();
    upright = applyOrientation(image, plan.orientation);
    return upright;
  };
  let icc: Uint8Array | null | undefined;
  // Colour: the decoders hand over the pixels untouched (no colour management), so the source's
  // ICC profile describes the output pixels too and goes with them; except CMYK, which the
  // decoder converted to sRGB (its CMYK profile describes nothing in the output).
  const sourceIcc = async () => (srgb ? null : icc === undefined ? (icc = await source.readIcc(bytes)) : icc);
  const shared = plan.renditions.length > 0;
  const outputs: Array<{ name: string | null; target: OutputTarget }> = [{ name: null, target: plan }, ...plan.renditions.map((r) => ({ name: r.name, target: r }))];
  /** whether an output keeps the input's format and size, so the source itself may be what is returned */
  const keepsShape = (format: ImageFormat, { width, height }: { width: number; height: number }) => format === plan.source && width === plan.upright.width && height === plan.upright.height;
  const sourceMayBeOutput = outputs.some(({ target }) => keepsShape(target.target, target.output));
  /** the resized rasters made so far (before any flattening), to make smaller outputs from */
  const resizedSoFar: Raster[] = [];
  const startFor = (decoded: Raster, { width, height }: { width: number; height: number }): Raster => {
    let best = decoded;
    for (const r of resizedSoFar) {
      const usable = (r.width === width && r.height === height) || (r.width >= 2 * width && r.height >= 2 * height);
      if (usable && r.width < best.width) best = r;
    }
    return best;
  };

  const makeOutput = async ({ target: targetFormat, opaqueTarget, encode, auto, output }: OutputTarget, previousQuality?: number): Promise<EncodedOutput> => {
    // under format=original an input-only format's target is picked after decoding, from the two the plan names
    let target = CODECS[targetFormat];
    const result = (
      out: Uint8Array, outcome: CompressOutcome, measured: { quality: number | null; score: number | null } = { quality: null, score: null }, format: ImageFormat = target.format,
    ): EncodedOutput => ({
      bytes: ownBytes(out), format, width: output.width, height: output.height, bytesIn, bytesOut: out.length, outcome, ...measured,
      note: notes.length > 0 ? notes.join('; ') : null,
    });
    // The output keeps the input's format and size: only then may the source itself be the output.
    const sameShape = keepsShape(targetFormat, output);

    // Pass-through: re-encoding a JPEG that is already at or below the quality asked only loses
    // detail. Not when it needs rotating: its EXIF orientation goes with the stripped metadata. Not
    // with quality=auto: there is no quality asked (the never-worse rule below still keeps the source).
    if (sameShape && plan.orientation === 1 && source.sourceQuality && !auto) {
      const q = source.sourceQuality(bytes);
      const stripped = q !== null && q <= encode.quality ? source.stripMetadata(bytes) : null;
      if (stripped) return result(stripped, 'passed_through');
    }

    let image = startFor(await decodeOnce(), output);
    if (opaqueTarget !== targetFormat && opaque) target = CODECS[opaqueTarget];
    if (image.width !== output.width || image.height !== output.height) {
      image = await resize(image, output.width, output.height);
      // one output: the decoded pixels are not needed again (collected with the resizer)
      if (!shared) upright = null;
      releaseGrownUnlessKept();
      if (shared) resizedSoFar.push(image);
    }
    if (target.format === 'jpeg' && !image.opaque) {
      // these pixels may serve the other outputs too: flatten a copy of them
      if (shared) image = { ...image, data: image.data.slice() };
      flattenOnWhite(image);
    }
    let encoded: Uint8Array;
    const measured = { quality: target.format === 'png' ? null : encode.quality, score: null as number | null };
    if (auto && AUTO_QUALITY_FORMATS.includes(target.format)) {
      // quality=auto: the lowest quality whose output, decoded, scores the target against this raster
      const raster = image;
      const codec = target;
      const found = await searchQuality({
        source: raster,
        encode: (quality) => codec.encode(raster, { ...encode, quality }),
        decode: (b) => codec.decode(b),
        target: auto.target,
        start: predictQuality(auto.target, previousQuality),
        alpha: codec.format !== 'jpeg' && !raster.opaque,
      });
      encoded = found.bytes;
      measured.quality = found.quality;
      measured.score = Math.round(found.score * 100) / 100;
    } else {
      encoded = task.lean && target.encodeLean ? await target.encodeLean(image, encode) : await target.encode(image, encode);
    }
    releaseGrownUnlessKept();
    const profile = await sourceIcc();
    if (profile && target.embedIcc) encoded = await target.embedIcc(encoded, profile);

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
    if (sameShape && !task.lean && !notes.some((n) => n.startsWith('first frame')) && encoded.length >= bytes.length && plan.orientation === 1) {
      const stripped = source.stripMetadata(bytes);
      if (stripped && stripped.length < encoded.length) return result(stripped, 'original_kept');
    }
    return result(encoded, 'compressed', measured);
  };

  const pixels = (o: OutputTarget) => o.output.width * o.output.height;
  const made = new Map<string | null, EncodedOutput>();
  for (const { name, target } of [...outputs].sort((a, b) => pixels(b.target) - pixels(a.target))) {
    try {
      // the previous image's answer is where the request-level output's search starts; a rendition's starts at its target
      made.set(name, await makeOutput(target, name === null ? task.previousQuality : undefined));
    } catch (err) {
      // a rendition that fails fails its image, and the image's error says which
      if (name === null) throw err;
      throw new CodecError(`rendition "${name}": ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  // notes found by the decode belong to every output, the ones made before it too
  const note = notes.length > 0 ? notes.join('; ') : null;
  const withNote = (o: EncodedOutput): EncodedOutput => ({ ...o, note });
  return { ...withNote(made.get(null)!), renditions: Object.fromEntries(plan.renditions.map((r) => [r.name, withNote(made.get(r.name)!)])) };
}

/** Whether an output is (a view of) the source itself: a pass-through. */
const sharesSource = (out: CompressOutput, source: Uint8Array) => [out, ...Object.values(out.renditions)].some((o) => o.bytes.buffer === source.buffer);

/**
 * Detaches the source's buffer (this thread's own: the pool transferred it here), handing its
 * memory to a clone nothing references, so the collection that follows frees it.
 */
function dropSource(source: Uint8Array): void {
  try {
    structuredClone(source.buffer, { transfer: [source.buffer as ArrayBuffer] });
  } catch {
    // not transferable here (a runtime without it): freed when Piscina lets go of the message
  }
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
  const large = isLarge(task);
  takeOverKept(task);
  let out: CompressOutput;
  let ok = false;
  try {
    out = await compressImage(task);
    // Each output's name (the runner's HMAC under the deployment secret), renditions included,
    // here so the event loop does not hash every output.
    if (task.nameKey) for (const o of [out, ...Object.values(out.renditions)]) o.nameMac = createHmac('sha256', task.nameKey).update(o.bytes).digest('hex');
    ok = true;
  } finally {
    settleKept(task, ok);
    // The decoded pixels of a large image (hundreds of MB of ArrayBuffer) are garbage once
    // compressImage has returned, but nothing would collect them: between tasks Piscina parks
    // this thread in Atomics.wait, so no timer or idle-time GC runs. Collect now, before replying.
    // The source bytes are still referenced by Piscina's message until the next task arrives, so
    // they are let go by hand first (146 MB for an 8000x6000 PNG of a photo with alpha).
    if (large) {
      if (task.ownBytes && (!ok || !sharesSource(out!, task.bytes))) dropSource(task.bytes);
      collectGarbage();
    }
  }
  return move(new Transferred(out));
}
