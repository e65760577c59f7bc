// API keys in the MongoDB store (only their hashes are kept).
import type { KeysPart } from '../compose.js';
import type { Collections } from './schema.js';
import type { ApiKeyRecord } from '../types.js';
import { toKey } from './mappers.js';

export class MongoKeys implements KeysPart {
  readonly #c: Collections;

  constructor(c: Collections) {
    this.#c = c;
  }

  async createKey(key: ApiKeyRecord): Promise<void> {
    const { id, ...rest } = key;
    await this.#c.keys.insertOne({ _id: id, ...rest });
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    return (await this.#c.keys.find({ revokedAt: null }).sort({ createdAt: 1, _id: 1 }).toArray()).map(toKey);
  }

  async revokeKey(id: string, now: number): Promise<boolean> {
    return (await this.#c.keys.updateOne({ _id: id, revokedAt: null }, { $set: { revokedAt: now } })).modifiedCount > 0;
  }

  async findKey(hash: string): Promise<ApiKeyRecord | null> {
    const doc = await this.#c.keys.findOne({ hash, revokedAt: null });
    return doc ? toKey(doc) : null;
  }
}
