// Where a worker thread's JavaScript is (workers/<name>), for each way the caller can be running:
// - built, dist/src/... (node dist/..., or Bun/Deno on the build): dist/workers/<name>.js;
// - TypeScript sources on Bun or Deno, which load TypeScript in worker threads: workers/<name>.ts;
// - TypeScript sources on Node (vitest, tsx): Node 20 worker threads cannot load .ts, so the
//   built dist/workers/<name>.js (from `npm run build`) is used.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type WorkerName = 'compress' | 'download';

export function resolveWorkerFile(name: WorkerName): string {
  const here = fileURLToPath(import.meta.url);
  const root = resolve(dirname(here), '..', '..'); // the project root, or dist/ when built
  if (here.endsWith('.js')) return join(root, 'workers', `${name}.js`);
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined || g.Deno !== undefined) return join(root, 'workers', `${name}.ts`);
  const built = join(root, 'dist', 'workers', `${name}.js`);
  if (!existsSync(built)) throw new Error(`${name} worker not built: ${built} is missing (run "npm run build")`);
  return built;
}
