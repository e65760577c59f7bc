// Skipping needless work in the MongoDB store: the content cache and the URL validators.
import { randomBytes } from 'node:crypto';
import type { CachePart } from '../compose.js';
import type { Collections } from './schema.js';
import type { ReusableOutput, UrlValidators } from '../types.js';
import { ignoreDuplicates, isDuplicateKey } from './context.js';

export class MongoCache implements CachePart {
  readonly #c: Collections;

  constructor(c: Collections) {
    this.#c = c;
  }

  async outputNameSecret(): Promise<string> {
    const found = await this.#c.secrets.findOne({ _id: 'output_names' });
    if (found) return found.value;
    // $setOnInsert: the first instance's value wins, a later upsert changes nothing. Two at
    // once may meet a duplicate key (FerretDB does not retry it): the other one's value is there.
    await ignoreDuplicates(this.#c.secrets.updateOne({ _id: 'output_names' }, { $setOnInsert: { value: randomBytes(32).toString('hex') } }, { upsert: true }));
    return (await this.#c.secrets.findOne({ _id: 'output_names' }))!.value;
  }

  async getCachedOutput(tenantId: string, sourceSha256: string, settings: string): Promise<ReusableOutput | null> {
    const doc = await this.#c.contentCache.findOne({ _id: JSON.stringify([tenantId, sourceSha256, settings]) });
    return doc ? { outputKey: doc.outputKey, format: doc.format, bytesOut: doc.bytesOut, ...(doc.renditionKeys ? { renditionKeys: doc.renditionKeys } : {}), quality: doc.quality ?? null, score: doc.score ?? null, ...(doc.note ? { note: doc.note } : {}) } : null;
  }

  async putCachedOutput(tenantId: string, sourceSha256: string, settings: string, o: ReusableOutput, now: number): Promise<void> {
    await writeCachedOutput(this.#c, tenantId, sourceSha256, settings, o, now);
  }

  async getValidators(tenantId: string, url: string, settings: string): Promise<UrlValidators | null> {
    const doc = await this.#c.validators.findOne({ _id: JSON.stringify([tenantId, url, settings]) });
    return doc ? {
      etag: doc.etag ?? null, lastModified: doc.lastModified ?? null, outputKey: doc.outputKey, format: doc.format, bytesIn: doc.bytesIn, bytesOut: doc.bytesOut,
      ...(doc.renditionKeys ? { renditionKeys: doc.renditionKeys } : {}), quality: doc.quality ?? null, score: doc.score ?? null, ...(doc.note ? { note: doc.note } : {}),
    } : null;
  }

  async putValidators(tenantId: string, url: string, settings: string, v: UrlValidators, now: number): Promise<void> {
    await writeValidators(this.#c, tenantId, url, settings, v, now);
  }
}

/** The content cache document (also written with a completion). */
export async function writeCachedOutput(c: Collections, tenantId: string, sourceSha256: string, settings: string, o: ReusableOutput, now: number): Promise<void> {
  await c.contentCache.replaceOne(
    { _id: JSON.stringify([tenantId, sourceSha256, settings]) },
    { outputKey: o.outputKey, format: o.format, bytesOut: o.bytesOut, renditionKeys: o.renditionKeys ?? null, quality: o.quality ?? null, score: o.score ?? null, note: o.note ?? null, updatedAt: now },
    { upsert: true },
  ).catch((err) => { if (!isDuplicateKey(err)) throw err; });
}

/** The URL validators document (also written with a completion). */
export async function writeValidators(c: Collections, tenantId: string, url: string, settings: string, v: UrlValidators, now: number): Promise<void> {
  await c.validators.replaceOne(
    { _id: JSON.stringify([tenantId, url, settings]) },
    {
      etag: v.etag, lastModified: v.lastModified, outputKey: v.outputKey, format: v.format, bytesIn: v.bytesIn, bytesOut: v.bytesOut,
      renditionKeys: v.renditionKeys ?? null, quality: v.quality ?? null, score: v.score ?? null, note: v.note ?? null, updatedAt: now,
    },
    { upsert: true },
  ).catch((err) => { if (!isDuplicateKey(err)) throw err; });
}
