// What a newcomer sees at start-up: one JSON record whose msg says where the dashboard, the API
// docs and the OpenAPI document are (a real process, stdout a pipe as under a log collector).
import { afterAll, describe, expect, it } from 'vitest';
import { spawnService, tempDir, type ChildService } from './helpers/service.js';
import { whereToGo } from '../src/service.js';

let child: ChildService | undefined;
afterAll(async () => child?.stop());

describe('start-up', () => {
  it('logs one JSON record naming the dashboard, /docs and /openapi.json, each reachable', async () => {
    child = await spawnService({ LOG_LEVEL: 'info', HOST: '127.0.0.1', API_KEY: 'k'.repeat(32) }, tempDir());
    const port = new URL(child.base).port;
    await expect.poll(() => child!.output()).toContain('listening');
    const records = child.output().trim().split('\n').map((line) => JSON.parse(line) as { msg: string; level: number });
    const named = records.filter((r) => r.msg.includes('/openapi.json'));
    expect(named).toHaveLength(1);
    const urls = [`http://localhost:${port}/`, `http://localhost:${port}/docs`, `http://localhost:${port}/openapi.json`];
    for (const url of urls) expect(named[0]!.msg).toContain(`${url} `);
    for (const url of urls) expect((await fetch(url.replace('localhost', '127.0.0.1'))).status, url).toBe(200);
  });

  it('names the address a specific HOST is reached at, and says what a worker serves', () => {
    expect(whereToGo({ HOST: '0.0.0.0', ROLE: 'all' }, 8000)).toContain('open http://localhost:8000/ (dashboard)');
    expect(whereToGo({ HOST: '::', ROLE: 'api' }, 8000)).toContain('http://localhost:8000/docs (API docs)');
    expect(whereToGo({ HOST: '192.0.2.7', ROLE: 'all' }, 81)).toContain('http://192.0.2.7:81/openapi.json');
    expect(whereToGo({ HOST: 'fd00::7', ROLE: 'all' }, 81)).toContain('http://[fd00::7]:81/');
    expect(whereToGo({ HOST: '0.0.0.0', ROLE: 'worker' }, 8000)).toBe('worker listening on http://localhost:8000 (/healthz, /readyz and /metrics only)');
  });
});
