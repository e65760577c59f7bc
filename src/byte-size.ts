// Image byte sizes are shown in decimal units (kB = 1000 B, MB = 1000 kB), the same in the
// dashboard, the CLI and the docs; memory settings keep their binary MiB, as their names say.

/** "999 B", "1.5 kB", "12 MB". */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 999.5 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
