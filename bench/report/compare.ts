/**
 * `bun bench compare a.json b.json`: parts paired by name, each figure of b
 * as a ratio of a's (throughput: higher is better; latency: lower is better).
 */
import { readFileSync } from "node:fs";
import { UsageError } from "../options";
import { type PartResult, RESULT_VERSION, type RunResult } from "../result";
import { fmt, table } from "./table";

export function loadResult(path: string): RunResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new UsageError(
      `${path}: not a readable JSON file (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  const result = parsed as Partial<RunResult>;
  if (result.version !== RESULT_VERSION || !Array.isArray(result.parts)) {
    throw new UsageError(`${path}: not a \`bun bench\` result (version ${RESULT_VERSION})`);
  }
  return result as RunResult;
}

const ratio = (b: number | undefined, a: number | undefined) => (a && b !== undefined ? `${(b / a).toFixed(2)}×` : "-");

export interface Comparison {
  name: string;
  a: PartResult;
  b: PartResult;
  throughput: number | undefined;
  p50: number | undefined;
  p99: number | undefined;
}

/** b / a per part and figure; parts present in only one file are left out. */
export function compareResults(a: RunResult, b: RunResult): Comparison[] {
  const out: Comparison[] = [];
  for (const partB of b.parts) {
    const partA =
      a.parts.find((p) => p.name === partB.name) ??
      (a.parts.length === 1 && b.parts.length === 1 ? a.parts[0] : undefined);
    if (!partA) continue;
    const r = (x: number | undefined, y: number | undefined) => (x !== undefined && y ? x / y : undefined);
    out.push({
      name: partB.name === partA.name ? partB.name : `${partA.name} → ${partB.name}`,
      a: partA,
      b: partB,
      throughput: r(partB.throughput, partA.throughput),
      p50: r(partB.latencyMs?.p50, partA.latencyMs?.p50),
      p99: r(partB.latencyMs?.p99, partA.latencyMs?.p99),
    });
  }
  return out;
}

export function renderComparison(a: RunResult, b: RunResult, pathA: string, pathB: string): string {
  const rows = compareResults(a, b);
  if (rows.length === 0) return `no part of ${pathB} has a namesake in ${pathA}: nothing to compare`;
  return [
    `a: ${pathA} (${a.scenario}, ${a.startedAt})`,
    `b: ${pathB} (${b.scenario}, ${b.startedAt})`,
    table(
      ["part", "throughput a", "throughput b", "b/a", "P50 b/a", "P99 a ms", "P99 b ms", "P99 b/a"],
      rows.map((row) => {
        const { a: pa, b: pb } = row;
        return [
          row.name,
          fmt(pa.throughput, 1),
          fmt(pb.throughput, 1),
          row.throughput === undefined ? "-" : `${row.throughput.toFixed(2)}×`,
          ratio(pb.latencyMs?.p50, pa.latencyMs?.p50),
          fmt(pa.latencyMs?.p99),
          fmt(pb.latencyMs?.p99),
          ratio(pb.latencyMs?.p99, pa.latencyMs?.p99),
        ];
      }),
    ),
    "throughput b/a > 1: b is faster; latency b/a < 1: b is faster",
  ].join("\n");
}
