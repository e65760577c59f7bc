// The SQLite connections the store runs on: libsql's synchronous driver, each statement
// prepared once per connection and kept. @libsql/client (which the store used before) prepares
// every statement again on every call, asks for its columns twice, detects a statement that
// returns no rows by catching an exception and copies each row through property descriptors:
// about 1.5 ms of main-thread CPU per image in the e2e bench's profile. The interface is the
// part of @libsql/client's the store uses, so a @libsql/client Client still fits it (tests wrap
// one to record the statements sent).
import Database from 'libsql';

export type SqlValue = string | number | bigint | null | Uint8Array | ArrayBuffer | boolean;
export type SqlArgs = SqlValue[];
export type SqlRow = Record<string, unknown>;
export interface SqlResult {
  rows: SqlRow[];
  rowsAffected: number;
}
export type SqlStatement = string | { sql: string; args?: SqlArgs };

/** One write transaction: its connection is its own until commit, rollback or close. */
export interface SqlTransaction {
  execute(stmt: SqlStatement): Promise<SqlResult>;
  batch(stmts: Array<{ sql: string; args?: SqlArgs }>): Promise<SqlResult[]>;
  executeMultiple(sql: string): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  close(): void;
}

export interface SqlClient {
  execute(stmt: SqlStatement): Promise<SqlResult>;
  transaction(mode: 'write'): Promise<SqlTransaction>;
  executeMultiple(sql: string): Promise<void>;
  close(): void;
}

/** Statements kept per connection; the store sends a few dozen distinct ones (multi-row inserts vary by chunk size). */
const STATEMENTS_KEPT = 256;

type Prepared = ReturnType<Database.Database['prepare']>;

/** A connection and the statements prepared on it (least recently used dropped first). */
class Connection {
  readonly db: Database.Database;
  readonly #statements = new Map<string, { stmt: Prepared; reader: boolean }>();

  constructor(path: string, timeoutMs: number) {
    this.db = new Database(path, { timeout: timeoutMs });
  }

  run(stmt: SqlStatement): SqlResult {
    const sql = typeof stmt === 'string' ? stmt : stmt.sql;
    const args = typeof stmt === 'string' ? [] : toSqlArgs(stmt.args ?? []);
    let entry = this.#statements.get(sql);
    if (entry) {
      this.#statements.delete(sql); // re-insert: most recently used last
    } else {
      const prepared = this.db.prepare(sql);
      entry = { stmt: prepared, reader: prepared.reader };
      if (this.#statements.size >= STATEMENTS_KEPT) this.#statements.delete(this.#statements.keys().next().value!);
    }
    this.#statements.set(sql, entry);
    // A statement with RETURNING is a reader: run() would not apply it. Both step the statement
    // to its end, so it holds no read snapshot after the call.
    if (entry.reader) return { rows: entry.stmt.all(args) as SqlRow[], rowsAffected: 0 };
    return { rows: [], rowsAffected: entry.stmt.run(args).changes };
  }
}

/** Values as @libsql/client bound them: booleans as 0/1, undefined refused. */
function toSqlArgs(args: SqlArgs): unknown[] {
  for (const v of args) {
    if (typeof v === 'boolean' || v === undefined || v instanceof ArrayBuffer) return args.map(toSqlValue);
  }
  return args;
}

function toSqlValue(v: SqlValue): unknown {
  if (v === undefined) throw new TypeError('undefined cannot be passed as argument to the database');
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  return v;
}

/**
 * Connections to one database file. A transaction holds a connection of its own (other reads
 * meanwhile see only committed data, as with @libsql/client's pool); every other call borrows
 * an idle one for its synchronous run.
 */
export class SqliteConnections implements SqlClient {
  readonly #path: string;
  readonly #timeoutMs: number;
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();
  #closed = false;

  constructor(path: string, opts: { timeoutMs: number }) {
    this.#path = path;
    this.#timeoutMs = opts.timeoutMs;
    this.#release(this.#acquire()); // fail now if the file cannot be opened
  }

  async execute(stmt: SqlStatement): Promise<SqlResult> {
    const conn = this.#acquire();
    try {
      return conn.run(stmt);
    } finally {
      this.#release(conn);
    }
  }

  async executeMultiple(sql: string): Promise<void> {
    const conn = this.#acquire();
    try {
      conn.db.exec(sql);
    } finally {
      this.#release(conn);
    }
  }

  async transaction(mode: 'write'): Promise<SqlTransaction> {
    if (mode !== 'write') throw new Error(`unsupported transaction mode ${String(mode)}`);
    const conn = this.#acquire();
    try {
      conn.run('BEGIN IMMEDIATE');
    } catch (err) {
      this.#release(conn);
      throw err;
    }
    return new ConnectionTransaction(conn, () => this.#release(conn));
  }

  close(): void {
    this.#closed = true;
    for (const conn of this.#all) conn.db.close();
    this.#all.clear();
    this.#idle.length = 0;
  }

  #acquire(): Connection {
    if (this.#closed) throw new Error('the SQLite store is closed');
    const conn = this.#idle.pop() ?? new Connection(this.#path, this.#timeoutMs);
    this.#all.add(conn);
    return conn;
  }

  #release(conn: Connection): void {
    if (this.#closed || !conn.db.open) return;
    // never back to the pool mid-transaction: the next borrower would inherit it
    if (conn.db.inTransaction) {
      try {
        conn.run('ROLLBACK');
      } catch {
        this.#all.delete(conn);
        conn.db.close();
        return;
      }
    }
    this.#idle.push(conn);
  }
}

class ConnectionTransaction implements SqlTransaction {
  #conn: Connection | null;
  readonly #settle: () => void;

  constructor(conn: Connection, settle: () => void) {
    this.#conn = conn;
    this.#settle = settle;
  }

  async execute(stmt: SqlStatement): Promise<SqlResult> {
    return this.#open().run(stmt);
  }

  async batch(stmts: Array<{ sql: string; args?: SqlArgs }>): Promise<SqlResult[]> {
    const conn = this.#open();
    return stmts.map((s) => conn.run(s));
  }

  async executeMultiple(sql: string): Promise<void> {
    this.#open().db.exec(sql);
  }

  async commit(): Promise<void> {
    try {
      this.#open().run('COMMIT');
    } finally {
      this.close();
    }
  }

  async rollback(): Promise<void> {
    const conn = this.#conn;
    if (!conn) return;
    try {
      if (conn.db.open && conn.db.inTransaction) conn.run('ROLLBACK');
    } finally {
      this.close();
    }
  }

  /** Gives the connection back (rolled back first if still in the transaction). Idempotent. */
  close(): void {
    if (!this.#conn) return;
    this.#conn = null;
    this.#settle();
  }

  #open(): Connection {
    if (!this.#conn || !this.#conn.db.open || !this.#conn.db.inTransaction) throw new Error('the transaction is closed');
    return this.#conn;
  }
}
