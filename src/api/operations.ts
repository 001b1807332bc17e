/** GET /metrics (JSON), GET /metrics/prometheus and GET /workers: aggregated across every process from Redis. */

import { Elysia, t } from "elysia";
import type Redis from "ioredis";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "../metrics/prometheus";
import { MetricsSnapshotSchema, type QueueStateKeys, readMetrics, readMetricsWithExtras } from "../metrics/snapshot";
import { LIMIT_REASONS } from "../queue/concurrency-controller";
import { listWorkers, type Worker, WorkerSchema } from "../queue/worker-registry";
import { COMMON_ERRORS, errorResponses } from "./error-responses";
import type { TokenPrices } from "./metrics-stream";

export interface OperationsRoutesDeps {
  redis: Redis;
  /** Queues whose depths are reported, with their keys (queue/bee-queue-layout.ts). */
  queues: readonly QueueStateKeys[];
  /** Worker processes of this node's supervisor, with their recycling counts, if it runs one. */
  supervisor?: () => { recycled: number; restarted: number };
  /** The configured LLM prices, sent to GET /metrics/stream's clients for cost estimates. */
  prices?: TokenPrices;
  /** The semantic cache's vector index, whose FT.INFO the snapshot reports (`cache.index`). */
  cacheIndex?: () => { name: string; algorithm: string; dim: number };
}

/** GET /metrics's snapshot, as the operations routes and the metrics stream read it. */
function operationsReadDeps(deps: OperationsRoutesDeps) {
  return {
    redis: deps.redis,
    queues: deps.queues,
    ...(deps.cacheIndex ? { cacheIndex: deps.cacheIndex() } : {}),
  };
}

export function readOperationsMetrics(deps: OperationsRoutesDeps) {
  return readMetrics(operationsReadDeps(deps));
}

/** GET /metrics's `jobs_in_flight`: each live worker process's limit of jobs in flight, and why. */
export const JobsInFlightSummarySchema = t.Object({
  limit: t.Integer({ description: "sum of the live worker processes' limits" }),
  in_flight: t.Integer({ description: "jobs running in the live worker processes" }),
  workers: t.Array(
    t.Object({
      id: t.String(),
      mode: t.String(),
      limit: t.Integer(),
      in_flight: t.Integer(),
      reason: t.String({
        description: "what sets the limit: rate_limit×latency, 429 backoff, event_loop, memory, max…",
      }),
    }),
  ),
});

export function jobsInFlightSummary(workers: readonly Worker[]): typeof JobsInFlightSummarySchema.static {
  const rows = workers.flatMap((w) =>
    w.jobs_in_flight
      ? [
          {
            id: w.id,
            mode: w.jobs_in_flight.mode,
            limit: w.jobs_in_flight.limit,
            in_flight: w.jobs_in_flight.in_flight,
            reason: w.jobs_in_flight.reason,
          },
        ]
      : [],
  );
  return {
    limit: rows.reduce((sum, r) => sum + r.limit, 0),
    in_flight: rows.reduce((sum, r) => sum + r.in_flight, 0),
    workers: rows,
  };
}

export function operationsRoutes(deps: OperationsRoutesDeps) {
  const { redis } = deps;
  return new Elysia({ name: "operations" })
    .get(
      "/metrics",
      async () => {
        const [snapshot, workers] = await Promise.all([readOperationsMetrics(deps), listWorkers({ redis })]);
        return { ...snapshot, jobs_in_flight: jobsInFlightSummary(workers) };
      },
      {
        response: {
          200: t.Composite([MetricsSnapshotSchema, t.Object({ jobs_in_flight: JobsInFlightSummarySchema })]),
          ...errorResponses(...COMMON_ERRORS),
        },
        detail: {
          summary: "Counters, latency percentiles, queue depths, cache and Kafka figures",
          tags: ["operations"],
        },
      },
    )
    .get(
      "/metrics/prometheus",
      async () => {
        const [{ snapshot, extras }, workers] = await Promise.all([
          readMetricsWithExtras(operationsReadDeps(deps)),
          listWorkers({ redis }),
        ]);
        return new Response(
          await renderPrometheus(snapshot, extras, deps.prices, { list: workers, reasons: LIMIT_REASONS }),
          { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } },
        );
      },
      { detail: { summary: "The same metrics in Prometheus text exposition format", tags: ["operations"] } },
    )
    .get(
      "/workers",
      async () => {
        const workers = await listWorkers({ redis });
        return { count: workers.length, workers, ...(deps.supervisor ? { supervisor: deps.supervisor() } : {}) };
      },
      {
        response: {
          200: t.Object({
            count: t.Integer(),
            workers: t.Array(WorkerSchema),
            supervisor: t.Optional(t.Object({ recycled: t.Integer(), restarted: t.Integer() })),
          }),
          ...errorResponses(...COMMON_ERRORS),
        },
        detail: { summary: "Live worker processes, from heartbeats that expire", tags: ["operations"] },
      },
    );
}
