import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Store } from './types.js';

/** MongoDB when MONGODB_URI is set, otherwise the embedded SQLite file in DATA_DIR. */
export async function openStore(config: Config): Promise<Store> {
  if (config.MONGODB_URI) {
    const { openMongoStore } = await import('./mongo/store.js');
    return openMongoStore(config.MONGODB_URI, config.DATABASE_NAME, { connectTimeoutMs: config.MONGODB_CONNECT_TIMEOUT_MS });
  }
  const { openSqliteStore } = await import('./sqlite/store.js');
  return openSqliteStore(join(config.DATA_DIR, 'store.db'));
}
