import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite/store.js';
import type { Store } from '../src/store/types.js';
import { defineStoreContract } from './store-contract.js';

defineStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'icp-store-'));
  const file = join(dir, 'store.db');
  let current: Store = await openSqliteStore(file);
  return {
    get store() { return current; },
    async reopen() {
      await current.close();
      current = await openSqliteStore(file);
      return current;
    },
    openAnother: () => openSqliteStore(file),
    async cleanup() {
      await current.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

const mongoUri = process.env.MONGODB_URI;
if (mongoUri) {
  const { defineMongoContract } = await import('./store-mongo.js');
  await defineMongoContract(mongoUri);
} else {
  console.log('store contract: mongodb skipped: MONGODB_URI is not set (npm run test:mongo starts FerretDB and sets it)');
  // Named so the run lists it as skipped, with the reason logged above.
  describe.skipIf(true)('store contract: mongodb (MONGODB_URI is not set)', () => {
    it('runs the contract on MongoDB', () => {});
  });
}
