// Loading the codecs' WebAssembly inside a pool thread: each .wasm is compiled once per thread
// from the bytes in node_modules (createRequire(...).resolve works on Node, Bun and Deno alike; no
// fetch, no file URLs handed to the codecs) and instantiated lazily. Instances are counted and
// their memories watched: WASM memory only grows, so an instance that grew past a limit (a large
// image went through it) is dropped and the next call starts a fresh, small one.
//
// Console output from the codecs (libjpeg warnings, Rust panics) is captured per call and never
// printed: it becomes part of an error message or is dropped.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { CodecError, type Raster } from '../../src/codecs/types.js';
import { collectGarbage } from '../../src/runtime/collect-garbage.js';
import type { InstanceStats } from '../../src/pipeline/compress-task.js';

export { CodecError };

const require = createRequire(import.meta.url);
const compiled = new Map<string, WebAssembly.Module>();

export function wasmModule(spec: string): WebAssembly.Module {
  let m = compiled.get(spec);
  if (!m) {
    m = new WebAssembly.Module(readFileSync(require.resolve(spec)));
    compiled.set(spec, m);
  }
  return m;
}

export const wasmBytes = (spec: string): Uint8Array => readFileSync(require.resolve(spec));

/** wasi-libc's errno values the stubs answer with */
const WASI_EBADF = 8;
const WASI_ENOSYS = 52;

/**
 * Stand-ins for the WASI calls wasi-libc links into our own C modules (wasm/*: stdio, exit, the
 * clock, preopened directories), none of which their work reaches: so such a module needs no WASI
 * host and loads the same on Node, Bun and Deno. fd_prestat_get answers "no such descriptor", the
 * end of the list libc's start-up walks (any other error makes it exit); proc_exit calls `exit`,
 * which must throw; everything else fails with ENOSYS (a clock that fails reads as -1: LittleCMS
 * only dates the profiles it creates).
 */
function wasiStubs(module: WebAssembly.Module, exit: (code: number) => never): Record<string, (...args: number[]) => number> {
  const wasi: Record<string, (...args: number[]) => number> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module !== 'wasi_snapshot_preview1') continue;
    wasi[imp.name] = imp.name === 'proc_exit' ? (code) => exit(code) : imp.name === 'fd_prestat_get' ? () => WASI_EBADF : () => WASI_ENOSYS;
  }
  return wasi;
}

/** What every module built by wasm/NAME/build.sh (a wasm32-wasi reactor) exports. */
export interface ReactorExports {
  memory: WebAssembly.Memory;
  _initialize(): void;
}

const reactors = new Map<string, WebAssembly.Module>();

/**
 * An instance of one of our own modules (wasm/NAME/NAME.wasm; build.mjs copies wasm/ to dist/wasm/,
 * so a URL relative to the caller is the same from source and from dist): compiled once per
 * thread, WASI stubbed, `_initialize` run. `env` makes the module's own imports; they read the
 * instance's memory through `memory()`, which is set before any of them can run. A proc_exit
 * (never reached: each module's glue replaces libc's paths that exit) throws `Abort`.
 */
export function instantiateReactor<E extends ReactorExports>(
  file: URL,
  env: (memory: () => WebAssembly.Memory) => WebAssembly.ModuleImports = () => ({}),
  Abort: new (message: string) => Error = Error,
): { module: E; memory: WebAssembly.Memory } {
  let compiledModule = reactors.get(file.href);
  if (!compiledModule) {
    compiledModule = new WebAssembly.Module(readFileSync(file));
    reactors.set(file.href, compiledModule);
  }
  let memory: WebAssembly.Memory | undefined;
  const wasi = wasiStubs(compiledModule, (code) => {
    throw new Abort(`exit(${code})`);
  });
  const instance = new WebAssembly.Instance(compiledModule, { env: env(() => memory!), wasi_snapshot_preview1: wasi });
  const module = instance.exports as unknown as E;
  memory = module.memory;
  module._initialize();
  return { module, memory };
}

/** A message a module hands out as (pointer, length), such as libjpeg's error text: at most 200 characters. */
export const messageAt = (memory: WebAssembly.Memory, ptr: number, length: number): string =>
  String.fromCharCode(...new Uint8Array(memory.buffer, ptr, Math.min(length, 200)));

// Some codec glue builds `new ImageData(...)`, which Node lacks.
if (typeof (globalThis as { ImageData?: unknown }).ImageData === 'undefined') {
  (globalThis as Record<string, unknown>).ImageData = class ImageData {
    constructor(
      readonly data: Uint8ClampedArray,
      readonly width: number,
      readonly height: number,
    ) {}
  };
}

/** Lines the codecs printed during the current call (kept out of the service's logs). */
export const codecOutput: string[] = [];
const capture = (line: unknown) => {
  if (codecOutput.length < 20) codecOutput.push(String(line));
};

/** Runs fn with console.* silenced (wasm-bindgen glue prints Rust panics with console.error). */
function quietly<T>(fn: () => T): T {
  const c = console as unknown as Record<string, unknown>;
  const saved = { log: c.log, warn: c.warn, error: c.error, info: c.info, debug: c.debug };
  c.log = c.warn = c.error = c.info = c.debug = capture;
  try {
    return fn();
  } finally {
    Object.assign(c, saved);
  }
}

interface Made<T> {
  module: T;
  memory: WebAssembly.Memory | null;
  /** lets go of whatever outside the Lazy still holds the instance (its glue's module state) */
  release?: () => void;
}

const instances: Lazy<unknown>[] = [];

/** One codec instance per thread, made on first use, dropped after a trap or once it grew too big. */
export class Lazy<T> {
  private value: Promise<T> | undefined;
  private memory: WebAssembly.Memory | null = null;
  private releaseMade: (() => void) | undefined;
  /** how many times an instance was made in this thread */
  made = 0;
  constructor(
    readonly name: string,
    private readonly make: () => Promise<Made<T>>,
  ) {
    instances.push(this as Lazy<unknown>);
  }
  get(): Promise<T> {
    this.value ??= this.make().then(
      (m) => {
        this.made++;
        this.memory = m.memory;
        this.releaseMade = m.release;
        return m.module;
      },
      (err: unknown) => {
        this.value = undefined;
        throw err;
      },
    );
    return this.value;
  }
  get live(): boolean {
    return this.value !== undefined;
  }
  /** bytes of WASM memory the live instance holds (0 when there is none) */
  get memoryBytes(): number {
    return this.value && this.memory ? this.memory.buffer.byteLength : 0;
  }
  /** Drops the instance (after an abort or trap its memory may be inconsistent; or it grew). */
  reset(): void {
    this.value = undefined;
    this.memory = null;
    const release = this.releaseMade;
    this.releaseMade = undefined;
    try {
      release?.();
    } catch {
      // the glue keeps the old instance until the next one is made: only later, not lost
    }
  }
}

export type { InstanceStats };

export function instanceStats(): InstanceStats {
  const made: Record<string, number> = {};
  const live: Record<string, number> = {};
  for (const l of instances) {
    made[l.name] = l.made;
    if (l.live) live[l.name] = l.memoryBytes;
  }
  return { made, live };
}

/**
 * Instances start at 1-16 MiB and grow to fit their largest image; up to this size they are kept
 * between images (instantiating again costs a few ms), beyond it dropped after the step unless the
 * pool reserved room to keep them (workers/compress.ts). 32 MiB keeps them for the usual 1-2 MP
 * product photos (MozJPEG's encoder holds 6-12 B/px, wasm/mozjpeg).
 */
let keepLimit = 32 * 1024 * 1024;

export function setKeepLimit(bytes: number): void {
  keepLimit = bytes;
}

/**
 * Drops every instance whose WASM memory is larger than limitBytes, then asks for a garbage
 * collection so the memory goes back to the system now rather than at some later allocation.
 * Returns the names dropped.
 */
export function releaseGrown(limitBytes = keepLimit): string[] {
  const dropped: string[] = [];
  for (const l of instances) {
    if (l.memoryBytes > limitBytes) {
      l.reset();
      dropped.push(l.name);
    }
  }
  if (dropped.length > 0) collectGarbage();
  return dropped;
}

/** WASM memory of the live instances that releaseGrown would drop: what a thread keeps beyond the usual. */
export function grownBytes(limitBytes = keepLimit): number {
  let total = 0;
  for (const l of instances) if (l.memoryBytes > limitBytes) total += l.memoryBytes;
  return total;
}

export { collectGarbage };

type EmscriptenFactory<M> = (opts: Record<string, unknown>) => Promise<M>;

/**
 * The embind glue shipped with the @jsquash codecs copies every input buffer into WASM memory
 * one byte at a time (std::string marshalling); for a 1.4-megapixel RGBA image that loop is
 * about a sixth of a MozJPEG encode. The same glue with the loop replaced by one
 * `HEAPU8.set` produces byte-identical output (bench/diag/embind-copy.ts). The copy is loaded
 * from a data: URL; if the pattern is gone (a new codec release) or the runtime cannot import
 * it, the shipped glue is used as it is.
 */
const EMBIND_BYTE_LOOP = 'for(var i=0;i<length;++i){HEAPU8[ptr+i]=value[i]}';
/** Glue files that were loaded with the faster copy (tests check the patch still applies). */
export const patchedGlue = new Set<string>();
const glues = new Map<string, Promise<unknown>>();

/** Imports glue JavaScript once per thread, with `patch` applied when its pattern is present. */
function importGlue<G>(glue: string, pattern: string, replacement: string): Promise<G> {
  let p = glues.get(glue) as Promise<G> | undefined;
  if (!p) {
    p = (async () => {
      const path = require.resolve(glue);
      const source = readFileSync(path, 'utf8');
      if (source.includes(pattern)) {
        try {
          const url = `data:text/javascript;base64,${Buffer.from(source.replace(pattern, replacement)).toString('base64')}`;
          const mod = (await import(url)) as G;
          patchedGlue.add(glue);
          return mod;
        } catch {
          // fall through to the shipped glue
        }
      }
      return (await import(pathToFileURL(path).href)) as G;
    })();
    glues.set(glue, p);
  }
  return p;
}

function findMemory(...sources: unknown[]): WebAssembly.Memory | null {
  for (const s of sources) {
    if (!s || typeof s !== 'object') continue;
    for (const v of Object.values(s as Record<string, unknown>)) {
      if (v instanceof WebAssembly.Memory) return v;
      if (v && typeof v === 'object' && !(v instanceof WebAssembly.Memory)) {
        for (const w of Object.values(v as Record<string, unknown>)) if (w instanceof WebAssembly.Memory) return w;
      }
    }
  }
  return null;
}

/** An Emscripten (embind) codec: a fresh module from the factory, its memory found on the instance. */
export async function emscripten<M>(glue: string, wasm: string): Promise<Made<M>> {
  const { default: factory } = await importGlue<{ default: EmscriptenFactory<M> }>(glue, EMBIND_BYTE_LOOP, 'HEAPU8.set(value,ptr)');
  const module = wasmModule(wasm);
  let memory: WebAssembly.Memory | null = null;
  const made = await factory({
    noInitialRun: true,
    // The wasm comes from instantiateWasm; this only keeps the glue from resolving a file URL
    // against import.meta.url (a data: URL when patched).
    locateFile: (file: string) => file,
    print: capture,
    printErr: capture,
    instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) {
      const instance = new WebAssembly.Instance(module, imports);
      memory = findMemory(instance.exports, imports);
      done(instance);
      return instance.exports;
    },
  });
  return { module: made, memory };
}

// wasm-bindgen glue keeps its one instance in module state and refuses a second initSync. The
// guard is removed from the copy we load, so initSync swaps in a fresh instance and the old one
// (with its grown memory) becomes garbage; objects of the old instance must not outlive a call.
const INIT_GUARD = 'function initSync(module) {\n    if (wasm !== undefined) return wasm;';

/** A wasm-bindgen codec: the glue module (one per thread) re-initialised with a new instance. */
export async function wasmBindgen<M extends { initSync(m: unknown): unknown }>(glue: string, wasm: string, objectInit: boolean): Promise<Made<M>> {
  const mod = await importGlue<M>(glue, INIT_GUARD, 'function initSync(module) {');
  const module = wasmModule(wasm);
  // (with the shipped glue, initSync hands back its first instance: correct, only not renewed)
  const init = () => quietly(() => mod.initSync(objectInit ? { module } : module));
  const exports = init();
  // Dropping the Lazy is not enough: the glue's module state (`wasm`, its cached views of the
  // memory) holds the instance until the next initSync, so a grown memory stayed resident after
  // its image: 324 MiB of PNG decoder after an 8000x6000 PNG (bench/diag/large-memory.ts). A
  // fresh instance (its initial memory, ~1 MiB) swapped in lets the grown one go.
  return { module: mod, memory: findMemory(exports), release: patchedGlue.has(glue) ? () => void init() : undefined };
}

/** Runs one synchronous codec call: output captured, failures turned into CodecError, and the
 * instance dropped after anything thrown from inside WASM (abort, trap, exit). */
export async function call<M, T>(lazy: Lazy<M>, what: string, fn: (m: M) => T): Promise<T> {
  const m = await lazy.get();
  codecOutput.length = 0;
  try {
    return quietly(() => fn(m));
  } catch (err) {
    if (err instanceof CodecError) throw err;
    lazy.reset();
    const detail = codecOutput.at(-1) ?? (err instanceof Error ? err.message : typeof err === 'string' ? err : '');
    throw new CodecError(`${what} failed${detail ? `: ${detail.slice(0, 200)}` : ''}`);
  }
}

export function checkRaster(img: Raster | null | undefined, what: string): Raster {
  if (!img || !(img.width > 0) || !(img.height > 0) || img.data.length !== img.width * img.height * 4) {
    throw new CodecError(`${what} failed: ${codecOutput.at(-1) ?? 'no image'}`);
  }
  return { data: img.data, width: img.width, height: img.height };
}

/** Outputs must own their whole buffer so they can be transferred, never a view into wasm memory. */
export function ownBytes(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer ? b : b.slice();
}
