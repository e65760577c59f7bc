// Per-tenant quotas on uploads: images queued (MAX_IMAGES_IN_FLIGHT_PER_TENANT) and uploads
// begun per minute (MAX_UPLOADS_PER_MINUTE). Over either, the upload is refused with 429 and
// Retry-After before anything is stored; work already accepted is never dropped.
import { AppError } from '../errors.js';
import type { Store } from '../store/types.js';

export interface QuotaLimits {
  maxImagesInFlight: number;
  maxUploadsPerMinute: number;
}

const MINUTE = 60_000;
/** What to suggest when the queue is full: its drain time is not known. */
const IN_FLIGHT_RETRY_AFTER_S = 30;

export async function assertWithinQuota(store: Store, tenantId: string, limits: QuotaLimits, now = Date.now()): Promise<void> {
  const usage = await store.tenantUsage(tenantId, now - MINUTE);
  if (usage.uploadsSince >= limits.maxUploadsPerMinute) {
    const retryAfter = Math.max(1, Math.ceil(((usage.oldestUploadSince ?? now) + MINUTE - now) / 1000));
    throw new AppError(429, `Too many uploads: MAX_UPLOADS_PER_MINUTE (or this key's max_uploads_per_minute) is ${limits.maxUploadsPerMinute} for this API key; retry in ${retryAfter} s`, { 'retry-after': String(retryAfter) });
  }
  if (usage.inFlight >= limits.maxImagesInFlight) {
    throw new AppError(429, `Too many images queued: MAX_IMAGES_IN_FLIGHT_PER_TENANT (or this key's max_images_in_flight) is ${limits.maxImagesInFlight} for this API key and ${usage.inFlight} are not finished yet`, { 'retry-after': String(IN_FLIGHT_RETRY_AFTER_S) });
  }
}
