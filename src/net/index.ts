// Outbound HTTP to hosts named by users (image downloads, webhook deliveries), behind the SSRF
// guard. One module per concern:
//   fetch-image.ts, post-json.ts   what the service asks for (GET an image, POST a webhook)
//   download-thread.ts             image downloads in a thread of their own (workers/download.ts)
//   retry.ts                       attempts, timeouts, backoff
//   transport.ts                   one exchange on one checked connection, with a per-address slot
//   address-guard.ts               URL and DNS checks before connecting (also preflightUrl)
//   private-network.ts             the address classifier and FETCH_ALLOWLIST
//   host-limiter.ts                connection slots, overall and per destination address
//   redact-url.ts                  URLs as they may appear in logs
//   errors.ts                      FetchError
export { preflightUrl, type ResolvedAddress, type Resolver } from './address-guard.js';
export { DownloadThread, type DownloadThreadSettings, type FetchedImage } from './download-thread.js';
export { FetchError, type FetchErrorKind } from './errors.js';
export { downloadIfChanged, downloadImage, type DownloadOptions, type DownloadResult, type NotModified, type Validators } from './fetch-image.js';
export { HostLimiter, LimiterAbortedError, type LimiterOptions } from './host-limiter.js';
export { DEFAULTS, type GuardedRequestOptions } from './options.js';
export { postJson, type PostOptions, type PostResult } from './post-json.js';
export {
  forbiddenHostName,
  isAllowedAddress,
  isForbiddenAddress,
  parseAllowlist,
  type Allowlist,
  type AllowlistInput,
} from './private-network.js';
export { redactUrl } from './redact-url.js';
export { backoffDelay, parseRetryAfter, type RetryInfo } from './retry.js';
