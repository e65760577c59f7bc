// The logger: pino, one JSON object per line on stdout (pretty on a terminal when pino-pretty is
// installed). Secrets never reach the output: they are not logged on purpose, and the paths
// below are redacted in case one ever is. URLs are logged through redactUrl(); the URL fields
// below go through it again, so a call that forgets cannot leak a token or a password.
import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config.js';
import { redactUrl } from './net/redact-url.js';

export type { Logger };

/** Field paths whose values are replaced by "[redacted]" wherever they appear. */
export const REDACTED_PATHS = [
  'secret', '*.secret', 'previousSecret', '*.previousSecret',
  'webhookSecret', '*.webhookSecret', 'webhook_secret', '*.webhook_secret',
  'apiKey', '*.apiKey', 'api_key', '*.api_key',
  'API_KEY', '*.API_KEY', 'WEBHOOK_SECRET', '*.WEBHOOK_SECRET', 'MONGODB_URI', '*.MONGODB_URI',
  'METRICS_TOKEN', '*.METRICS_TOKEN',
  'authorization', 'headers.authorization', '*.headers.authorization',
  'headers["x-api-key"]', '*.headers["x-api-key"]', 'headers.cookie', '*.headers.cookie',
  'password', '*.password',
];

/** Fields that hold image or webhook URLs, wherever they are logged from. */
export const URL_FIELDS = ['url', 'webhook_url', 'webhookUrl', 'finalUrl', 'location'] as const;

const urlSerializers = Object.fromEntries(
  URL_FIELDS.map((field) => [field, (v: unknown) => (typeof v === 'string' ? redactUrl(v) : v)]),
);

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * JSON logs on stdout (or on `destination`, e.g. stderr for the CLI or a capture in tests).
 * Without a destination, on a terminal or with NODE_ENV=development: human-readable lines through
 * pino-pretty, if present.
 */
export function createLogger(
  config: Pick<Config, 'LOG_LEVEL'> & Partial<Pick<Config, 'NODE_ENV'>>,
  destination?: DestinationStream,
): Logger {
  const options: LoggerOptions = {
    level: config.LOG_LEVEL,
    base: undefined,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: urlSerializers,
  };
  // A person at a terminal (`npm start`) reads lines; anything else (a pipe, a file, a container's
  // log driver) gets one JSON object per line. pino-pretty is a devDependency, so a production
  // install (npm ci --omit=dev) stays JSON even on a terminal.
  const person = config.NODE_ENV === 'development' || process.stdout.isTTY === true;
  if (!destination && person && prettyAvailable()) {
    options.transport = { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } };
  }
  return destination ? pino(options, destination) : pino(options);
}
