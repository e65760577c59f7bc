// What every part of the SQLite store shares: the client, the write transaction (serialised
// by the process's mutex for the file, see openSqliteStore) and small statement helpers.
import type { SqlArgs, SqlClient, SqlTransaction } from './connection.js';
import { INVISIBLE_STATUSES, OPEN_STATUSES } from '../lifecycle.js';
import type { Mutex } from '../mutex.js';

/** Rows per multi-row INSERT: well under SQLite's 32766 bound variables. */
export const INSERT_CHUNK = 500;

/** A state from lifecycle.ts as an SQL literal (the names are constants, never input). */
export const sql = (state: string) => `'${state}'`;
/** A list of states from lifecycle.ts as an SQL `IN` list. */
export const sqlIn = (states: readonly string[]) => `(${states.map(sql).join(', ')})`;
/**
 * The right-hand side of a test that a column is one of `states`: `= 'x'` for one state, so
 * a partial index written with `state = 'x'` still applies, else `IN (...)`.
 */
export const oneOf = (states: readonly string[]) => (states.length === 1 ? `= ${sql(states[0]!)}` : `IN ${sqlIn(states)}`);
export const OPEN = sqlIn(OPEN_STATUSES);
/** The filter that hides requests readers may not see. */
export const VISIBLE = `status NOT IN ${sqlIn(INVISIBLE_STATUSES)}`;

export class SqliteContext {
  readonly db: SqlClient;
  readonly #writes: Mutex;

  constructor(db: SqlClient, writes: Mutex) {
    this.db = db;
    this.#writes = writes;
  }

  /** Runs fn in one IMMEDIATE transaction, serialised with this process's other writes. */
  write<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    return this.#writes.run(async () => {
      const tx = await this.db.transaction('write');
      try {
        const result = await fn(tx);
        await tx.commit();
        return result;
      } catch (err) {
        await tx.rollback().catch(() => {});
        throw err;
      } finally {
        tx.close();
      }
    });
  }

  /** Closes the client once this process's writes queued before have finished. */
  async close(): Promise<void> {
    await this.#writes.run(async () => this.db.close());
  }
}

/** An item id as stored (an integer), or null for a string that cannot be one. */
export function itemIdOf(id: string): number | null {
  return /^\d{1,15}$/.test(id) ? Number(id) : null;
}

/** Executes one statement on the client or inside a transaction. */
export const run = (on: SqlClient | SqlTransaction, sql: string, args: SqlArgs = []) => on.execute({ sql, args });
