// The figures every section produces, the table printed at the end and bench/results.json.

export interface Figure {
  /** stable key, e.g. "codec.jpeg.throughput_ratio" */
  id: string;
  label: string;
  value: number | null;
  unit: string;
  /** human-readable target, '' for figures reported without one */
  target: string;
  /** null when the figure has no target (reported for information) */
  met: boolean | null;
  note?: string;
}

export function figure(id: string, label: string, value: number | null, unit: string, target = '', met: boolean | null = null, note?: string): Figure {
  return { id, label, value, unit, target, met, ...(note ? { note } : {}) };
}

function fmtValue(f: Figure): string {
  if (f.value === null || !Number.isFinite(f.value)) return 'n/a';
  const v = f.value;
  const s = Math.abs(v) >= 1000 ? Math.round(v).toString() : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
  return f.unit ? `${s} ${f.unit}` : s;
}

const metText = (m: boolean | null) => (m === null ? '' : m ? 'met' : 'MISSED');

export function table(figures: Figure[]): string {
  const rows = figures.map((f) => [f.label, fmtValue(f), f.target, metText(f.met)]);
  const head = ['figure', 'value', 'target', 'met?'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

export function markdownTable(figures: Figure[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| figure | value | target | met? |',
    '|---|---|---|---|',
    ...figures.map((f) => `| ${esc(f.label)} | ${esc(fmtValue(f))} | ${esc(f.target)} | ${metText(f.met)} |`),
  ].join('\n');
}
