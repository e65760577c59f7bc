// The blob storage contract, on every backend: the local disk, and S3 against s3rver (an
// independent S3-compatible server from npm) that this test starts on loopback.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../src/storage/local.js';
import { S3Storage } from '../src/storage/s3.js';
import type { BlobStorage } from '../src/storage/types.js';

interface S3rverServer {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (opts: {
  address: string; port: number; silent: boolean; directory: string; configureBuckets: Array<{ name: string }>;
}) => S3rverServer;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

const keyOf = (bytes: Uint8Array, ext = 'jpg') => `${createHash('sha256').update(bytes).digest('hex')}.${ext}`;

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function defineStorageContract(name: string, setup: () => Promise<{ storage: BlobStorage; teardown(): Promise<void> }>) {
  describe(`blob storage: ${name}`, () => {
    let storage: BlobStorage;
    let teardown: () => Promise<void>;
    beforeAll(async () => {
      ({ storage, teardown } = await setup());
    });
    afterAll(async () => {
      await teardown();
    });

    it('passes its readiness check', async () => {
      await expect(storage.check()).resolves.toBeUndefined();
    });

    it('stores and returns bytes with their content type', async () => {
      const bytes = new Uint8Array(70_000).map((_, i) => (i * 31) % 251);
      const key = keyOf(bytes);
      await storage.put(key, bytes, 'image/jpeg');
      const blob = await storage.get(key);
      expect(blob).not.toBeNull();
      expect(blob!.size).toBe(bytes.byteLength);
      expect(blob!.contentType).toBe('image/jpeg');
      expect((await readAll(blob!.body)).equals(Buffer.from(bytes))).toBe(true);
    });

    it('answers null for a missing key', async () => {
      expect(await storage.get(keyOf(new Uint8Array([9, 9, 9]), 'png'))).toBeNull();
    });

    it('refuses keys that are not content addresses', async () => {
      for (const key of ['../etc/passwd', 'a.jpg', `${'0'.repeat(64)}.exe`, `${'0'.repeat(64)}.jpg/../x`]) {
        await expect(storage.put(key, new Uint8Array([1]), 'image/jpeg')).rejects.toThrow(/invalid blob key/);
        expect(await storage.get(key)).toBeNull();
      }
    });

    it('puts the same key twice without harm', async () => {
      const bytes = new TextEncoder().encode('same bytes, same key');
      const key = keyOf(bytes, 'webp');
      await storage.put(key, bytes, 'image/webp');
      await storage.put(key, bytes, 'image/webp');
      const blob = await storage.get(key);
      expect(blob!.contentType).toBe('image/webp');
      expect((await readAll(blob!.body)).toString()).toBe('same bytes, same key');
    });
  });
}

defineStorageContract('local', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'icp-blobs-'));
  return {
    storage: new LocalStorage(join(dir, 'images')),
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

defineStorageContract('s3 (s3rver)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'icp-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: 'images' }] });
  const { port } = await server.run();
  const storage = new S3Storage({
    bucket: 'images', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  return {
    storage,
    async teardown() {
      storage.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('blob storage: local', () => {
  it('dates a key put again now (the clean-up keeps it) and leaves no temporary file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'icp-blobs-'));
    try {
      const storage = new LocalStorage(join(dir, 'images'));
      const bytes = new TextEncoder().encode('put again');
      const key = keyOf(bytes, 'png');
      await storage.put(key, bytes);
      const hourAgo = new Date(Date.now() - 3_600_000);
      utimesSync(storage.pathOf(key), hourAgo, hourAgo);
      expect(await storage.modifiedAt(key)).toBeLessThan(Date.now() - 3_000_000);
      await storage.put(key, bytes);
      expect(await storage.modifiedAt(key)).toBeGreaterThan(Date.now() - 600_000);
      expect(readdirSync(dirname(storage.pathOf(key)))).toEqual([key]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('blob storage: s3 errors', () => {
  it('fails its readiness check when the bucket does not exist', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'icp-s3rver-'));
    const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [] });
    const { port } = await server.run();
    const storage = new S3Storage({
      bucket: 'absent', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    try {
      await expect(storage.check()).rejects.toThrow();
      await expect(storage.get(`${'a'.repeat(64)}.jpg`)).rejects.toThrow();
    } finally {
      storage.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('blob storage: s3 server that never answers', () => {
  it('fails the put after its socket timeout instead of hanging forever', async () => {
    const sockets: Socket[] = [];
    const server = createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
      s.resume(); // read the request, never answer
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const storage = new S3Storage({
      bucket: 'images', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, socketTimeoutMs: 300,
    });
    try {
      const bytes = new TextEncoder().encode('never stored');
      const t0 = performance.now();
      const outcome = await Promise.race([
        storage.put(keyOf(bytes), bytes, 'image/jpeg').then(() => 'stored', () => 'failed'),
        // A bound for the failing case only (a put that hangs); a passing put fails after socketTimeoutMs.
        new Promise((r) => setTimeout(() => r('still waiting'), 8000).unref()),
      ]);
      expect(outcome).toBe('failed');
      expect(performance.now() - t0).toBeLessThan(8000);
    } finally {
      storage.destroy();
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  }, 15_000);
});
