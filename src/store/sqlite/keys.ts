// API keys in the SQLite store (only their hashes are kept).
import type { KeysPart } from '../compose.js';
import type { ApiKeyRecord } from '../types.js';
import { run, type SqliteContext } from './context.js';
import { toKey } from './mappers.js';

export class SqliteKeys implements KeysPart {
  readonly #ctx: SqliteContext;

  constructor(ctx: SqliteContext) {
    this.#ctx = ctx;
  }

  async createKey(key: ApiKeyRecord): Promise<void> {
    await this.#ctx.write(async (tx) => {
      await run(tx,
        'INSERT INTO api_keys (id, name, hash, created_at, revoked_at, max_images_in_flight, max_uploads_per_minute) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [key.id, key.name, key.hash, key.createdAt, key.revokedAt, key.maxImagesInFlight, key.maxUploadsPerMinute]);
    });
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    return (await run(this.#ctx.db, 'SELECT * FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id')).rows.map(toKey);
  }

  async revokeKey(id: string, now: number): Promise<boolean> {
    return this.#ctx.write(async (tx) =>
      (await run(tx, 'UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [now, id])).rowsAffected > 0);
  }

  async findKey(hash: string): Promise<ApiKeyRecord | null> {
    const res = await run(this.#ctx.db, 'SELECT * FROM api_keys WHERE hash = ? AND revoked_at IS NULL', [hash]);
    return res.rows[0] ? toKey(res.rows[0]) : null;
  }
}
