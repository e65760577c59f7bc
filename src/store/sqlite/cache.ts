// Skipping needless work in the SQLite store: the content cache and the URL validators.
import { randomBytes } from 'node:crypto';
import type { CachePart } from '../compose.js';
import type { ReusableOutput, UrlValidators } from '../types.js';
import type { SqlTransaction } from './connection.js';
import { run, type SqliteContext } from './context.js';
import { num, renditionKeysColumn, renditionKeysOf, str } from './mappers.js';

export class SqliteCache implements CachePart {
  readonly #ctx: SqliteContext;

  constructor(ctx: SqliteContext) {
    this.#ctx = ctx;
  }

  async outputNameSecret(): Promise<string> {
    const read = async () => (await run(this.#ctx.db, "SELECT value FROM deployment_secrets WHERE name = 'output_names'")).rows[0];
    const found = await read();
    if (found) return String(found.value);
    // The first writer's value wins; every process reads the one stored.
    await this.#ctx.write((tx) => run(tx, "INSERT OR IGNORE INTO deployment_secrets (name, value) VALUES ('output_names', ?)", [randomBytes(32).toString('hex')]));
    return String((await read())!.value);
  }

  async getCachedOutput(tenantId: string, sourceSha256: string, settings: string): Promise<ReusableOutput | null> {
    const res = await run(this.#ctx.db,
      'SELECT output_key, format, bytes_out, rendition_keys, quality, score, note FROM content_cache WHERE tenant_id = ? AND source_sha256 = ? AND settings = ?',
      [tenantId, sourceSha256, settings]);
    const r = res.rows[0];
    return r ? {
      outputKey: String(r.output_key), format: String(r.format), bytesOut: Number(r.bytes_out), ...withRenditions(r.rendition_keys), quality: num(r.quality), score: num(r.score), ...withNote(r.note),
    } : null;
  }

  async putCachedOutput(tenantId: string, sourceSha256: string, settings: string, o: ReusableOutput, now: number): Promise<void> {
    await this.#ctx.write((tx) => writeCachedOutput(tx, tenantId, sourceSha256, settings, o, now));
  }

  async getValidators(tenantId: string, url: string, settings: string): Promise<UrlValidators | null> {
    const res = await run(this.#ctx.db, 'SELECT * FROM url_validators WHERE tenant_id = ? AND url = ? AND settings = ?', [tenantId, url, settings]);
    const r = res.rows[0];
    return r ? {
      etag: str(r.etag), lastModified: str(r.last_modified), outputKey: String(r.output_key), format: String(r.format),
      bytesIn: Number(r.bytes_in), bytesOut: Number(r.bytes_out), ...withRenditions(r.rendition_keys), quality: num(r.quality), score: num(r.score), ...withNote(r.note),
    } : null;
  }

  async putValidators(tenantId: string, url: string, settings: string, v: UrlValidators, now: number): Promise<void> {
    await this.#ctx.write((tx) => writeValidators(tx, tenantId, url, settings, v, now));
  }
}

/** An entry's renditions, present only when it has some (entries without them read as before). */
function withRenditions(column: unknown): { renditionKeys?: Record<string, string> } {
  const keys = renditionKeysOf(column);
  return keys ? { renditionKeys: keys } : {};
}

/** The content cache row, inside the caller's transaction (also written with a completion). */
export async function writeCachedOutput(tx: SqlTransaction, tenantId: string, sourceSha256: string, settings: string, o: ReusableOutput, now: number): Promise<void> {
  await run(tx,
    `INSERT OR REPLACE INTO content_cache (tenant_id, source_sha256, settings, output_key, format, bytes_out, rendition_keys, quality, score, note, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [tenantId, sourceSha256, settings, o.outputKey, o.format, o.bytesOut, renditionKeysColumn(o.renditionKeys), o.quality ?? null, o.score ?? null, o.note ?? null, now]);
}

/** The URL validators row, inside the caller's transaction (also written with a completion). */
export async function writeValidators(tx: SqlTransaction, tenantId: string, url: string, settings: string, v: UrlValidators, now: number): Promise<void> {
  await run(tx,
    `INSERT OR REPLACE INTO url_validators (tenant_id, url, settings, etag, last_modified, output_key, format, bytes_in, bytes_out, rendition_keys, quality, score, note, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [tenantId, url, settings, v.etag, v.lastModified, v.outputKey, v.format, v.bytesIn, v.bytesOut, renditionKeysColumn(v.renditionKeys), v.quality ?? null, v.score ?? null, v.note ?? null, now]);
}

/** An entry's note, present only when it has one (as the item it was made for had). */
function withNote(column: unknown): { note?: string } {
  return typeof column === 'string' ? { note: column } : {};
}
