// `image-csv-processor keys create|list|revoke` and `requests cancel|retry|delete`: on the
// configured store (the one the server uses), without the HTTP API.
import type { Writable } from 'node:stream';
import type { Config } from '../config.js';
import { createApiKey, keyView } from '../auth/api-keys.js';
import { AppError } from '../errors.js';
import { RequestActions } from '../operations/request-actions.js';
import { openStore } from '../store/open.js';
import type { Command } from './args.js';

type KeysCommand = Extract<Command, { kind: 'keys' }>;
type RequestsCommand = Extract<Command, { kind: 'requests' }>;

/**
 * Runs one requests command; returns the exit status (1: unknown or not possible now). Outputs of
 * a deleted request are removed by the server's periodic storage sweep once unreferenced.
 */
export async function runRequests(config: Config, command: RequestsCommand, out: Writable, err: Writable): Promise<number> {
  const store = await openStore(config);
  try {
    const actions = new RequestActions({ store });
    if (command.action === 'cancel') await actions.cancel(command.id);
    else if (command.action === 'retry') out.write(`retrying ${await actions.retry(command.id)} failed image(s)\n`);
    else await actions.delete(command.id);
    out.write(`${command.action === 'delete' ? 'deleted' : command.action === 'cancel' ? 'cancelled' : 'queued'} ${command.id}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof AppError)) throw e;
    err.write(`image-csv-processor: ${e.detail}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

/** Runs one keys command; returns the exit status. */
export async function runKeys(config: Config, command: KeysCommand, out: Writable, err: Writable): Promise<number> {
  const store = await openStore(config);
  try {
    switch (command.action) {
      case 'create': {
        const { record, key } = await createApiKey(store, command.name);
        out.write(`created ${record.id} (${record.name})\nthe key is shown this once:\n${key}\n`);
        return 0;
      }
      case 'list': {
        for (const k of (await store.listKeys()).map(keyView)) out.write(`${k.id}\t${k.name}\t${k.created_at}\n`);
        return 0;
      }
      case 'revoke': {
        if (await store.revokeKey(command.id, Date.now())) {
          out.write(`revoked ${command.id}\n`);
          return 0;
        }
        err.write(`image-csv-processor: no live API key with id ${command.id}\n`);
        return 1;
      }
    }
  } finally {
    await store.close();
  }
}
