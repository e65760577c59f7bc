// A tiny image server for the benchmark: GET /img/<n>/<anything> answers the n-th image of a list
// (n modulo its length), so one corpus can be served under any number of distinct URLs.
// Listens on a loopback address other than 127.0.0.1 so the service's fetch allowlist can name it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BenchImageServer {
  origin: string;
  cidr: string;
  /** the URL serving images[n % images.length]; `tag` makes otherwise equal URLs distinct */
  url(n: number, tag?: string): string;
  requests(): number;
  close(): Promise<void>;
}

/**
 * `distinct`: every JPEG answer carries a comment segment (COM) naming its URL, so no two URLs give
 * the same bytes (no content-cache reuse between them); decoders ignore COM and outputs drop it.
 */
export async function startImageServer(images: { name: string; bytes: Uint8Array }[], host = '127.0.0.9', opts: { distinct?: boolean } = {}): Promise<BenchImageServer> {
  let count = 0;
  const types: Record<string, string> = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };
  const server: Server = createServer((req, res) => {
    count++;
    const m = /^\/img\/(\d+)\//.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const img = images[Number(m[1]) % images.length]!;
    const type = types[img.name.split('.').pop()!.toLowerCase()] ?? 'application/octet-stream';
    const comment = opts.distinct && type === 'image/jpeg' ? jpegComment(req.url!) : null;
    res.writeHead(200, { 'content-type': type, 'content-length': img.bytes.length + (comment?.length ?? 0) });
    if (!comment) {
      res.end(img.bytes);
      return;
    }
    // SOI, the comment, then the rest unchanged (views, no copy of the image)
    res.write(img.bytes.subarray(0, 2));
    res.write(comment);
    res.end(img.bytes.subarray(2));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://${host}:${port}`;
  return {
    origin,
    cidr: `${host}/32`,
    url: (n, tag) => `${origin}/img/${n}/${encodeURIComponent(images[n % images.length]!.name)}${tag ? `?t=${tag}` : ''}`,
    requests: () => count,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** A JPEG COM segment (FF FE, big-endian length including itself) holding `text`. */
function jpegComment(text: string): Buffer {
  const body = Buffer.from(text, 'latin1');
  const seg = Buffer.alloc(4 + body.length);
  seg[0] = 0xff;
  seg[1] = 0xfe;
  seg.writeUInt16BE(body.length + 2, 2);
  body.copy(seg, 4);
  return seg;
}
