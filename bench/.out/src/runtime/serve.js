function currentRuntime() {
  if (typeof Bun !== "undefined") return "bun";
  if (typeof Deno !== "undefined") return "deno";
  return "node";
}
async function serve(fetch, opts) {
  const runtime = currentRuntime();
  if (runtime === "bun") {
    const server = Bun.serve({ fetch, port: opts.port, hostname: opts.hostname, maxRequestBodySize: opts.maxBodyBytes * 2, idleTimeout: 120 });
    return { port: server.port, runtime, close: async () => {
      await server.stop();
    } };
  }
  if (runtime === "deno") {
    let shutdown = async () => {
    };
    const port = await new Promise((resolve) => {
      const server = Deno.serve({ port: opts.port, hostname: opts.hostname, onListen: (addr) => resolve(addr.port) }, fetch);
      shutdown = () => server.shutdown();
    });
    return { port, runtime, close: () => shutdown() };
  }
  const { serve: nodeServe } = await import("@hono/node-server");
  return new Promise((resolve) => {
    const server = nodeServe({ fetch, port: opts.port, hostname: opts.hostname }, (info) => {
      resolve({
        port: info.port,
        runtime,
        close: () => new Promise((done) => {
          server.close(() => done());
          server.closeIdleConnections?.();
        })
      });
    });
  });
}
export {
  currentRuntime,
  serve
};
//# sourceMappingURL=serve.js.map
