// Documents to records: the MongoDB store's field names and defaults in one place.
import { readStatus } from '../lifecycle.js';
import type { AttemptDoc, DeliveryDoc, ItemDoc, KeyDoc, RequestDoc, SubscriptionDoc } from './schema.js';
import type { ApiKeyRecord, DeliveryAttempt, DeliveryRecord, ItemRecord, RequestRecord, Subscription } from '../types.js';

export function toRequest(d: RequestDoc): RequestRecord {
  return {
    id: d._id,
    status: readStatus(d.status), tenantId: d.tenantId,
    webhookUrl: d.webhookUrl ?? null, webhookSecret: d.webhookSecret ?? null, options: d.options ?? null, fileName: d.fileName ?? null,
    productCount: d.productCount, total: d.total, done: d.done, failed: d.failed,
    bytesIn: d.bytesIn ?? 0, bytesOut: d.bytesOut ?? 0, run: d.run ?? 0,
    createdAt: d.createdAt, updatedAt: d.updatedAt, version: d.version ?? 0,
  };
}

export function toItem(d: ItemDoc): ItemRecord {
  return {
    id: d._id.toHexString(), requestId: d.requestId, url: d.url, state: d.state,
    attempts: d.attempts, claims: d.claims ?? 0, leaseOwner: d.leaseOwner ?? null, leaseUntil: d.leaseUntil ?? null,
    outputKey: d.outputKey ?? null, renditionKeys: d.renditionKeys ?? null, error: d.error ?? null, outcome: d.outcome ?? null, bytesIn: d.bytesIn ?? null, bytesOut: d.bytesOut ?? null,
    note: d.note ?? null,
  };
}

export function toSubscription(d: SubscriptionDoc): Subscription {
  return {
    id: d._id, tenantId: d.tenantId, url: d.url, events: d.events, secret: d.secret,
    previousSecret: d.previousSecret ?? null, previousSecretExpiresAt: d.previousSecretExpiresAt ?? null,
    createdAt: d.createdAt,
  };
}

export function toDelivery(d: DeliveryDoc): DeliveryRecord {
  return {
    id: d._id, eventId: d.eventId, subscriptionId: d.subscriptionId ?? null, requestId: d.requestId,
    url: d.url, eventType: d.eventType, payload: d.payload, state: d.state, attempts: d.attempts,
    nextAttemptAt: d.nextAttemptAt, leaseOwner: d.leaseOwner ?? null, leaseUntil: d.leaseUntil ?? null,
    lastError: d.lastError ?? null, createdAt: d.createdAt, updatedAt: d.updatedAt,
  };
}

export function toAttempt(d: AttemptDoc): DeliveryAttempt {
  return {
    deliveryId: d.deliveryId, attempt: d.attempt, at: d.at,
    statusCode: d.statusCode ?? null, error: d.error ?? null, durationMs: d.durationMs,
  };
}

export function toKey(d: KeyDoc): ApiKeyRecord {
  return {
    id: d._id, name: d.name, hash: d.hash, createdAt: d.createdAt, revokedAt: d.revokedAt ?? null,
    maxImagesInFlight: d.maxImagesInFlight ?? null, maxUploadsPerMinute: d.maxUploadsPerMinute ?? null,
  };
}
