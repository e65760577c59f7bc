import { randomUUID } from "node:crypto";
import { AppError } from "../errors.js";
import { assertDeliverableUrl } from "../webhooks/receiver-url.js";
import { generateSecret } from "../webhooks/signing.js";
import { csvLimitsFromConfig, readProductBatches } from "./csv-rows.js";
import { readUpload } from "./multipart.js";
async function ingestUpload(httpRequest, deps, idempotencyKey) {
  const { store, config } = deps;
  const id = randomUUID();
  let begun = false;
  let replay = null;
  let webhookBeforeFile = false;
  const receiver = async (raw) => {
    if (raw === void 0 || raw.trim() === "") return null;
    const url = await assertDeliverableUrl(raw, config.FETCH_ALLOWLIST);
    return { url, secret: config.WEBHOOK_SECRET ?? generateSecret() };
  };
  try {
    const { fields } = await readUpload(httpRequest, { maxBytes: config.MAX_UPLOAD_BYTES }, async (file) => {
      webhookBeforeFile = file.fieldsBefore.webhook_url !== void 0;
      const early = await receiver(file.fieldsBefore.webhook_url);
      const begin = await store.beginRequest({
        id,
        idempotencyKey,
        webhookUrl: early?.url ?? null,
        webhookSecret: early?.secret ?? null,
        now: Date.now()
      });
      if (!begin.created) {
        replay = begin.existing;
        return;
      }
      begun = true;
      for await (const batch of readProductBatches(file.stream, csvLimitsFromConfig(config))) {
        await store.appendBatch(id, batch);
      }
    });
    if (replay) return answerReplay(replay);
    if (!begun) throw new AppError(400, "file: no CSV file part in the upload");
    const late = webhookBeforeFile ? null : await receiver(fields.webhook_url);
    const request = await store.commitRequest(id, Date.now(), late ?? void 0);
    return { request, replayed: false };
  } catch (err) {
    if (begun) await store.abortRequest(id).catch(() => {
    });
    throw err;
  }
}
function answerReplay(existing) {
  if (existing.status === "ingesting") {
    throw new AppError(409, "An upload with this Idempotency-Key is still in progress; retry when it has finished");
  }
  return { request: existing, replayed: true };
}
export {
  ingestUpload
};
//# sourceMappingURL=ingest.js.map
