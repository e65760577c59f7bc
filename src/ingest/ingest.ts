// An upload, end to end: multipart stream → CSV batches → store, committed only when the whole
// file is valid. Nothing of a rejected or interrupted upload stays visible.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { RequestRecord, Store } from '../store/types.js';
import { assertDeliverableUrl } from '../webhooks/receiver-url.js';
import { generateSecret } from '../webhooks/signing.js';
import { csvLimitsFromConfig, readProductBatches } from './csv-rows.js';
import { readUpload, uploadLimitsFromConfig } from './multipart.js';

export interface IngestResult {
  request: RequestRecord;
  /** true when an Idempotency-Key matched an earlier upload: nothing new was stored. */
  replayed: boolean;
}

export async function ingestUpload(
  httpRequest: Request,
  deps: { store: Store; config: Config },
  idempotencyKey: string | null,
): Promise<IngestResult> {
  const { store, config } = deps;
  const id = randomUUID();
  let begun = false;
  let replay: RequestRecord | null = null;
  let webhookBeforeFile = false;
  const receiver = async (raw: string | undefined) => {
    if (raw === undefined || raw.trim() === '') return null;
    const url = await assertDeliverableUrl(raw, config.FETCH_ALLOWLIST);
    return { url, secret: config.WEBHOOK_SECRET ?? generateSecret() };
  };

  try {
    const { fields } = await readUpload(httpRequest, uploadLimitsFromConfig(config), async (file) => {
      webhookBeforeFile = file.fieldsBefore.webhook_url !== undefined;
      const early = await receiver(file.fieldsBefore.webhook_url);
      const begin = await store.beginRequest({
        id, idempotencyKey, webhookUrl: early?.url ?? null, webhookSecret: early?.secret ?? null, now: Date.now(),
      });
      if (!begin.created) {
        replay = begin.existing; // the rest of the body is drained unread
        return;
      }
      begun = true;
      for await (const batch of readProductBatches(file.stream, csvLimitsFromConfig(config))) {
        await store.appendBatch(id, batch);
      }
    });
    if (replay) return answerReplay(replay);
    if (!begun) throw new AppError(400, 'file: no CSV file part in the upload');
    const late = webhookBeforeFile ? null : await receiver(fields.webhook_url);
    const request = await store.commitRequest(id, Date.now(), late ?? undefined);
    return { request, replayed: false };
  } catch (err) {
    if (begun) await store.abortRequest(id).catch(() => {}); // cleanupIngesting catches what this misses
    throw err;
  }
}

function answerReplay(existing: RequestRecord): IngestResult {
  if (existing.status === 'ingesting') {
    throw new AppError(409, 'An upload with this Idempotency-Key is still in progress; retry when it has finished');
  }
  return { request: existing, replayed: true };
}
