// Operating on requests in the SQLite store: cancel, retry, delete, retention, quotas, locks.
import type { OperationsPart } from '../compose.js';
import { ITEM_ACTIONS, may, REQUEST_ACTIONS, RETRY, transitionEvent } from '../lifecycle.js';
import type { RequestRecord } from '../types.js';
import { OPEN, oneOf, run, sql, sqlIn, VISIBLE, type SqliteContext } from './context.js';
import { num, toRequest } from './mappers.js';
import { writeEvent } from './outbox.js';

export class SqliteOperations implements OperationsPart {
  readonly #ctx: SqliteContext;

  constructor(ctx: SqliteContext) {
    this.#ctx = ctx;
  }

  async cancelRequest(id: string, now: number) {
    return this.#ctx.write(async (tx) => {
      const res = await run(tx,
        `UPDATE requests SET status = ${sql(REQUEST_ACTIONS.cancel.to)}, updated_at = ?, version = version + 1
         WHERE id = ? AND status IN ${sqlIn(REQUEST_ACTIONS.cancel.from)} RETURNING *`,
        [now, id]);
      if (res.rows[0]) {
        const request = toRequest(res.rows[0]);
        await writeEvent(tx, transitionEvent(request, REQUEST_ACTIONS.cancel.to, now), request);
        return REQUEST_ACTIONS.cancel.to;
      }
      const known = await run(tx, `SELECT 1 FROM requests WHERE id = ? AND ${VISIBLE}`, [id]);
      return known.rows[0] ? 'final' : null;
    });
  }

  async retryRequest(id: string, now: number) {
    return this.#ctx.write(async (tx) => {
      const found = await run(tx, `SELECT status FROM requests WHERE id = ? AND ${VISIBLE}`, [id]);
      if (!found.rows[0]) return null;
      if (!may(REQUEST_ACTIONS.retry, String(found.rows[0].status) as RequestRecord['status'])) return 'not-final' as const;
      const r = RETRY.itemReset;
      const reset = await run(tx,
        `UPDATE items SET state = ${sql(r.state)}, attempts = ?, claims = ?, error = NULL, lease_owner = NULL, lease_until = NULL
         WHERE request_id = ? AND state ${oneOf(ITEM_ACTIONS.retry.from)}`, [r.attempts, r.claims, id]);
      if (reset.rowsAffected === 0) return 'none-failed' as const;
      await run(tx,
        `UPDATE requests SET status = ${sql(REQUEST_ACTIONS.retry.to)}, failed = failed + ?, run = run + 1, updated_at = ?, version = version + 1
         WHERE id = ?`,
        [RETRY.failedDelta(reset.rowsAffected), now, id]);
      return { retried: reset.rowsAffected };
    });
  }

  async deleteRequest(id: string, _now: number): Promise<string[] | null> {
    return this.#ctx.write(async (tx) => {
      const found = await run(tx, `SELECT 1 FROM requests WHERE id = ? AND status IN ${sqlIn(REQUEST_ACTIONS.delete.from)}`, [id]);
      if (!found.rows[0]) return null;
      const keys = await run(tx,
        'SELECT output_key FROM items WHERE request_id = ? AND output_key IS NOT NULL UNION SELECT output_key FROM rendition_outputs WHERE request_id = ?',
        [id, id]);
      // One transaction: a reader sees the request whole or not at all.
      await tx.batch([
        { sql: 'DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE request_id = ?)', args: [id] },
        { sql: 'DELETE FROM deliveries WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM events WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM rendition_outputs WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM items WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM products WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM idempotency_keys WHERE request_id = ?', args: [id] },
        { sql: 'DELETE FROM requests WHERE id = ?', args: [id] },
      ]);
      return keys.rows.map((r) => String(r.output_key));
    });
  }

  async purgeDeleting(): Promise<string[]> {
    return []; // deletions are one transaction here: nothing is ever left half-done
  }

  async listExpiredRequests(before: number, limit: number): Promise<string[]> {
    const res = await run(this.#ctx.db,
      `SELECT id FROM requests WHERE status IN ${sqlIn(REQUEST_ACTIONS.expire.from)} AND updated_at < ? ORDER BY updated_at LIMIT ?`,
      [before, limit]);
    return res.rows.map((r) => String(r.id));
  }

  async referencedOutputs(keys: string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const res = await run(this.#ctx.db,
      `SELECT output_key FROM items WHERE output_key IN (SELECT value FROM json_each(?1))
       UNION SELECT output_key FROM rendition_outputs WHERE output_key IN (SELECT value FROM json_each(?1))`, [JSON.stringify(keys)]);
    return new Set(res.rows.map((r) => String(r.output_key)));
  }

  async tenantUsage(tenantId: string, since: number) {
    const res = await run(this.#ctx.db,
      `SELECT
         (SELECT COALESCE(SUM(total - done - failed), 0) FROM requests WHERE tenant_id = ? AND status IN ${OPEN}) AS in_flight,
         (SELECT COUNT(*) FROM upload_log WHERE tenant_id = ? AND at >= ?) AS uploads,
         (SELECT MIN(at) FROM upload_log WHERE tenant_id = ? AND at >= ?) AS oldest`,
      [tenantId, tenantId, since, tenantId, since]);
    const r = res.rows[0]!;
    return { inFlight: Number(r.in_flight), uploadsSince: Number(r.uploads), oldestUploadSince: num(r.oldest) };
  }

  async tryLock(name: string, owner: string, ttlMs: number, now: number): Promise<boolean> {
    return this.#ctx.write(async (tx) => {
      const res = await run(tx,
        `INSERT INTO locks (name, owner, until) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
         WHERE locks.until < ? OR locks.owner = excluded.owner`,
        [name, owner, now + ttlMs, now]);
      return res.rowsAffected > 0;
    });
  }
}
