// What every part of the MongoDB store shares besides the collections: batch sizes, the
// statuses a claim works on, and the helpers for writes that may meet a duplicate key.
import { MongoBulkWriteError, MongoServerError, ObjectId } from 'mongodb';
import { OPEN_STATUSES, VISIBLE_STATUSES } from '../lifecycle.js';
import type { Collections, ItemDoc } from './schema.js';

/** Documents per insertMany / $in list. */
export const CHUNK = 1000;
/** How often (at most) one instance looks for outboxes and completions a crash left behind. */
export const RECOVER_EVERY_MS = 1_000;
export const OPEN = [...OPEN_STATUSES];
/**
 * A filter value matching any of `states`: the state itself when there is one, so the filter
 * stays a plain equality (as the indexes and their test expect), else `$in`.
 */
export function oneOf<S extends string>(states: readonly S[]): S | { $in: S[] } {
  return states.length === 1 ? states[0]! : { $in: [...states] };
}

/** The filter that hides requests readers may not see. */
export const VISIBLE = { $in: [...VISIBLE_STATUSES] };

export async function insertIgnoringDuplicates(coll: Collections['items'], docs: ItemDoc[]): Promise<void> {
  if (docs.length > 0) await ignoreDuplicates(coll.insertMany(docs, { ordered: false }));
}

/**
 * Settles a write whose only failures are duplicate keys: the document is there already. Two
 * relays upserting one id at once can meet this (MongoDB retries such upserts itself, FerretDB
 * does not).
 */
export async function ignoreDuplicates(write: Promise<unknown>): Promise<void> {
  try {
    await write;
  } catch (err) {
    if (isDuplicateKey(err)) return;
    if (err instanceof MongoBulkWriteError) {
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      if (errors.length > 0 && errors.every((e) => e.code === 11000)) return;
    }
    throw err;
  }
}

/**
 * Takes (or keeps) the named lock for ttlMs if it is free, expired or already `owner`'s. A
 * duplicate key on the upsert means another owner holds it.
 */
export async function takeLock(locks: Collections['locks'], name: string, owner: string, ttlMs: number, now: number): Promise<boolean> {
  try {
    const doc = await locks.findOneAndUpdate(
      { _id: name, $or: [{ until: { $lt: now } }, { owner }] }, { $set: { owner, until: now + ttlMs } }, { upsert: true, returnDocument: 'after' },
    );
    return doc?.owner === owner;
  } catch (err) {
    if (isDuplicateKey(err)) return false;
    throw err;
  }
}

export function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === 11000;
}

export function toObjectId(id: string): ObjectId | null {
  return /^[0-9a-f]{24}$/i.test(id) ? new ObjectId(id) : null;
}
