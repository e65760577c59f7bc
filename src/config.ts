// The one place that reads the environment. Everything else receives a typed Config.
import { availableParallelism } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_QUALITY, OUTPUT_OPTION_FIELDS } from './codecs/output-options.js';
import { parseAllowlist } from './net/private-network.js';

/** A Host header (or `host[:port]` entry) split and normalised: lowercase, no trailing dot. */
export function parseHost(value: string): { name: string; port: string | null } | null {
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(value.trim());
  if (!m) return null;
  return { name: m[1]!.toLowerCase().replace(/\.$/, ''), port: m[2] ?? null };
}

const emptyAsUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

// An empty value (PORT= in a compose file) means "not set": coercion would otherwise read it as 0.
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(emptyAsUndefined, z.coerce.number().int().min(min).max(max).default(def));
const optionalString = z.preprocess(emptyAsUndefined, z.string().optional());

const commaList = (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v);

const cidrList = z.preprocess(
  commaList,
  z.array(
    // A bare address means that one address (/32 or /128): parseAllowlist reads both forms.
    z.string().refine((s) => /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(s), { message: 'must be an address or a CIDR, like 127.0.0.1 or 10.0.0.0/8' }),
  ).default([]),
);

/** The origin of an absolute http(s) URL that has nothing after the host and port but "/", or null. */
function originOf(value: string): string | null {
  try {
    const url = new URL(value);
    const bare = url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
    return (url.protocol === 'http:' || url.protocol === 'https:') && bare ? url.origin : null;
  } catch {
    return null;
  }
}

const originList = z.preprocess(
  commaList,
  z.array(
    z.string()
      .refine((s) => originOf(s) !== null, { error: (issue) => `${JSON.stringify(issue.input)} is not an origin: write scheme://host[:port], e.g. https://app.example.com` })
      .transform((s) => originOf(s)!),
  ).default([]),
);

const schema = z.object({
  PORT: int(8000, 0, 65535),
  HOST: z.string().default('0.0.0.0'),
  PUBLIC_BASE_URL: z.preprocess(emptyAsUndefined, z.url({ protocol: /^https?$/ }).optional()),
  /**
   * Host names (host or host:port, comma-separated) this service answers to in open mode,
   * besides the loopback names and PUBLIC_BASE_URL's host: a DNS-rebinding guard.
   */
  ALLOWED_HOSTS: z.preprocess(
    commaList,
    z.array(z.string().refine((s) => parseHost(s) !== null, { message: 'must be host or host:port, e.g. myhost.lan:8000' })).default([]),
  ),
  DATA_DIR: z.string().default('./data'),
  IMAGE_STORAGE_PATH: optionalString,
  MONGODB_URI: z.preprocess(emptyAsUndefined, z.string().regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://').optional()),
  DATABASE_NAME: z.string().default('image_processing'),
  MONGODB_CONNECT_TIMEOUT_MS: int(5000, 100),
  API_KEY: optionalString,
  /** Origins (besides the service's own) whose pages may call /api/v1 from a browser. */
  CORS_ORIGINS: originList,
  WEBHOOK_SECRET: optionalString,
  /** When set, /metrics requires Authorization: Bearer <METRICS_TOKEN>. */
  METRICS_TOKEN: optionalString,
  ROLE: z.enum(['all', 'api', 'worker']).default('all'),

  WORKER_THREADS: int(availableParallelism(), 1, 256),
  DOWNLOAD_CONCURRENCY: int(16, 1, 1024),
  DOWNLOAD_PER_HOST: int(6, 1, 1024),
  MAX_IMAGE_BYTES: int(25 * 1024 * 1024, 1024),
  MAX_IMAGE_PIXELS: int(50_000_000, 1),
  FETCH_ALLOWLIST: cidrList,
  FETCH_CONNECT_TIMEOUT_MS: int(5_000, 1),
  FETCH_TIMEOUT_MS: int(30_000, 1),
  FETCH_RETRIES: int(3, 0, 10),
  FETCH_RETRY_BASE_MS: int(500, 0),
  JPEG_QUALITY: int(DEFAULT_QUALITY, OUTPUT_OPTION_FIELDS.quality.min, OUTPUT_OPTION_FIELDS.quality.max),
  /**
   * The memory all images being compressed may hold together, in MiB: decoded pixels, codec
   * working memory, resize buffers and the target encoder, each image's share computed from its
   * header before decoding. 1024 fits one 50-megapixel JPEG and keeps 2 threads within ~1.2 GB.
   */
  MAX_DECODE_MEMORY_MB: int(1024, 64, 1_048_576),
  LEASE_MS: int(60_000, 1_000),
  MAX_ITEM_ATTEMPTS: int(5, 1, 100),
  /** Appends one line per image taken into the codecs (pid, thread, format): for tests and audits. */
  CODEC_RUN_LOG: optionalString,

  MAX_UPLOAD_BYTES: int(50 * 1024 * 1024, 1),
  MAX_ROWS: int(100_000, 1),
  MAX_URLS_PER_PRODUCT: int(50, 1),
  MAX_CELL_CHARS: int(16_384, 16),
  INGEST_BATCH_ROWS: int(2_000, 1),

  // Inbound connections (src/runtime/serve.ts applies what the runtime offers; README lists it).
  HTTP_HEADERS_TIMEOUT_MS: int(20_000, 100),
  HTTP_REQUEST_TIMEOUT_MS: int(30_000, 100),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: int(5_000, 100),
  HTTP_MAX_CONNECTIONS: int(1_024, 1),
  // Uploads are not held to HTTP_REQUEST_TIMEOUT_MS but to a minimum rate (0: not checked).
  UPLOAD_MIN_BYTES_PER_SEC: int(1_024, 0),
  UPLOAD_RATE_WINDOW_MS: int(10_000, 100),
  UPLOAD_RATE_GRACE_MS: int(10_000, 0),

  // Operating the data (src/operations): retention, output clean-up, per-tenant quotas.
  /** Final requests older than this many days are deleted; unset keeps them forever. */
  REQUEST_RETENTION_DAYS: z.preprocess(emptyAsUndefined, z.coerce.number().positive().max(36_500).optional()),
  /** An output no request refers to is removed only once it was last written this long ago. */
  BLOB_GRACE_SECONDS: int(600, 0),
  /** Images a tenant may have queued (not yet final) before its uploads get 429. */
  MAX_IMAGES_IN_FLIGHT_PER_TENANT: int(1_000_000, 1),
  /** Uploads a tenant may begin per minute before it gets 429. */
  MAX_UPLOADS_PER_MINUTE: int(120, 1),

  // Live progress streams (/api/v1/status/{id}/events, /api/v1/requests/events): one store
  // poller per process, every EVENTS_POLL_MS while a stream is open, reading the
  // EVENTS_RECENT_REQUESTS newest requests plus the ones a status stream follows.
  EVENTS_POLL_MS: int(250, 10, 60_000),
  EVENTS_RECENT_REQUESTS: int(200, 1, 1000),
  EVENTS_MAX_STREAMS: int(1_000, 1, 100_000),
  /** Streams one tenant key may hold open per process (429 beyond); the admin's are not counted. */
  EVENTS_MAX_STREAMS_PER_TENANT: int(20, 1, 100_000),
  EVENTS_KEEPALIVE_MS: int(15_000, 50, 300_000),

  WEBHOOK_TIMEOUT_MS: int(10_000, 1),
  WEBHOOK_BACKOFF_SCALE: z.preprocess(emptyAsUndefined, z.coerce.number().positive().default(1)),

  STORAGE: z.enum(['local', 's3']).default('local'),
  S3_BUCKET: optionalString,
  S3_ENDPOINT: optionalString,
  S3_REGION: z.string().default('us-east-1'),
  S3_FORCE_PATH_STYLE: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),

  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NODE_ENV: z.string().default('production'),
});

type Raw = z.infer<typeof schema>;

/** Every variable this module reads (docs/configuration.md has a row for each; a test checks). */
export const SETTING_NAMES: readonly string[] = Object.keys(schema.shape);

export interface Config extends Omit<Raw, 'PUBLIC_BASE_URL' | 'IMAGE_STORAGE_PATH'> {
  PUBLIC_BASE_URL: string;
  IMAGE_STORAGE_PATH: string;
}

export class ConfigError extends Error {}

/** Parses an environment record; throws ConfigError with one line per bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const raw = parsed.data;
  try {
    parseAllowlist(raw.FETCH_ALLOWLIST);
  } catch (err) {
    throw new ConfigError(`invalid configuration: FETCH_ALLOWLIST: ${(err as Error).message}`);
  }
  if (raw.STORAGE === 's3' && !raw.S3_BUCKET) throw new ConfigError('invalid configuration: S3_BUCKET: required when STORAGE=s3');
  const dataDir = resolve(raw.DATA_DIR);
  const imagePath = raw.IMAGE_STORAGE_PATH ?? join(dataDir, 'images');
  return {
    ...raw,
    DATA_DIR: dataDir,
    IMAGE_STORAGE_PATH: isAbsolute(imagePath) ? imagePath : resolve(imagePath),
    PUBLIC_BASE_URL: (raw.PUBLIC_BASE_URL ?? `http://localhost:${raw.PORT}`).replace(/\/+$/, ''),
  };
}
