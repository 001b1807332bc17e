/** The terminal summary of a run: one row per part, then errors, resources and scenario extras. */
import { renderCacheQualityText } from "../cache-quality/report";
import { renderConsoleText } from "../console/report";
import type { RunResult } from "../result";
import { errorKinds, fmt, PART_COLUMNS, partCells, table } from "./table";

export function renderSummary(result: RunResult): string {
  const out: string[] = [
    `\n${result.scenario}: ${result.target}${result.interrupted ? "  (INTERRUPTED: partial results)" : ""}`,
  ];
  out.push(
    table(
      PART_COLUMNS,
      result.parts.map((part) => partCells(part, String(Object.values(part.errors).reduce((a, b) => a + b, 0)))),
    ),
  );
  for (const part of result.parts) {
    const details: string[] = [];
    const errors = errorKinds(part);
    if (errors) details.push(`errors: ${errors}`);
    if (part.serviceMs && part.serviceMs.count > 0 && part.mode === "open")
      details.push(
        `service time (from the real send) P99 ${fmt(part.serviceMs.p99)} ms; generator send lag P99 ${fmt(part.sendLagMs?.p99)} ms`,
      );
    const { generator, target } = part.resources;
    if (generator)
      details.push(
        `generator CPU ${generator.cpuPercent} % (peak ${generator.peakCpuPercent}), RSS ${generator.peakRssMiB} MiB`,
      );
    if (target)
      details.push(
        `target CPU ${target.cpuPercent} % (peak ${target.peakCpuPercent}) over ${target.processes} processes, RSS ${target.peakRssMiB} MiB`,
      );
    if (part.extra)
      details.push(
        Object.entries(part.extra)
          .map(([k, v]) => `${k} ${v}`)
          .join(", "),
      );
    if (details.length > 0) out.push(`  ${part.name}:\n    ${details.join("\n    ")}`);
  }
  if (result.cacheQuality) out.push(renderCacheQualityText(result.cacheQuality));
  if (result.console) out.push(renderConsoleText(result.console));
  if (result.step) {
    out.push(
      `highest rate held with P99 ≤ ${result.step.p99TargetMs} ms: ${result.step.highestHeld === undefined ? "none" : `${fmt(result.step.highestHeld, 0)}/s`}`,
    );
  }
  out.push(
    `latencies: ${result.parts.some((p) => p.mode === "closed") ? "closed loop from the real send time; " : ""}open loop from the intended send time (coordinated omission corrected)`,
  );
  return out.join("\n");
}
