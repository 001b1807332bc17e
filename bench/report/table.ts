/** Plain-text tables with aligned columns, for the terminal summary and `compare`. */

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export const fmt = (n: number | undefined, digits = 2): string =>
  n === undefined ? "-" : n >= 1000 ? Math.round(n).toLocaleString("en-US") : n.toFixed(digits);
