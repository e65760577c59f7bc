import pino, { type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/** JSON logs on stdout; secrets are redacted wherever they appear as fields. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>): Logger {
  return pino({
    level: config.LOG_LEVEL,
    base: undefined,
    redact: {
      paths: ['secret', '*.secret', 'apiKey', '*.apiKey', 'headers.authorization', 'headers["x-api-key"]', 'webhookSecret', '*.webhookSecret'],
      censor: '[redacted]',
    },
  });
}
