// The runner's side of the download thread (workers/download.ts): image downloads run there, off
// the event loop that serves the API. Each download is a message out and one back, its body moved
// (not copied) on the way back, and from here to a pool thread. The thread starts with the first
// download; if it ever dies, the downloads it held fail with a clear error and the next one starts
// a new thread.
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { resolveWorkerFile } from '../runtime/worker-file.js';
import { fromFailure, type DownloadReply, type DownloadRequest, type DownloadThreadSettings, type FetchedImage } from './download-task.js';
import type { GuardLog } from './address-guard.js';
import { FetchError } from './errors.js';
import type { NotModified, Validators } from './fetch-image.js';

export type { DownloadThreadSettings, FetchedImage } from './download-task.js';

/** Where the guard's refusals (debug) and a dead thread (error) are logged. */
export interface DownloadThreadLog extends GuardLog {
  error(obj: object, msg: string): void;
}

interface Pending {
  resolve(r: FetchedImage | NotModified): void;
  reject(err: unknown): void;
}

export class DownloadThread {
  readonly #settings: DownloadThreadSettings;
  readonly #log: DownloadThreadLog;
  readonly #workerFile: string | undefined;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | null = null;
  #nextId = 1;

  /** `workerFile` overrides the thread's module (tests); by default workers/download.js. */
  constructor(settings: DownloadThreadSettings, log: DownloadThreadLog, workerFile?: string) {
    this.#settings = settings;
    this.#log = log;
    this.#workerFile = workerFile;
  }

  /** Downloads in flight (asked, not yet answered). */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * GETs the image (asking whether it changed since `validators`, when given), as downloadImage /
   * downloadIfChanged do, plus the SHA-256 of the body. Rejects with a FetchError as they do; on
   * `signal` at once, with its reason.
   */
  download(url: string, validators: Validators | null, signal?: AbortSignal): Promise<FetchedImage | NotModified> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const worker = this.#started();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (!this.#pending.delete(id)) return;
        worker.postMessage({ type: 'abort', id } satisfies DownloadRequest);
        this.#idleCheck(worker);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      this.#pending.set(id, {
        resolve: (r) => { done(); resolve(r); },
        reject: (e) => { done(); reject(e); },
      });
      worker.ref(); // the process waits for an answer
      worker.postMessage({ type: 'get', id, url, validators } satisfies DownloadRequest);
    });
  }

  /** Stops the thread; downloads still in flight fail. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#stopped(worker, new FetchError('the service is stopping', 'aborted', false));
    await worker.terminate();
  }

  #started(): Worker {
    if (this.#worker) return this.#worker;
    const file = this.#workerFile ?? resolveWorkerFile('download');
    const worker = new Worker(pathToFileURL(file), { workerData: this.#settings });
    worker.on('message', (m: DownloadReply) => this.#answer(worker, m));
    worker.on('error', (err) => {
      this.#log.error({ err }, 'the download thread failed; its downloads fail, the next one starts a new thread');
      this.#stopped(worker, new FetchError('the download thread stopped', 'network', true));
    });
    worker.on('exit', () => this.#stopped(worker, new FetchError('the download thread stopped', 'network', true)));
    this.#worker = worker;
    return worker;
  }

  #answer(worker: Worker, m: DownloadReply): void {
    if (m.type === 'refused') return this.#log.debug(m.obj, m.msg);
    const waiting = this.#pending.get(m.id);
    if (!waiting) return; // aborted here already
    this.#pending.delete(m.id);
    this.#idleCheck(worker);
    if (m.type === 'done') waiting.resolve(m.result);
    else waiting.reject(fromFailure(m.error));
  }

  /** An idle thread does not keep the process alive. */
  #idleCheck(worker: Worker): void {
    if (this.#pending.size === 0) worker.unref();
  }

  /** The thread is gone (or going): whatever it held fails with `err`. */
  #stopped(worker: Worker, err: FetchError): void {
    if (this.#worker !== worker) return;
    this.#worker = null;
    const waiting = [...this.#pending.values()];
    this.#pending.clear();
    for (const w of waiting) w.reject(err);
  }
}
