// node dist/bench/diag/summarize-profile.js FILE.cpuprofile [TOP]: self time by function and by
// file (node_modules package or project file), from a V8 CPU profile (--cpu-prof).
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export function summarize(file: string, top = 25): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fn = new Map<string, number>();
  const where = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const url = n.callFrame.url;
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    // glue loaded from a data: URL (workers/codecs/wasm.ts, importGlue) would print as its whole source
    const place = pkg ? `pkg:${pkg}` : url.startsWith('data:') ? 'data: (codec glue)' : url ? url.replace(/^file:\/\/.*?\/(dist|bench\/\.out)\//, '') : n.callFrame.functionName || '(native)';
    const name = `${n.callFrame.functionName || '(anonymous)'} ${place}${url ? ':' + n.callFrame.lineNumber : ''}`;
    fn.set(name, (fn.get(name) ?? 0) + us);
    where.set(place, (where.get(place) ?? 0) + us);
  }
  const fmt = (m: Map<string, number>) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`).join('\n');
  return `${file}: ${(total / 1000).toFixed(0)} ms sampled over ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms\n-- by file/package --\n${fmt(where)}\n-- by function --\n${fmt(fn)}`;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [file, top] = process.argv.slice(2);
  if (!file) throw new Error('usage: summarize-profile FILE.cpuprofile [TOP]');
  console.log(summarize(file, Number(top ?? 25)));
}
