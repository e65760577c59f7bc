// Reaching a MongoDB deployment: connect within a deadline, and say why not in one line that
// names the host but never the credentials.
import { MongoClient, type Db } from 'mongodb';

export interface MongoStoreOptions {
  /** How long start-up may take to reach the deployment before it fails. */
  connectTimeoutMs: number;
}

/**
 * Connects and checks the deployment answers. Rejects within about
 * connectTimeoutMs with one line naming the host (never the credentials) and the reason.
 */
export async function connectMongo(uri: string, dbName: string, opts: MongoStoreOptions): Promise<{ client: MongoClient; db: Db }> {
  const timeoutMs = opts.connectTimeoutMs;
  const where = redactUri(uri);
  let client: MongoClient;
  try {
    client = new MongoClient(uri, {
      appName: 'image-csv-processor',
      serverSelectionTimeoutMS: timeoutMs,
      connectTimeoutMS: timeoutMs,
      retryWrites: true,
      retryReads: true,
    });
  } catch (err) {
    throw new Error(`invalid MongoDB URI ${where}: ${oneLine(err, uri)}`);
  }
  let timer: NodeJS.Timeout | undefined;
  let db: Db;
  try {
    // The driver honours serverSelectionTimeoutMS; the timer is the backstop for anything
    // that could wait longer (an SRV lookup, a server that accepts and never answers).
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer after ${timeoutMs} ms`)), timeoutMs + 1_000);
    });
    const connected = (async () => {
      await client.connect();
      const db = client.db(dbName);
      await db.admin().command({ hello: 1 });
      return { db };
    })();
    connected.catch(() => {}); // settled by the race below; avoid an unhandled rejection
    ({ db } = await Promise.race([connected, deadline]));
  } catch (err) {
    await client.close(true).catch(() => {});
    throw new Error(`cannot reach MongoDB at ${where} within ${timeoutMs} ms: ${oneLine(err, uri)}`);
  } finally {
    clearTimeout(timer);
  }
  return { client, db };
}

/** The URI without credentials or options, for messages: mongodb://host:port/db. */
export function redactUri(uri: string): string {
  const m = /^([a-z+]+:\/\/)([^/?#]*)([^?#]*)/i.exec(uri.trim());
  if (!m) return '(unparseable URI)';
  const hosts = m[2]!.slice(m[2]!.lastIndexOf('@') + 1);
  return `${m[1]}${hosts}${m[3] === '/' ? '' : m[3]}`;
}

/** First line of an error's message, with anything that looks like the URI's credentials removed. */
export function oneLine(err: unknown, uri: string): string {
  let text = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim() || 'unknown error';
  const userinfo = /^[a-z+]+:\/\/([^/?#]*)@/i.exec(uri.trim())?.[1];
  if (userinfo) {
    for (const part of [userinfo, ...userinfo.split(':')]) {
      if (part.length > 0) text = text.split(part).join('***');
      try {
        const decoded = decodeURIComponent(part);
        if (decoded.length > 0) text = text.split(decoded).join('***');
      } catch { /* not percent-encoded */ }
    }
  }
  return text.replace(/(mongodb(?:\+srv)?:\/\/)[^@\s/]*@/gi, '$1***@');
}

