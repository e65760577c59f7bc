// The SQLite store's pipeline: claims, leases, completions (a request settles in the same
// transaction as its last completion) and the queue's counts.
import type { SqlTransaction } from './connection.js';
import type { PipelinePart } from '../compose.js';
import { claimFairly, counterDelta, ITEM, ITEM_ACTIONS, itemResult, REQUEST_ACTIONS, settledStatus, transitionEvent } from '../lifecycle.js';
import type { ChargeInput, CompleteInput, CompleteResult, ItemRecord } from '../types.js';
import { itemIdOf, OPEN, oneOf, run, sql, sqlIn, type SqliteContext } from './context.js';
import { toCandidate, toItem, toRequest } from './mappers.js';
import { writeCachedOutput, writeValidators } from './cache.js';
import { writeEvent } from './outbox.js';

export class SqlitePipeline implements PipelinePart {
  readonly #ctx: SqliteContext;

  constructor(ctx: SqliteContext) {
    this.#ctx = ctx;
  }

  async claimItems(input: { owner: string; limit: number; leaseMs: number; now: number }): Promise<ItemRecord[]> {
    const { owner, limit, leaseMs, now } = input;
    const lease = `state = ${sql(ITEM_ACTIONS.claim.to)}, lease_owner = ?, lease_until = ?, claims = claims + 1`;
    return this.#ctx.write(async (tx) => {
      // Expired leases first (their runner died), in open requests only.
      const claimed = (await run(tx,
        `UPDATE items SET ${lease} WHERE id IN (
           SELECT i.id FROM items i JOIN requests r ON r.id = i.request_id
           WHERE i.state ${oneOf(ITEM_ACTIONS.reclaim.from)} AND i.lease_until < ? AND r.status IN ${OPEN} LIMIT ?) RETURNING *`,
        [owner, now + leaseMs, now, limit],
      )).rows.map(toItem);
      const candidates = (await run(tx,
        `SELECT id, tenant_id, last_claim_at, created_at FROM requests r WHERE status IN ${OPEN}
           AND EXISTS (SELECT 1 FROM items i WHERE i.request_id = r.id AND i.state ${oneOf(ITEM_ACTIONS.claim.from)})`,
      )).rows.map(toCandidate);
      await claimFairly(candidates, limit - claimed.length, async (requestId, n) => {
        const rows = (await run(tx,
          `UPDATE items SET ${lease} WHERE id IN (
             SELECT id FROM items WHERE request_id = ? AND state ${oneOf(ITEM_ACTIONS.claim.from)} ORDER BY id LIMIT ?) RETURNING *`,
          [owner, now + leaseMs, requestId, n],
        )).rows.map(toItem);
        claimed.push(...rows);
        return rows.length;
      });
      for (const requestId of new Set(claimed.map((i) => i.requestId))) {
        await run(tx, 'UPDATE requests SET version = version + 1, last_claim_at = ? WHERE id = ?', [now, requestId]);
        const started = await run(tx,
          `UPDATE requests SET status = ${sql(REQUEST_ACTIONS.claim.to)}, updated_at = ? WHERE id = ? AND status ${oneOf(REQUEST_ACTIONS.claim.from)} RETURNING *`,
          [now, requestId],
        );
        if (started.rows[0]) {
          const request = toRequest(started.rows[0]);
          await writeEvent(tx, transitionEvent(request, REQUEST_ACTIONS.claim.to, now), request);
        }
      }
      return claimed;
    });
  }

  async chargeAttempt(input: ChargeInput): Promise<number | null> {
    if (itemIdOf(input.itemId) === null) return null;
    return this.#ctx.write((tx) => chargeOne(tx, input));
  }

  async renewLeases(input: { owner: string; itemIds: string[]; leaseMs: number; now: number }): Promise<string[]> {
    // Ids that cannot be ours are not held (as in the MongoDB store), rather than an error.
    const ids = input.itemIds.map(itemIdOf).filter((id) => id !== null);
    if (ids.length === 0) return [];
    return this.#ctx.write(async (tx) => {
      const res = await run(tx,
        `UPDATE items SET lease_until = ? WHERE lease_owner = ? AND state = ${sql(ITEM.running)}
           AND id IN (SELECT value FROM json_each(?)) RETURNING id`,
        [input.now + input.leaseMs, input.owner, JSON.stringify(ids)],
      );
      return res.rows.map((r) => String(r.id));
    });
  }

  async completeItems(inputs: CompleteInput[]): Promise<CompleteResult[]> {
    return (await this.recordProgress({ charges: [], completions: inputs })).results;
  }

  async recordProgress(input: { charges: ChargeInput[]; completions: CompleteInput[] }) {
    if (input.charges.length === 0 && input.completions.length === 0) return { attempts: [], results: [] };
    // One transaction (one fsync) for a batch of charges and completions.
    return this.#ctx.write(async (tx) => {
      const attempts: (number | null)[] = [];
      for (const charge of input.charges) attempts.push(await chargeOne(tx, charge));
      const results: CompleteResult[] = [];
      for (const completion of input.completions) results.push(await completeOne(tx, completion));
      return { attempts, results };
    });
  }

  async releaseItems(owner: string): Promise<number> {
    return this.#ctx.write(async (tx) => {
      const res = await run(tx,
        `UPDATE items SET state = ${sql(ITEM_ACTIONS.release.to)}, lease_owner = NULL, lease_until = NULL
         WHERE lease_owner = ? AND state ${oneOf(ITEM_ACTIONS.release.from)} RETURNING request_id`,
        [owner],
      );
      for (const requestId of new Set(res.rows.map((r) => String(r.request_id)))) {
        await run(tx, 'UPDATE requests SET version = version + 1 WHERE id = ?', [requestId]);
      }
      return res.rows.length;
    });
  }

  async pendingStats(now: number) {
    const res = await run(this.#ctx.db,
      `SELECT
         (SELECT COUNT(*) FROM items WHERE state = ${sql(ITEM.pending)}) AS pending,
         (SELECT COUNT(*) FROM items WHERE state = ${sql(ITEM.running)} AND lease_until >= ?) AS running,
         (SELECT MIN(created_at) FROM items WHERE state = ${sql(ITEM.pending)}) AS oldest`,
      [now],
    );
    const r = res.rows[0]!;
    return { pending: Number(r.pending), running: Number(r.running), oldestPendingAt: r.oldest === null ? null : Number(r.oldest) };
  }
}

/** Counts one codec attempt inside the caller's transaction (see Store.chargeAttempt). */
async function chargeOne(tx: SqlTransaction, input: ChargeInput): Promise<number | null> {
  const id = itemIdOf(input.itemId);
  if (id === null) return null;
  const res = await run(tx,
    `UPDATE items SET attempts = attempts + 1 WHERE id = ? AND lease_owner = ? AND state = ${sql(ITEM.running)} RETURNING attempts`,
    [id, input.owner]);
  return res.rows[0] ? Number(res.rows[0].attempts) : null;
}

/** Records one item's outcome inside the caller's transaction (see Store.completeItems). */
async function completeOne(tx: SqlTransaction, input: CompleteInput): Promise<CompleteResult> {
  const { outcome, now } = input;
  const itemId = itemIdOf(input.itemId);
  if (itemId === null) return { applied: false };
  const result = itemResult(outcome);
  const delta = counterDelta(outcome);
  const item = await run(tx,
    `UPDATE items SET state = ?, output_key = ?, rendition_keys = ?, error = ?, outcome = ?, bytes_in = ?, bytes_out = ?, note = ?, quality = ?, score = ?,
       lease_owner = NULL, lease_until = NULL
     WHERE id = ? AND lease_owner = ? AND state ${oneOf(ITEM_ACTIONS.settle.from)} RETURNING request_id`,
    [
      result.state, result.outputKey, result.renditionKeys ? JSON.stringify(result.renditionKeys) : null, result.error, result.outcome,
      result.bytesIn, result.bytesOut, result.note, result.quality, result.score, itemId, input.owner,
    ],
  );
  const requestId = item.rows[0]?.request_id;
  if (requestId === undefined) return { applied: false };
  for (const key of new Set(Object.values(result.renditionKeys ?? {}))) {
    await run(tx, 'INSERT OR IGNORE INTO rendition_outputs (item_id, request_id, output_key) VALUES (?, ?, ?)', [itemId, String(requestId), key]);
  }
  const { remember } = input;
  if (remember?.cached) await writeCachedOutput(tx, remember.tenantId, remember.cached.sourceSha256, remember.settings, remember.cached.output, now);
  if (remember?.validators) await writeValidators(tx, remember.tenantId, remember.validators.url, remember.settings, remember.validators.validators, now);
  // Only the counters: the whole row (options JSON and all) is read once, when the request finishes.
  const counters = (await run(tx,
    `UPDATE requests SET done = done + ?, failed = failed + ?, bytes_in = bytes_in + ?, bytes_out = bytes_out + ?,
       updated_at = ?, version = version + 1 WHERE id = ? RETURNING total, done, failed`,
    [delta.done, delta.failed, delta.bytesIn, delta.bytesOut, now, String(requestId)],
  )).rows[0]!;
  const finalStatus = settledStatus({ total: Number(counters.total), done: Number(counters.done), failed: Number(counters.failed) });
  if (!finalStatus) return { applied: true };
  const finished = await run(tx,
    `UPDATE requests SET status = ? WHERE id = ? AND status IN ${sqlIn(REQUEST_ACTIONS.settle.from)} RETURNING *`, [finalStatus, String(requestId)]);
  if (!finished.rows[0]) return { applied: true };
  const request = toRequest(finished.rows[0]);
  await writeEvent(tx, transitionEvent(request, finalStatus, now), request);
  return { applied: true, finalStatus };
}
