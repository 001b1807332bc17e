/**
 * Health probes: each names a dependency, says whether the process needs it
 * (a required probe that fails makes /health answer 503) and checks it with a
 * real request under a timeout. A probe that works but not fully (a consumer
 * thread in a restart loop) says why in `degraded`: /health then answers
 * `degraded`, still 200, for monitoring rather than for a load balancer.
 */
import { errorMessage } from "./errors";
import { withTimeout } from "./util/timeout";

export interface ProbeResult {
  ok: boolean;
  latency_ms: number;
  error?: string;
  /** Why the dependency works but not fully (down is ok: false). */
  degraded?: string;
  /** What the probe learned besides ok/not ok (a version, whether vector search exists). */
  info?: Record<string, unknown>;
}

export interface HealthProbe {
  readonly name: string;
  /** When true, a failure makes the whole process unhealthy (503). */
  readonly required: boolean;
  check(): Promise<ProbeInfo | undefined>;
}

/** What a check learned; `degraded`, when set, says why the dependency works but not fully. */
export type ProbeInfo = Record<string, unknown> & { degraded?: string };

export interface HealthReport {
  status: "ok" | "degraded" | "unavailable";
  checks: Record<string, ProbeResult & { required: boolean }>;
}

export async function runProbes(probes: readonly HealthProbe[], timeoutMs = 2000): Promise<HealthReport> {
  const entries = await Promise.all(
    probes.map(async (probe) => {
      const started = performance.now();
      try {
        const checked = await withTimeout(probe.check(), timeoutMs, `${probe.name} health check`);
        const latency_ms = Math.round((performance.now() - started) * 100) / 100;
        const { degraded, ...info } = checked ?? {};
        const result: ProbeResult & { required: boolean } = { ok: true, required: probe.required, latency_ms };
        if (degraded) result.degraded = degraded;
        if (checked) result.info = info;
        return [probe.name, result] as const;
      } catch (error) {
        const latency_ms = Math.round((performance.now() - started) * 100) / 100;
        const result: ProbeResult & { required: boolean } = {
          ok: false,
          required: probe.required,
          latency_ms,
          error: errorMessage(error),
        };
        return [probe.name, result] as const;
      }
    }),
  );
  const checks: HealthReport["checks"] = Object.fromEntries(entries);
  const healthy = entries.every(([, result]) => result.ok || !result.required);
  const degraded = entries.some(([, result]) => result.degraded !== undefined);
  return { status: healthy ? (degraded ? "degraded" : "ok") : "unavailable", checks };
}
