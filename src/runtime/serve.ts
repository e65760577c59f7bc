// The only runtime-specific piece: start an HTTP server for a web-standard fetch handler on
// Node (@hono/node-server), Bun (Bun.serve) or Deno (Deno.serve).
type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface RunningServer {
  port: number;
  runtime: 'node' | 'bun' | 'deno';
  /** Stops accepting connections; resolves when open requests have finished. */
  close(): Promise<void>;
}

declare const Bun: { serve(options: Record<string, unknown>): { port: number; stop(closeActive?: boolean): Promise<void> | void } } | undefined;
declare const Deno: {
  serve(options: Record<string, unknown>, handler: FetchHandler): { addr: { port: number }; shutdown(): Promise<void>; finished: Promise<void> };
} | undefined;

export function currentRuntime(): RunningServer['runtime'] {
  if (typeof Bun !== 'undefined') return 'bun';
  if (typeof Deno !== 'undefined') return 'deno';
  return 'node';
}

export async function serve(fetch: FetchHandler, opts: { port: number; hostname: string; maxBodyBytes: number }): Promise<RunningServer> {
  const runtime = currentRuntime();
  if (runtime === 'bun') {
    // The body limit is enforced while streaming by the upload route; Bun's own cap sits above it.
    const server = Bun!.serve({ fetch, port: opts.port, hostname: opts.hostname, maxRequestBodySize: opts.maxBodyBytes * 2, idleTimeout: 120 });
    return { port: server.port, runtime, close: async () => { await server.stop(); } };
  }
  if (runtime === 'deno') {
    let shutdown: () => Promise<void> = async () => {};
    const port = await new Promise<number>((resolve) => {
      const server = Deno!.serve({ port: opts.port, hostname: opts.hostname, onListen: (addr: { port: number }) => resolve(addr.port) }, fetch);
      shutdown = () => server.shutdown();
    });
    return { port, runtime, close: () => shutdown() };
  }
  const { serve: nodeServe } = await import('@hono/node-server');
  return new Promise((resolve, reject) => {
    // A listen error (port in use, address not available) fails start-up instead of being thrown
    // as an uncaught 'error' event with this promise left pending.
    const onListenError = (err: Error) => reject(err);
    const server = nodeServe({ fetch, port: opts.port, hostname: opts.hostname }, (info) => {
      server.off('error', onListenError);
      resolve({
        port: info.port,
        runtime,
        close: () => new Promise((done) => {
          server.close(() => done());
          (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        }),
      });
    });
    server.once('error', onListenError);
  });
}
