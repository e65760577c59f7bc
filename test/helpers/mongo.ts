// MongoDB for tests: the deployment named by MONGODB_URI (FerretDB started by
// scripts/test-mongo.mjs, or mongo:8 in the GitHub workflow), a fresh database per use.
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';

export const MONGODB_URI = process.env.MONGODB_URI || null;

export function freshDatabaseName(prefix = 'icp_test'): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/**
 * Why several connections writing one document at once cannot be tested on this server, or
 * null when they can. FerretDB 1.24 (SQLite handler) runs an update as query, modify in
 * memory, rewrite the document by _id: measured here, 200 concurrent {$inc: {n: 1}} on one
 * document left n = 8, and two concurrent findOneAndUpdate claims of one document both won.
 */
export async function concurrentWritersUnsupported(uri: string): Promise<string | null> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const info = await client.db('admin').command({ buildInfo: 1 });
    return typeof info.ferretdbVersion === 'string'
      ? `FerretDB ${info.ferretdbVersion} does not apply update operators atomically across connections (they run on mongo:8 in the GitHub workflow)`
      : null;
  } finally {
    await client.close();
  }
}

export async function dropDatabase(uri: string, name: string): Promise<void> {
  const admin = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    await admin.db(name).dropDatabase();
  } finally {
    await admin.close();
  }
}
