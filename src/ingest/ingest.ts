// An upload, end to end: multipart stream → CSV batches → store, committed only when the whole
// file is valid. Nothing of a rejected or interrupted upload stays visible.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { Config } from '../config.js';
import { OUTPUT_OPTION_NAMES } from '../codecs/output-options.js';
import type { RequestOptions } from '../codecs/renditions.js';
import { AppError } from '../errors.js';
import { inFlightRefusal } from '../operations/quotas.js';
import { InFlightLimitError, type RequestRecord, type Store } from '../store/types.js';
import { assertDeliverableUrl } from '../webhooks/receiver-url.js';
import { generateSecret } from '../webhooks/signing.js';
import { csvLimitsFromConfig, readProductBatches } from './csv-rows.js';
import { cleanFileName } from './file-name.js';
import { readUpload, uploadLimitsFromConfig } from './multipart.js';

export interface IngestResult {
  request: RequestRecord;
  /** true when an Idempotency-Key matched an earlier upload: nothing new was stored. */
  replayed: boolean;
}

export interface IngestContext {
  /** The API key (tenant) making the upload. */
  tenantId: string;
  idempotencyKey: string | null;
  /** Turns the form's text fields into the request's output options and renditions (throws a 400 naming the field). */
  parseOptions?: (fields: Readonly<Record<string, string>>) => RequestOptions | null;
  /** The tenant's limit on images not yet final, this upload's included (absent: none). */
  maxImagesInFlight?: number;
}

/** The form fields that take part in an upload's fingerprint (besides the file). */
const FINGERPRINTED_FIELDS = ['webhook_url', ...OUTPUT_OPTION_NAMES, 'renditions'];
/**
 * The fields of the first fingerprints, which always take part; a field added since joins only
 * when given, so a key stored before it existed still matches the same upload.
 */
const FIRST_FINGERPRINTED = new Set(['webhook_url', 'quality', 'format', 'max_width', 'max_height']);

export async function ingestUpload(
  httpRequest: Request,
  deps: { store: Store; config: Config },
  ctx: IngestContext,
): Promise<IngestResult> {
  const { store, config } = deps;
  const id = randomUUID();
  let begun = false;
  let replay: RequestRecord | null = null;
  let replayFingerprint: string | null = null;
  let webhookBeforeFile = false;
  const fileHash = createHash('sha256');
  const receiver = async (raw: string | undefined) => {
    if (raw === undefined || raw.trim() === '') return null;
    const url = await assertDeliverableUrl(raw, config.FETCH_ALLOWLIST);
    // Every per-upload receiver gets a secret of its own (returned once, in the 202).
    return { url, secret: generateSecret() };
  };

  try {
    const { fields } = await readUpload(httpRequest, uploadLimitsFromConfig(config), async (file) => {
      webhookBeforeFile = file.fieldsBefore.webhook_url !== undefined;
      ctx.parseOptions?.(file.fieldsBefore); // a bad option given first fails before the file is read
      const early = await receiver(file.fieldsBefore.webhook_url);
      const begin = await store.beginRequest({
        id, tenantId: ctx.tenantId, idempotencyKey: ctx.idempotencyKey,
        webhookUrl: early?.url ?? null, webhookSecret: early?.secret ?? null, fileName: cleanFileName(file.filename), now: Date.now(),
      });
      if (!begin.created) {
        // Read the rest only to tell a replay of the same upload from another one under the same key.
        replay = begin.existing;
        replayFingerprint = begin.fingerprint;
        for await (const chunk of file.stream) fileHash.update(chunk);
        return;
      }
      begun = true;
      for await (const batch of readProductBatches(hashing(file.stream, fileHash), csvLimitsFromConfig(config))) {
        await store.appendBatch(id, batch);
      }
    });
    const fingerprint = fingerprintOf(fileHash, fields);
    if (replay) return answerReplay(replay, replayFingerprint, fingerprint);
    if (!begun) throw new AppError(400, 'file: no CSV file part in the upload');
    // Fields after the file (options among them) are checked before anything is committed.
    const options = ctx.parseOptions?.(fields) ?? null;
    const late = webhookBeforeFile ? null : await receiver(fields.webhook_url);
    const request = await store.commitRequest(id, Date.now(), {
      options,
      ...(late ? { webhook: late } : {}),
      ...(ctx.idempotencyKey !== null ? { fingerprint } : {}),
      ...(ctx.maxImagesInFlight !== undefined ? { maxImagesInFlight: ctx.maxImagesInFlight } : {}),
    }).catch((err: unknown) => {
      throw err instanceof InFlightLimitError ? inFlightRefusal(err) : err;
    });
    return { request, replayed: false };
  } catch (err) {
    if (begun) await store.abortRequest(id).catch(() => {}); // cleanupIngesting catches what this misses
    throw err;
  }
}

async function* hashing(stream: AsyncIterable<Uint8Array>, hash: Hash): AsyncGenerator<Uint8Array> {
  for await (const chunk of stream) {
    hash.update(chunk);
    yield chunk;
  }
}

/** The digest of an upload: its file's bytes and the fields that change what is made or sent. */
function fingerprintOf(fileHash: Hash, fields: Readonly<Record<string, string>>): string {
  const parts = FINGERPRINTED_FIELDS.map((name) => [name, fields[name]?.trim() ?? '']).filter(([name, value]) => value !== '' || FIRST_FINGERPRINTED.has(name!));
  return createHash('sha256').update(fileHash.digest('hex')).update(JSON.stringify(parts)).digest('hex');
}

function answerReplay(existing: RequestRecord, stored: string | null, fingerprint: string): IngestResult {
  if (existing.status === 'ingesting') {
    throw new AppError(409, 'An upload with this Idempotency-Key is still in progress; retry when it has finished');
  }
  // Keys made before fingerprints existed (null) replay as they always did.
  if (stored !== null && stored !== fingerprint) {
    throw new AppError(422, 'Idempotency-Key was already used with a different upload (file or fields); use a new key for a new upload');
  }
  return { request: existing, replayed: true };
}
