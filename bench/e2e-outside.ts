// The e2e bench's outside world in a thread of its own: the image server the service downloads
// from, and the client that uploads the CSV and polls the status. In a deployment both are other
// machines; here they share the process (and its cores) but not the service's main thread, so
// that thread's CPU time is the service's alone.
import { parentPort, workerData } from 'node:worker_threads';
import { productCsv, upload, waitFinal } from './csv.js';
import { startImageServer } from './image-server.js';

export interface OutsideInit {
  images: { name: string; bytes: Uint8Array }[];
}

/** One upload of `images` URLs (distinct per `tag`), `perProduct` per product, timed to completion. */
export interface OutsideRun {
  base: string;
  tag: string;
  images: number;
  perProduct: number;
  pollMs: number;
}

export type OutsideAnswer =
  | { ready: true; cidr: string }
  | { ms: number; uploadMs: number; status: string; progress: { done: number; failed: number } }
  | { error: string };

const port = parentPort!;
const server = await startImageServer((workerData as OutsideInit).images, undefined, { distinct: true });
port.on('message', (run: OutsideRun | 'close') => {
  if (run === 'close') {
    void server.close().then(() => port.close());
    return;
  }
  void (async (): Promise<OutsideAnswer> => {
    const csv = productCsv(Math.ceil(run.images / run.perProduct), (p) => {
      const urls: string[] = [];
      for (let k = 0; k < run.perProduct; k++) {
        const i = (p - 1) * run.perProduct + k;
        if (i < run.images) urls.push(server.url(i, run.tag));
      }
      return urls;
    });
    const t0 = performance.now();
    const up = await upload(run.base, csv);
    if (up.status !== 202 || !up.body.request_id) return { error: `upload: HTTP ${up.status} ${JSON.stringify(up.body)}` };
    const accepted = performance.now();
    const fin = await waitFinal(run.base, up.body.request_id, run.pollMs);
    return { ms: fin.at - t0, uploadMs: accepted - t0, status: fin.status.status, progress: fin.status.progress };
  })().then((a) => port.postMessage(a), (err: unknown) => port.postMessage({ error: String(err) }));
});
port.postMessage({ ready: true, cidr: server.cidr } satisfies OutsideAnswer);
