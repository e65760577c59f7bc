// Edge cases of the HTTP edge, the server seam and configuration found in review.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { serve } from '../src/runtime/serve.js';
import { spawnService, tempDir, type ChildService } from './helpers/service.js';
import { until } from './helpers/poll.js';

describe('configuration', () => {
  it('reads an empty numeric variable (PORT= in a compose file) as unset, not as 0', () => {
    const config = loadConfig({ PORT: '', FETCH_RETRIES: ' ', JPEG_QUALITY: '', WEBHOOK_BACKOFF_SCALE: '' });
    expect(config.PORT).toBe(8000);
    expect(config.PUBLIC_BASE_URL).toBe('http://localhost:8000');
    expect(config.FETCH_RETRIES).toBe(3);
    expect(config.JPEG_QUALITY).toBe(50);
    expect(config.WEBHOOK_BACKOFF_SCALE).toBe(1);
    expect(loadConfig({ PORT: '9000' }).PORT).toBe(9000);
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(/PORT/);
  });
});

describe('serve', () => {
  it('rejects when the port is taken, instead of an uncaught error event', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as { port: number };
    try {
      await expect(serve(() => new Response('x'), { port, hostname: '127.0.0.1', maxBodyBytes: 1024 })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});

describe('GET/HEAD /images/{key}', () => {
  // The real server process (node dist/src/main.js): what leaks there is what production leaks.
  let svc: ChildService;
  const key = `${'ab'.repeat(32)}.jpg`;
  // Bigger than one read chunk (64 KiB), so an unread body keeps its file open.
  const bytes = new Uint8Array(256 * 1024).fill(7);
  beforeAll(async () => {
    const dataDir = tempDir();
    const dir = join(dataDir, 'images', key.slice(0, 2));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, key), bytes);
    svc = await spawnService({ ROLE: 'api' }, dataDir);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('answers HEAD with the headers and no body', async () => {
    const res = await fetch(`${svc.base}/images/${key}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('content-length')).toBe(String(bytes.length));
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    const get = await fetch(`${svc.base}/images/${key}`);
    expect(new Uint8Array(await get.arrayBuffer())).toEqual(bytes);
  });

  it.runIf(existsSync('/proc/self/fd'))('does not leak an open file per HEAD request', async () => {
    const openFiles = () => readdirSync(`/proc/${svc.proc.pid}/fd`).length;
    await fetch(`${svc.base}/images/${key}`, { method: 'HEAD' }); // warm up the connection
    const before = openFiles();
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${svc.base}/images/${key}`, { method: 'HEAD' });
      expect(res.status).toBe(200);
    }
    // A leaked descriptor stays open for good; closing the ones in use may lag the answers a little.
    await until(() => openFiles() - before < 20, 'the open files to fall back', { timeoutMs: 5_000 });
  });
});
