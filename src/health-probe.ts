/**
 * Health probes: each names a dependency, says whether the process needs it
 * (a required probe that fails makes /health answer 503) and checks it with a
 * real request under a timeout.
 */
import { errorMessage } from "./errors";
import { withTimeout } from "./util/timeout";

export interface ProbeResult {
  ok: boolean;
  latency_ms: number;
  error?: string;
  /** What the probe learned besides ok/not ok (a version, whether vector search exists). */
  info?: Record<string, unknown>;
}

export interface HealthProbe {
  readonly name: string;
  /** When true, a failure makes the whole process unhealthy (503). */
  readonly required: boolean;
  check(): Promise<Record<string, unknown> | undefined>;
}

export interface HealthReport {
  status: "ok" | "unavailable";
  checks: Record<string, ProbeResult & { required: boolean }>;
}

export async function runProbes(probes: readonly HealthProbe[], timeoutMs = 2000): Promise<HealthReport> {
  const entries = await Promise.all(
    probes.map(async (probe) => {
      const started = performance.now();
      try {
        const info = await withTimeout(probe.check(), timeoutMs, `${probe.name} health check`);
        const latency_ms = Math.round((performance.now() - started) * 100) / 100;
        return [probe.name, { ok: true, required: probe.required, latency_ms, ...(info ? { info } : {}) }] as const;
      } catch (error) {
        const latency_ms = Math.round((performance.now() - started) * 100) / 100;
        return [probe.name, { ok: false, required: probe.required, latency_ms, error: errorMessage(error) }] as const;
      }
    }),
  );
  const checks = Object.fromEntries(entries);
  const healthy = entries.every(([, result]) => result.ok || !result.required);
  return { status: healthy ? "ok" : "unavailable", checks };
}
