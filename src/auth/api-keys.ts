// Tenant API keys: made here, shown once, stored only as their SHA-256. Used by the keys route
// and the CLI; the HTTP edge (http/caller.ts) hashes what a client presents the same way.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ApiKeyRecord, Store } from '../store/types.js';

export const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

/** Creates a tenant key. Returns the record and the key itself, which is never stored. */
export async function createApiKey(
  store: Store, name: string, quotas: Pick<ApiKeyRecord, 'maxImagesInFlight' | 'maxUploadsPerMinute'> = { maxImagesInFlight: null, maxUploadsPerMinute: null },
): Promise<{ record: ApiKeyRecord; key: string }> {
  const key = `icp_${randomBytes(32).toString('base64url')}`;
  const record: ApiKeyRecord = { id: `key_${randomUUID()}`, name, hash: hashKey(key), createdAt: Date.now(), revokedAt: null, ...quotas };
  await store.createKey(record);
  return { record, key };
}

/** A key as lists show it: never the key or its hash. */
export function keyView(k: ApiKeyRecord) {
  return {
    id: k.id, name: k.name, created_at: new Date(k.createdAt).toISOString(),
    max_images_in_flight: k.maxImagesInFlight, max_uploads_per_minute: k.maxUploadsPerMinute,
  };
}
