// Requests in the SQLite store: ingest (begin → appendBatch* → commit | abort) and reads.
import type { SqlArgs, SqlTransaction } from './connection.js';
import type { RequestsPart } from '../compose.js';
import { ITEM, newestFirstCursor, pageOf, REQUEST, REQUEST_ACTIONS, serialCursor } from '../lifecycle.js';
import { InFlightLimitError, UPLOAD_LOG_KEEP_MS, type BeginInput, type BeginResult, type CommitExtra, type ItemRecord, type Page, type ProductRecord, type RequestRecord } from '../types.js';
import { INSERT_CHUNK, oneOf, OPEN, run, sql, VISIBLE, type SqliteContext } from './context.js';
import { json, str, toItem, toRequest } from './mappers.js';

export class SqliteRequests implements RequestsPart {
  readonly #ctx: SqliteContext;

  constructor(ctx: SqliteContext) {
    this.#ctx = ctx;
  }

  // ---- ingest ---------------------------------------------------------------------------

  async beginRequest(input: BeginInput): Promise<BeginResult> {
    return this.#ctx.write(async (tx) => {
      if (input.idempotencyKey !== null) {
        const existing = await run(tx,
          `SELECT r.*, k.fingerprint AS key_fingerprint FROM idempotency_keys k JOIN requests r ON r.id = k.request_id
           WHERE k.tenant_id = ? AND k.key = ?`,
          [input.tenantId, input.idempotencyKey]);
        const row = existing.rows[0];
        if (row) return { created: false as const, existing: toRequest(row), fingerprint: str(row.key_fingerprint) };
        // A key whose request is gone (aborted) is free again.
        await run(tx, 'DELETE FROM idempotency_keys WHERE tenant_id = ? AND key = ?', [input.tenantId, input.idempotencyKey]);
        await run(tx, 'INSERT INTO idempotency_keys (tenant_id, key, request_id, fingerprint) VALUES (?, ?, ?, NULL)',
          [input.tenantId, input.idempotencyKey, input.id]);
      }
      await run(tx,
        `INSERT INTO requests (id, status, tenant_id, webhook_url, webhook_secret, file_name, created_at, updated_at)
         VALUES (?, ${sql(REQUEST.ingesting)}, ?, ?, ?, ?, ?, ?)`,
        [input.id, input.tenantId, input.webhookUrl, input.webhookSecret, input.fileName ?? null, input.now, input.now],
      );
      return { created: true as const };
    });
  }

  async appendBatch(requestId: string, products: ProductRecord[]): Promise<void> {
    if (products.length === 0) return;
    const now = Date.now();
    await this.#ctx.write(async (tx) => {
      const stmts: Array<{ sql: string; args: SqlArgs }> = [];
      for (let i = 0; i < products.length; i += INSERT_CHUNK) {
        const chunk = products.slice(i, i + INSERT_CHUNK);
        stmts.push({
          sql: `INSERT INTO products (request_id, serial, name, input_urls) VALUES ${chunk.map(() => '(?,?,?,?)').join(',')}`,
          args: chunk.flatMap((p) => [requestId, p.serial, p.name, JSON.stringify(p.inputUrls)]),
        });
      }
      const urls = [...new Set(products.flatMap((p) => p.inputUrls))];
      for (let i = 0; i < urls.length; i += INSERT_CHUNK) {
        const chunk = urls.slice(i, i + INSERT_CHUNK);
        stmts.push({
          // Pending, but claimed only once the request is committed (claims go by request).
          sql: `INSERT OR IGNORE INTO items (request_id, url, state, created_at) VALUES ${chunk.map(() => `(?,?,${sql(ITEM.pending)},?)`).join(',')}`,
          args: chunk.flatMap((u) => [requestId, u, now]),
        });
      }
      await tx.batch(stmts);
    });
  }

  async commitRequest(requestId: string, now: number, extra: CommitExtra = {}): Promise<RequestRecord> {
    return this.#ctx.write(async (tx) => {
      if (extra.webhook) {
        await run(tx, 'UPDATE requests SET webhook_url = ?, webhook_secret = ? WHERE id = ?', [extra.webhook.url, extra.webhook.secret, requestId]);
      }
      if (extra.options) await run(tx, 'UPDATE requests SET options = ? WHERE id = ?', [json(extra.options), requestId]);
      if (extra.fingerprint) {
        await run(tx, 'UPDATE idempotency_keys SET fingerprint = ? WHERE request_id = ?', [extra.fingerprint, requestId]);
      }
      if (extra.maxImagesInFlight !== undefined) await assertRoomInFlight(tx, requestId, extra.maxImagesInFlight);
      const res = await run(tx,
        `UPDATE requests SET status = ${sql(REQUEST_ACTIONS.commit.to)}, updated_at = ?,
           product_count = (SELECT COUNT(*) FROM products WHERE request_id = ?),
           total = (SELECT COUNT(*) FROM items WHERE request_id = ?)
         WHERE id = ? AND status ${oneOf(REQUEST_ACTIONS.commit.from)} RETURNING *`,
        [now, requestId, requestId, requestId],
      );
      if (!res.rows[0]) throw new Error(`request ${requestId} is not being ingested`);
      const request = toRequest(res.rows[0]);
      await run(tx, 'INSERT INTO upload_log (tenant_id, at, request_id) VALUES (?, ?, ?)', [request.tenantId, now, requestId]);
      await run(tx, 'DELETE FROM upload_log WHERE tenant_id = ? AND at < ?', [request.tenantId, now - UPLOAD_LOG_KEEP_MS]);
      return request;
    });
  }

  async abortRequest(requestId: string): Promise<void> {
    await this.#ctx.write((tx) => deleteIngesting(tx, [requestId]));
  }

  async cleanupIngesting(before: number): Promise<number> {
    return this.#ctx.write(async (tx) => {
      const res = await run(tx, `SELECT id FROM requests WHERE status ${oneOf(REQUEST_ACTIONS.abort.from)} AND created_at < ?`, [before]);
      await deleteIngesting(tx, res.rows.map((r) => String(r.id)));
      return res.rows.length;
    });
  }

  // ---- reads ----------------------------------------------------------------------------

  async getRequest(id: string): Promise<RequestRecord | null> {
    const res = await run(this.#ctx.db, `SELECT * FROM requests WHERE id = ? AND ${VISIBLE}`, [id]);
    return res.rows[0] ? toRequest(res.rows[0]) : null;
  }

  async getRequestVersion(id: string): Promise<{ tenantId: string; version: number } | null> {
    const row = (await run(this.#ctx.db, `SELECT tenant_id, version FROM requests WHERE id = ? AND ${VISIBLE}`, [id])).rows[0];
    return row ? { tenantId: String(row.tenant_id), version: Number(row.version) } : null;
  }

  async listRequests(opts: { tenantId: string | null; limit: number; cursor?: string | null }): Promise<Page<RequestRecord>> {
    const before = newestFirstCursor.decode(opts.cursor) ?? { at: Number.MAX_SAFE_INTEGER, id: '' };
    const tenant = opts.tenantId === null ? '' : 'AND tenant_id = ?';
    const res = await run(this.#ctx.db,
      `SELECT * FROM requests WHERE ${VISIBLE} ${tenant}
         AND (created_at < ? OR (created_at = ? AND id < ?))
       ORDER BY created_at DESC, id DESC LIMIT ?`,
      [...(opts.tenantId === null ? [] : [opts.tenantId]), before.at, before.at, before.id || '\u{10FFFF}', opts.limit + 1],
    );
    return pageOf(res.rows.map(toRequest), opts.limit, (r) => newestFirstCursor.encode(r.createdAt, r.id));
  }

  async listProducts(requestId: string, opts: { limit: number; cursor?: string | null }): Promise<Page<ProductRecord>> {
    const res = await run(this.#ctx.db,
      'SELECT serial, name, input_urls FROM products WHERE request_id = ? AND serial > ? ORDER BY serial LIMIT ?',
      [requestId, serialCursor.decode(opts.cursor), opts.limit + 1],
    );
    const rows = res.rows.map((r) => ({ serial: Number(r.serial), name: String(r.name), inputUrls: JSON.parse(String(r.input_urls)) as string[] }));
    return pageOf(rows, opts.limit, (p) => serialCursor.encode(p.serial));
  }

  async getItemsByUrl(requestId: string, urls: string[]): Promise<ItemRecord[]> {
    if (urls.length === 0) return [];
    // One statement for any number of URLs (a JSON array), rather than a list of parameters.
    const res = await run(this.#ctx.db,
      'SELECT * FROM items WHERE request_id = ? AND url IN (SELECT value FROM json_each(?))',
      [requestId, JSON.stringify([...new Set(urls)])],
    );
    return res.rows.map(toItem);
  }
}

/** Inside the commit's write transaction, which serialises commits across processes. */
async function assertRoomInFlight(tx: SqlTransaction, requestId: string, limit: number): Promise<void> {
  const res = await run(tx,
    `SELECT (SELECT COUNT(*) FROM items WHERE request_id = ?) AS images,
       (SELECT COALESCE(SUM(total - done - failed), 0) FROM requests
         WHERE status IN ${OPEN} AND tenant_id = (SELECT tenant_id FROM requests WHERE id = ?)) AS in_flight`,
    [requestId, requestId]);
  const images = Number(res.rows[0]!.images);
  const inFlight = Number(res.rows[0]!.in_flight);
  if (images + inFlight > limit) throw new InFlightLimitError(images, inFlight, limit);
}

async function deleteIngesting(tx: SqlTransaction, ids: string[]): Promise<void> {
  for (const id of ids) {
    // Only an ingesting request (or the orphans of one) is removed: never a committed one's data.
    const notCommitted = `NOT EXISTS (SELECT 1 FROM requests WHERE id = ? AND ${VISIBLE})`;
    const args: SqlArgs = [id, id];
    await tx.batch([
      { sql: `DELETE FROM items WHERE request_id = ? AND ${notCommitted}`, args },
      { sql: `DELETE FROM products WHERE request_id = ? AND ${notCommitted}`, args },
      { sql: `DELETE FROM idempotency_keys WHERE request_id = ? AND ${notCommitted}`, args },
      { sql: `DELETE FROM requests WHERE id = ? AND status ${oneOf(REQUEST_ACTIONS.abort.from)}`, args: [id] },
    ]);
  }
}
