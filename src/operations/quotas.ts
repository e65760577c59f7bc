// Per-tenant quotas on uploads: images queued (MAX_IMAGES_IN_FLIGHT_PER_TENANT) and uploads
// committed per minute (MAX_UPLOADS_PER_MINUTE, from the store's upload log, so deleting
// requests frees nothing). Over either, the upload is refused with 429 and Retry-After and
// nothing of it is stored; work already accepted is never dropped. The in-flight limit is
// checked early (a full queue refuses before the file is read) and decided in the store's
// commit, counting the upload's own images, so concurrent uploads cannot pass it together.
import { AppError } from '../errors.js';
import type { InFlightLimitError, Store } from '../store/types.js';

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

/**
 * The answer to a commit the store refused: 413 when the upload alone holds more images than
 * the limit (retrying cannot help), else 429 with Retry-After (the queue drains).
 */
export function inFlightRefusal(err: InFlightLimitError): AppError {
  const name = 'MAX_IMAGES_IN_FLIGHT_PER_TENANT (or this key\'s max_images_in_flight)';
  if (err.images > err.limit) {
    return new AppError(413, `Too many images in one upload: it holds ${err.images} and ${name} is ${err.limit}; split the CSV into uploads of at most ${err.limit} images`);
  }
  return new AppError(429, `Too many images queued: ${name} is ${err.limit} for this API key; ${err.inFlight} are not finished yet and this upload adds ${err.images}`, { 'retry-after': String(IN_FLIGHT_RETRY_AFTER_S) });
}
