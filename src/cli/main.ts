#!/usr/bin/env node
// The package's bin: `image-csv-processor process input.csv --out output.csv [...]`, and
// `image-csv-processor keys create|list|revoke` on the server's store.
// Exit status: 0 every image done, 1 some image failed (or an unexpected error), 2 bad
// arguments, configuration or CSV, 130 interrupted.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import pino from 'pino';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../log.js';
import { packageVersion } from '../version.js';
import { parseCommand, USAGE, UsageError } from './args.js';
import { runKeys, runRequests } from './store-commands.js';
import { defaultOutDir, InputError, runBatch, summary } from './process.js';

async function main(argv: string[]): Promise<number> {
  let command;
  try {
    command = parseCommand(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`image-csv-processor: ${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (command.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command.kind === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (command.kind === 'keys' || command.kind === 'requests') {
    let config;
    try {
      config = loadConfig({ ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`image-csv-processor: ${err.message}\n`);
      return 2;
    }
    return command.kind === 'keys'
      ? runKeys(config, command, process.stdout, process.stderr)
      : runRequests(config, command, process.stdout, process.stderr);
  }

  const scratch = await mkdtemp(join(tmpdir(), 'image-csv-processor-'));
  try {
    const env: Record<string, string | undefined> = {
      ...process.env,
      // The CLI always runs on its own embedded store, in a scratch dir removed at the end.
      DATA_DIR: scratch,
      MONGODB_URI: '',
      STORAGE: 'local',
      ROLE: 'worker',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      ...(command.concurrency !== null ? { DOWNLOAD_CONCURRENCY: String(command.concurrency) } : {}),
      ...(command.threads !== null ? { WORKER_THREADS: String(command.threads) } : {}),
    };
    let config;
    try {
      config = loadConfig(env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`image-csv-processor: ${err.message}\n`);
      return 2;
    }
    // Logs go to stderr (stdout carries the summary), synchronously so nothing is lost at exit.
    const log = createLogger(config, pino.destination({ dest: 2, sync: true }));

    const interrupt = new AbortController();
    const onSignal = () => interrupt.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const outDir = command.outDir ?? defaultOutDir(command.out);
    try {
      const result = await runBatch(config, { ...command, outDir }, log, { stdout: process.stdout, stderr: process.stderr }, interrupt.signal);
      process.stdout.write(summary(result, { out: command.out, outDir }));
      return result.request.failed > 0 ? 1 : 0;
    } catch (err) {
      if (err instanceof InputError) {
        process.stderr.write(`image-csv-processor: ${err.message}\n`);
        return 2;
      }
      if (interrupt.signal.aborted) {
        process.stderr.write('\nimage-csv-processor: interrupted; no output CSV was written\n');
        return 130;
      }
      throw err;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; do not let a stray handle keep the process alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`image-csv-processor: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
