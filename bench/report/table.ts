/** Plain-text tables with aligned columns, for the terminal summary and `compare`; the summary row of a part. */
import type { PartResult } from "../result";

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export const fmt = (n: number | undefined, digits = 2): string =>
  n === undefined ? "-" : n >= 1000 ? Math.round(n).toLocaleString("en-US") : n.toFixed(digits);

/** The columns of a part's summary row, shared by the terminal summary and the HTML report. */
export const PART_COLUMNS = [
  "part",
  "mode",
  "throughput",
  "P50 ms",
  "P95 ms",
  "P99 ms",
  "P99.9 ms",
  "max ms",
  "errors",
];

/** A part's summary row, in PART_COLUMNS order; errors as given (a count, or the kinds). */
export function partCells(part: PartResult, errors: string): string[] {
  const l = part.latencyMs;
  const mode =
    part.mode === "open"
      ? `open ${fmt(part.rate, 0)}/s`
      : part.mode === "closed"
        ? `closed ×${part.concurrency}`
        : "fixed";
  return [
    part.name,
    mode,
    `${fmt(part.throughput, 1)} ${part.unit}/s`,
    fmt(l?.p50),
    fmt(l?.p95),
    fmt(l?.p99),
    fmt(l?.p999),
    fmt(l?.max),
    errors,
  ];
}

/** A part's errors by kind ("connect 3, status_503 1"), empty when there were none. */
export const errorKinds = (part: PartResult): string =>
  Object.entries(part.errors)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(", ");
