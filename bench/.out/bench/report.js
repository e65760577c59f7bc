function figure(id, label, value, unit, target = "", met = null, note) {
  return { id, label, value, unit, target, met, ...note ? { note } : {} };
}
function fmtValue(f) {
  if (f.value === null || !Number.isFinite(f.value)) return "n/a";
  const v = f.value;
  const s = Math.abs(v) >= 1e3 ? Math.round(v).toString() : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3).replace(/0+$/, "").replace(/\.$/, "");
  return f.unit ? `${s} ${f.unit}` : s;
}
const metText = (m) => m === null ? "" : m ? "met" : "MISSED";
function table(figures) {
  const rows = figures.map((f) => [f.label, fmtValue(f), f.target, metText(f.met)]);
  const head = ["figure", "value", "target", "met?"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd();
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n");
}
function markdownTable(figures) {
  const esc = (s) => s.replace(/\|/g, "\\|");
  return [
    "| figure | value | target | met? |",
    "|---|---|---|---|",
    ...figures.map((f) => `| ${esc(f.label)} | ${esc(fmtValue(f))} | ${esc(f.target)} | ${metText(f.met)} |`)
  ].join("\n");
}
export {
  figure,
  markdownTable,
  table
};
//# sourceMappingURL=report.js.map
