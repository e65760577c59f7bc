// `image-csv-processor keys create|list|revoke`: API keys on the configured store (the one the
// server uses), for bootstrapping tenants without the HTTP API.
import type { Writable } from 'node:stream';
import type { Config } from '../config.js';
import { createApiKey, keyView } from '../auth/api-keys.js';
import { openStore } from '../store/open.js';
import type { Command } from './args.js';

type KeysCommand = Extract<Command, { kind: 'keys' }>;

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
