// Entry point: `node dist/src/main.js` (also `bun` / `deno run -A` on the same file).
import process from 'node:process';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { startService } from './service.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config);
  // Last lines of defence. A stray rejection is a bug to log, not a reason to drop every
  // request in flight; an uncaught exception may leave state broken, so exit and let the
  // supervisor restart (the store makes that lossless: leases expire, work resumes).
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection'));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception; exiting');
    process.exit(1);
  });
  let service;
  try {
    service = await startService(config, log);
  } catch (err) {
    // One clear line (e.g. an unreachable MongoDB), not a stack trace.
    log.fatal(`cannot start: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    process.exit(1);
  }
  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) process.exit(1); // a second signal means now
    log.info({ signal }, 'shutting down');
    service.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
