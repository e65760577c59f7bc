// Outputs on the local disk under IMAGE_STORAGE_PATH, fanned out by the first two hex digits.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BLOB_KEY, contentTypeOf, type BlobStorage, type StoredBlob } from './types.js';

export class LocalStorage implements BlobStorage {
  readonly kind = 'local' as const;

  constructor(private readonly root: string) {}

  /** Where a key's file lives: <root>/<first two hex digits>/<key>. */
  pathOf(key: string): string {
    if (!BLOB_KEY.test(key)) throw new Error(`invalid blob key ${JSON.stringify(key)}`);
    return join(this.root, key.slice(0, 2), key);
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    if (await access(path).then(() => true, () => false)) return; // same key, same bytes
    await mkdir(join(this.root, key.slice(0, 2)), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, bytes, { flush: true });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string): Promise<StoredBlob | null> {
    if (!BLOB_KEY.test(key)) return null;
    const path = this.pathOf(key);
    const info = await stat(path).catch(() => null);
    if (!info?.isFile()) return null;
    return {
      body: Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>,
      size: info.size,
      contentType: contentTypeOf(key),
    };
  }

  async check(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await access(this.root);
  }
}
