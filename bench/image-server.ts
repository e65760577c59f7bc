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

export async function startImageServer(images: { name: string; bytes: Uint8Array }[], host = '127.0.0.9'): Promise<BenchImageServer> {
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
    res.writeHead(200, {
      'content-type': types[img.name.split('.').pop()!.toLowerCase()] ?? 'application/octet-stream',
      'content-length': img.bytes.length,
    });
    res.end(img.bytes);
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
