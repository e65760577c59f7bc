import { badRequest } from "../errors.js";
import { FetchError, preflightUrl } from "../pipeline/guarded-fetch.js";
const MAX_URL_LENGTH = 2048;
async function assertDeliverableUrl(url, allowlist, opts = {}) {
  const field = opts.field ?? "webhook_url";
  if (url.length > MAX_URL_LENGTH) throw badRequest(`${field}: longer than ${MAX_URL_LENGTH} characters`);
  let parsed;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw badRequest(`${field}: must be an absolute http(s) URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw badRequest(`${field}: must be an absolute http(s) URL (got ${parsed.protocol})`);
  }
  if (parsed.username || parsed.password) throw badRequest(`${field}: must not contain credentials`);
  parsed.hash = "";
  try {
    await preflightUrl(parsed.href, { allowlist, ...opts.resolve ? { resolve: opts.resolve } : {} });
  } catch (err) {
    if (err instanceof FetchError) {
      if (err.kind === "blocked") throw badRequest(`${field}: refused, ${err.reason} (private and loopback targets need FETCH_ALLOWLIST)`);
      throw badRequest(`${field}: ${err.reason}`);
    }
    throw err;
  }
  return parsed.href;
}
export {
  assertDeliverableUrl
};
//# sourceMappingURL=receiver-url.js.map
