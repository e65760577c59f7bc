// The configuration reference is complete: every variable src/config.ts reads has a row in
// docs/configuration.md, and every row names a variable that exists (or is marked as coming).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, SETTING_NAMES } from '../src/config.js';
import { ROOT } from './helpers/service.js';

const doc = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
/** First cells of the reference's table rows: `| `NAME` | default | meaning |`. */
const rows = [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|([^\n]*)$/gm)].map((m) => ({ name: m[1]!, rest: m[2]! }));

describe('docs/configuration.md', () => {
  it('has a row for every setting src/config.ts reads', () => {
    expect(SETTING_NAMES.length).toBeGreaterThan(50);
    const documented = new Set(rows.map((r) => r.name));
    expect(SETTING_NAMES.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('documents nothing that does not exist, except settings marked as coming', () => {
    const extra = rows.filter((r) => !SETTING_NAMES.includes(r.name) && !r.rest.includes('*(coming'));
    expect(extra.map((r) => r.name)).toEqual([]);
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
  });

  it('gives the defaults src/config.ts applies', () => {
    const config = loadConfig({}) as unknown as Record<string, unknown>;
    const defaultCell = (name: string) => /^ `?([^`|]*)/.exec(rows.find((r) => r.name === name)!.rest)![1]!.trim();
    for (const name of ['PORT', 'HOST', 'DATABASE_NAME', 'JPEG_QUALITY', 'MAX_DECODE_MEMORY_MB', 'INGEST_BATCH_ROWS', 'MAX_ROWS', 'MAX_IMAGE_BYTES', 'MAX_UPLOAD_BYTES', 'EVENTS_MAX_STREAMS', 'LOG_LEVEL', 'ROLE']) {
      expect(defaultCell(name).split(' ')[0], name).toBe(String(config[name]));
    }
  });
});
