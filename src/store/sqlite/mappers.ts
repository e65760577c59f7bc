// Rows to records: the SQLite store's column names and encodings in one place.
import type { SqlRow as Row } from './connection.js';
import type { RequestOptions } from '../../codecs/renditions.js';
import type { ClaimCandidate } from '../lifecycle.js';
import type { ApiKeyRecord, DeliveryAttempt, DeliveryRecord, EventType, ItemRecord, RequestRecord, Subscription } from '../types.js';

export const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
export const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
export const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

export function toRequest(r: Row): RequestRecord {
  return {
    id: String(r.id), status: String(r.status) as RequestRecord['status'], tenantId: String(r.tenant_id),
    webhookUrl: str(r.webhook_url), webhookSecret: str(r.webhook_secret), fileName: str(r.file_name),
    options: r.options === null || r.options === undefined ? null : JSON.parse(String(r.options)) as RequestOptions,
    productCount: Number(r.product_count), total: Number(r.total), done: Number(r.done), failed: Number(r.failed),
    bytesIn: Number(r.bytes_in), bytesOut: Number(r.bytes_out), run: Number(r.run),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at), version: Number(r.version),
  };
}

export function toCandidate(r: Row): ClaimCandidate {
  return { requestId: String(r.id), tenantId: String(r.tenant_id), lastClaimAt: Number(r.last_claim_at), createdAt: Number(r.created_at) };
}

export function toItem(r: Row): ItemRecord {
  return {
    id: String(r.id), requestId: String(r.request_id), url: String(r.url),
    state: String(r.state) as ItemRecord['state'], attempts: Number(r.attempts), claims: Number(r.claims),
    leaseOwner: str(r.lease_owner), leaseUntil: num(r.lease_until), outputKey: str(r.output_key), error: str(r.error),
    renditionKeys: renditionKeysOf(r.rendition_keys),
    outcome: str(r.outcome) as ItemRecord['outcome'], bytesIn: num(r.bytes_in), bytesOut: num(r.bytes_out),
    note: str(r.note),
    quality: num(r.quality), score: num(r.score),
  };
}

export function toSubscription(r: Row): Subscription {
  return {
    id: String(r.id), tenantId: String(r.tenant_id), url: String(r.url), events: JSON.parse(String(r.events)) as EventType[],
    secret: String(r.secret), previousSecret: str(r.previous_secret), previousSecretExpiresAt: num(r.previous_secret_expires_at),
    createdAt: Number(r.created_at),
  };
}

export function toDelivery(r: Row): DeliveryRecord {
  return {
    id: String(r.id), eventId: String(r.event_id), subscriptionId: str(r.subscription_id), requestId: String(r.request_id),
    url: String(r.url), eventType: String(r.event_type) as EventType, payload: String(r.payload),
    state: String(r.state) as DeliveryRecord['state'], attempts: Number(r.attempts), nextAttemptAt: Number(r.next_attempt_at),
    leaseOwner: str(r.lease_owner), leaseUntil: num(r.lease_until), lastError: str(r.last_error),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
  };
}

export function toAttempt(r: Row): DeliveryAttempt {
  return {
    deliveryId: String(r.delivery_id), attempt: Number(r.attempt), at: Number(r.at),
    statusCode: num(r.status_code), error: str(r.error), durationMs: Number(r.duration_ms),
  };
}

export function toKey(r: Row): ApiKeyRecord {
  return {
    id: String(r.id), name: String(r.name), hash: String(r.hash), createdAt: Number(r.created_at), revokedAt: num(r.revoked_at),
    maxImagesInFlight: num(r.max_images_in_flight), maxUploadsPerMinute: num(r.max_uploads_per_minute),
  };
}

/** The rendition_keys column (JSON of name -> output key, or NULL) both ways. */
export const renditionKeysOf = (v: unknown): Record<string, string> | null => (v === null || v === undefined ? null : JSON.parse(String(v)) as Record<string, string>);
export const renditionKeysColumn = (keys: Record<string, string> | null | undefined): string | null => (keys && Object.keys(keys).length > 0 ? JSON.stringify(keys) : null);
