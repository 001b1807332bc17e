/** The terminal summary of a run: one row per part, then errors, resources and scenario extras. */
import type { RunResult } from "../result";
import { fmt, table } from "./table";

export function renderSummary(result: RunResult): string {
  const out: string[] = [
    `\n${result.scenario}: ${result.target}${result.interrupted ? "  (INTERRUPTED: partial results)" : ""}`,
  ];
  out.push(
    table(
      ["part", "mode", "throughput", "P50 ms", "P95 ms", "P99 ms", "P99.9 ms", "max ms", "errors"],
      result.parts.map((part) => {
        const errors = Object.values(part.errors).reduce((a, b) => a + b, 0);
        const mode =
          part.mode === "open"
            ? `open ${fmt(part.rate, 0)}/s`
            : part.mode === "closed"
              ? `closed ×${part.concurrency}`
              : "fixed";
        const l = part.latencyMs;
        return [
          part.name,
          mode,
          `${fmt(part.throughput, 1)} ${part.unit}/s`,
          fmt(l?.p50),
          fmt(l?.p95),
          fmt(l?.p99),
          fmt(l?.p999),
          fmt(l?.max),
          String(errors),
        ];
      }),
    ),
  );
  for (const part of result.parts) {
    const details: string[] = [];
    const errors = Object.entries(part.errors);
    if (errors.length > 0) details.push(`errors: ${errors.map(([kind, n]) => `${kind} ${n}`).join(", ")}`);
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
