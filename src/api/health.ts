/**
 * GET /health: 200 when every required dependency answers (`degraded` when
 * one works but not fully, e.g. a consumer thread in a restart loop), else
 * 503; vector search is reported, not required. Anyone may ask (an
 * orchestrator's probe has no key), but with API keys configured only an
 * admin key sees the checks (topics, lag, index names) and roles: others get
 * the status alone.
 */
import { Elysia, t } from "elysia";
import { type HealthProbe, runProbes } from "../health-probe";
import { APP_VERSION } from "../version";

const ProbeSchema = t.Object({
  ok: t.Boolean(),
  required: t.Boolean(),
  latency_ms: t.Number(),
  error: t.Optional(t.String()),
  degraded: t.Optional(t.String({ description: "why the dependency works but not fully" })),
  info: t.Optional(t.Record(t.String(), t.Unknown())),
});

export const HealthSchema = t.Object({
  status: t.Union([t.Literal("ok"), t.Literal("degraded"), t.Literal("unavailable")]),
  version: t.String(),
  uptime: t.Optional(t.Number({ description: "seconds since the process started" })),
  roles: t.Optional(t.Array(t.String())),
  checks: t.Optional(
    t.Record(t.String(), ProbeSchema, { description: "each dependency; with API keys, shown to an admin key only" }),
  ),
});

export function healthRoutes(deps: {
  probes: readonly HealthProbe[];
  roles: readonly string[];
  startedAt: number;
  /** Whether a request may see the checks; absent: everyone may (no API keys). */
  maySeeDetail?: (request: Request) => boolean;
}) {
  return new Elysia({ name: "health" }).get(
    "/health",
    async ({ set, request }) => {
      const report = await runProbes(deps.probes);
      set.status = report.status === "unavailable" ? 503 : 200;
      if (deps.maySeeDetail && !deps.maySeeDetail(request)) return { status: report.status, version: APP_VERSION };
      return {
        status: report.status,
        version: APP_VERSION,
        uptime: Math.round((Date.now() - deps.startedAt) / 1000),
        roles: [...deps.roles],
        checks: report.checks,
      };
    },
    {
      response: { 200: HealthSchema, 503: HealthSchema },
      detail: { summary: "Liveness and readiness of this process and its dependencies", tags: ["operations"] },
    },
  );
}
