// Outputs on the local disk under IMAGE_STORAGE_PATH, fanned out by the first two hex digits.
import { randomBytes } from 'node:crypto';
import { access, mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './private-files.js';
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
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    // Written whole, then renamed over the name: a key already there (same key, same bytes) is
    // replaced and dated now, which keeps it from the clean-up's grace check. No probe for it and
    // no mkdir first: each is a file-system round trip, and a failed probe an exception, on the
    // event loop for every first import; the directory is made only when the write finds none.
    const write = () => writeFile(tmp, bytes, { flush: true, mode: PRIVATE_FILE_MODE });
    try {
      await write().catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        await mkdir(dirname(tmp), { recursive: true, mode: PRIVATE_DIR_MODE });
        await write();
      });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string): Promise<StoredBlob | null> {
    if (!BLOB_KEY.test(key)) return null;
    // Open first, then read the size from the open file: a blob removed in between (the
    // clean-up's grace ran out) is then either served whole or a 404, never a 200 cut short.
    const handle = await open(this.pathOf(key), 'r').catch(() => null);
    if (!handle) return null;
    const info = await handle.stat().catch(() => null);
    if (!info?.isFile()) {
      await handle.close();
      return null;
    }
    return {
      body: Readable.toWeb(handle.createReadStream()) as ReadableStream<Uint8Array>,
      size: info.size,
      contentType: contentTypeOf(key),
    };
  }

  async remove(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async modifiedAt(key: string): Promise<number | null> {
    const info = await stat(this.pathOf(key)).catch(() => null);
    return info?.isFile() ? info.mtimeMs : null;
  }

  async *list(): AsyncIterable<{ key: string; modifiedAt: number }> {
    const dirs = await readdir(this.root).catch(() => [] as string[]);
    for (const dir of dirs) {
      if (!/^[0-9a-f]{2}$/.test(dir)) continue;
      for (const name of await readdir(join(this.root, dir)).catch(() => [] as string[])) {
        if (!BLOB_KEY.test(name)) continue;
        const info = await stat(join(this.root, dir, name)).catch(() => null);
        if (info?.isFile()) yield { key: name, modifiedAt: info.mtimeMs };
      }
    }
  }

  async check(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: PRIVATE_DIR_MODE });
    await access(this.root);
  }
}
