// The store contract on MongoDB: loaded by store.test.ts only when MONGODB_URI is set.
// Every test gets its own randomly named database, dropped afterwards.
import { openMongoStore } from '../src/store/mongo/store.js';
import type { Store } from '../src/store/types.js';
import { concurrentWritersUnsupported, dropDatabase, freshDatabaseName } from './helpers/mongo.js';
import { defineStoreContract } from './store-contract.js';

const CONNECT_TIMEOUT_MS = 10_000;

export async function defineMongoContract(uri: string): Promise<void> {
  const noConcurrentWriters = await concurrentWritersUnsupported(uri);
  defineStoreContract('mongodb', async () => {
    const dbName = freshDatabaseName();
    const open = () => openMongoStore(uri, dbName, { connectTimeoutMs: CONNECT_TIMEOUT_MS });
    let current: Store = await open();
    const others: Store[] = [];
    return {
      get store() { return current; },
      async reopen() {
        await current.close();
        current = await open();
        return current;
      },
      async openAnother() {
        // A second client with its own connection pool: another process, as far as the
        // database can tell.
        const other = await open();
        others.push(other);
        return other;
      },
      async cleanup() {
        await current.close();
        // close() twice is harmless; the tests close what they open, this catches failures.
        await Promise.all(others.map((o) => o.close().catch(() => {})));
        await dropDatabase(uri, dbName);
      },
    };
  }, { noConcurrentWriters });
}
