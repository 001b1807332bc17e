/** GET /metrics (JSON), GET /metrics/prometheus and GET /workers: aggregated across every process from Redis. */

import { Elysia, t } from "elysia";
import type Redis from "ioredis";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "../metrics/prometheus";
import { MetricsSnapshotSchema, type QueueStateKeys, readMetrics, readMetricsWithExtras } from "../metrics/snapshot";
import { listWorkers, WorkerSchema } from "../queue/worker-registry";
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

export function operationsRoutes(deps: OperationsRoutesDeps) {
  const { redis } = deps;
  return new Elysia({ name: "operations" })
    .get("/metrics", () => readOperationsMetrics(deps), {
      response: { 200: MetricsSnapshotSchema, ...errorResponses(...COMMON_ERRORS) },
      detail: { summary: "Counters, latency percentiles, queue depths, cache and Kafka figures", tags: ["operations"] },
    })
    .get(
      "/metrics/prometheus",
      async () => {
        const { snapshot, extras } = await readMetricsWithExtras(operationsReadDeps(deps));
        return new Response(await renderPrometheus(snapshot, extras, deps.prices), {
          headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
        });
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
