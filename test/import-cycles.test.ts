// No import cycles, at two levels: between files, and between folders, where each src/<dir>,
// each loose file of src/, workers/, web/, scripts/ and bench/ is one node. Type-only imports
// and lazy import() count too: a cycle is a cycle for a reader, and a folder cycle means neither
// folder can be understood (or moved) without the other.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const TREES = ['src', 'workers', 'web', 'scripts', 'bench'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative imports of one module (static, re-exports, side-effect and import()), as repository paths. */
export function importsOf(file: string, text: string): string[] {
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*)['"](\.[^'"]+)['"]/gm)].map((m) => m[1]!);
  return specs.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s.replace(/\.js$/, '.ts'))).split(sep).join('/'));
}

/** The folder a file counts towards: src/<dir>, a loose src/ file itself, or its top-level folder. */
export function folderOf(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'src') return parts.length > 2 ? `src/${parts[1]}` : file;
  return parts[0]!;
}

/** Strongly connected components with more than one node, or a node importing itself (Tarjan). */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)!.includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** The folder graph of a file graph: an edge wherever a file imports a file of another folder. */
export function folderGraph(files: ReadonlyMap<string, readonly string[]>): Map<string, string[]> {
  const out = new Map<string, Set<string>>();
  for (const [file, imports] of files) {
    const from = folderOf(file);
    const edges = out.get(from) ?? out.set(from, new Set()).get(from)!;
    for (const target of imports) {
      if (!files.has(target)) continue;
      const to = folderOf(target);
      if (to !== from) edges.add(to);
    }
  }
  return new Map([...out].map(([k, v]) => [k, [...v]]));
}

const fileGraph = new Map(
  TREES.flatMap((tree) => sourceFiles(join(ROOT, tree))).map((path) => {
    const file = relative(ROOT, path).split(sep).join('/');
    return [file, importsOf(file, readFileSync(path, 'utf8'))] as const;
  }),
);

describe('the cycle finder', () => {
  it('finds made-up cycles at both levels and passes an acyclic graph', () => {
    const made = new Map([
      ['src/a/one.ts', ['src/b/two.ts']],
      ['src/b/two.ts', ['src/a/three.ts']], // no file cycle, but src/a -> src/b -> src/a
      ['src/a/three.ts', []],
      ['workers/x.ts', ['workers/y.ts']],
      ['workers/y.ts', ['workers/x.ts']], // a file cycle inside one folder
      ['src/log.ts', ['src/log.ts']], // a module importing itself
    ]);
    expect(cycles(made)).toEqual([['workers/x.ts', 'workers/y.ts'], ['src/log.ts']]);
    expect(cycles(folderGraph(made))).toEqual([['src/a', 'src/b']]);
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', []]]))).toEqual([]);
  });

  it('reads every kind of relative import and names folders as the rule counts them', () => {
    const text = "import type { A } from './a.js';\nexport { B } from '../b/b.js';\nimport './side.js';\nconst c = await import('./c.js');\nimport {\n  D,\n} from './d.js';";
    expect(importsOf('src/x/y.ts', text)).toEqual(['src/x/a.ts', 'src/b/b.ts', 'src/x/side.ts', 'src/x/c.ts', 'src/x/d.ts']);
    expect([folderOf('src/http/routes/status.ts'), folderOf('src/log.ts'), folderOf('workers/codecs/png.ts'), folderOf('web/api.ts')])
      .toEqual(['src/http', 'src/log.ts', 'workers', 'web']);
  });

  it('sees the real tree (the app imports its routes; the worker half imports the codec table)', () => {
    expect(fileGraph.get('src/http/app.ts')).toContain('src/http/routes/status.ts');
    expect(folderGraph(fileGraph).get('workers')).toContain('src/codecs');
  });
});

describe('the import graph of src, workers, web, scripts and bench', () => {
  it('has no cycle between files', () => {
    expect(cycles(fileGraph)).toEqual([]);
  });

  it('has no cycle between folders', () => {
    expect(cycles(folderGraph(fileGraph))).toEqual([]);
  });

  it('src/ imports no worker file: it reaches them only by the path a thread is started from (resolveWorkerFile)', () => {
    const intoWorkers = [...fileGraph].filter(([file, imports]) => file.startsWith('src/') && imports.some((i) => i.startsWith('workers/')));
    expect(intoWorkers.map(([file]) => file)).toEqual([]);
  });
});
