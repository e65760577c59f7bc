// What the service keeps on disk is private to its user: store.db holds webhook secrets and full
// source URLs, and outputs are capabilities. Folders are made 0700 and files 0600 whatever the
// umask; at start, the service's own files that an older release (or a copy) left looser are
// tightened. Only the service's own names are touched, never the rest of DATA_DIR: an operator
// may point it at a folder that holds other things.
import { chmod, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** The SQLite store's files in DATA_DIR (the journal files come and go with it). */
const STORE_FILES = ['store.db', 'store.db-wal', 'store.db-shm', 'store.db-journal'];
const SHARD = /^[0-9a-f]{2}$/;

/**
 * Tightens DATA_DIR, the store's files in it, and the whole image folder (local storage;
 * null otherwise). Returns the paths it changed.
 */
export async function tightenPrivateFiles(dataDir: string, imageDir: string | null): Promise<string[]> {
  const changed: string[] = [];
  const tighten = async (path: string, dir: boolean) => {
    const info = await stat(path).catch(() => null);
    if (!info || info.isDirectory() !== dir || (info.mode & 0o077) === 0) return;
    await chmod(path, dir ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE);
    changed.push(path);
  };
  await tighten(dataDir, true);
  for (const name of STORE_FILES) await tighten(join(dataDir, name), false);
  if (imageDir !== null) {
    await tighten(imageDir, true);
    for (const shard of await readdir(imageDir).catch(() => [] as string[])) {
      if (!SHARD.test(shard)) continue;
      await tighten(join(imageDir, shard), true);
      for (const name of await readdir(join(imageDir, shard)).catch(() => [] as string[])) await tighten(join(imageDir, shard, name), false);
    }
  }
  return changed;
}
