// Start-up against a MongoDB that is not there fails fast with one clear line. The URI points
// at a closed loopback port, so no MongoDB is needed (and none is faked).
import { describe, expect, it } from 'vitest';
import { openMongoStore, redactUri } from '../src/store/mongo/store.js';

describe('MongoDB start-up', () => {
  it('rejects within the timeout with one line naming the host and the timeout', async () => {
    const error = await openMongoStore('mongodb://127.0.0.1:1', 'icp_startup', { connectTimeoutMs: 1500 }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toMatch(/^cannot reach MongoDB at mongodb:\/\/127\.0\.0\.1:1 within 1500 ms: \S/);
    expect(message).not.toContain('\n');
  }, 20_000);

  it('never puts the URI credentials in the message', async () => {
    const error = await openMongoStore('mongodb://alice:s3cr3t-pw@127.0.0.1:1/db?authSource=admin', 'icp_startup', { connectTimeoutMs: 500 }).then(
      () => null,
      (err: unknown) => err,
    );
    const message = (error as Error).message;
    expect(message).toContain('mongodb://127.0.0.1:1/db');
    expect(message).not.toContain('s3cr3t-pw');
    expect(message).not.toContain('alice');
  }, 20_000);

  it('redacts credentials and options from URIs', () => {
    expect(redactUri('mongodb://u:p@h1:27017,h2:27017/app?replicaSet=rs0')).toBe('mongodb://h1:27017,h2:27017/app');
    expect(redactUri('mongodb+srv://u:p%40x@cluster.example.net/')).toBe('mongodb+srv://cluster.example.net');
    expect(redactUri('mongodb://127.0.0.1:1')).toBe('mongodb://127.0.0.1:1');
  });
});
