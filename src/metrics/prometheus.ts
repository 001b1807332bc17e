/** GET /metrics/prometheus: the snapshot in Prometheus text exposition, with per-queue depth for autoscalers (KEDA, HPA). */
import { Counter, Gauge, Registry } from "prom-client";
import { type MetricsSnapshot, QUEUE_STATES } from "./snapshot";

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** Prometheus text exposition of a snapshot; a registry of its own per call, so nothing global accumulates. */
export async function renderPrometheus(snapshot: MetricsSnapshot): Promise<string> {
  const registry = new Registry();
  const registers = [registry];
  const counters: [string, string, number][] = [
    ["aies_tasks_accepted_total", "Tasks accepted from the API and Kafka", snapshot.total_tasks],
    ["aies_tasks_completed_total", "Tasks that succeeded", snapshot.completed_tasks],
    ["aies_tasks_failed_total", "Tasks that failed for good", snapshot.failed_tasks],
    ["aies_tasks_retried_total", "Attempts that failed and were retried", snapshot.retried_tasks],
    ["aies_llm_calls_total", "Successful LLM chat calls", snapshot.llm.calls],
    ["aies_llm_errors_total", "Failed LLM chat calls", snapshot.llm.errors],
    ["aies_cache_hits_total", "Tasks answered from the semantic cache", snapshot.cache.hits],
    ["aies_cache_misses_total", "Tasks that needed the LLM", snapshot.cache.misses],
    [
      "aies_cache_guard_refusals_total",
      "Semantic hits refused: numbers or negation differ",
      snapshot.cache.guard_refusals,
    ],
    ["aies_cache_errors_total", "Cache failures that sent a task to the LLM", snapshot.cache.errors],
    ["aies_embedding_calls_total", "Embeddings calls", snapshot.cache.embedding_calls],
    ["aies_embedding_inputs_total", "Texts embedded", snapshot.cache.embedding_inputs],
    ["aies_webhook_attempts_total", "Webhook delivery attempts", snapshot.webhooks.attempts],
    ["aies_webhooks_delivered_total", "Webhooks a receiver took (2xx)", snapshot.webhooks.delivered],
    ["aies_webhooks_failed_total", "Webhooks given up after their last attempt", snapshot.webhooks.failed],
    ["aies_kafka_events_consumed_total", "Kafka events consumed", snapshot.kafka.events_consumed],
    ["aies_kafka_events_dead_lettered_total", "Kafka events sent to the DLQ", snapshot.kafka.dead_lettered],
    [
      "aies_kafka_events_skipped_total",
      "Kafka events neither enqueued nor dead-lettered",
      snapshot.kafka.events_skipped,
    ],
    ["aies_kafka_consumer_restarts_total", "Kafka consumer threads restarted", snapshot.kafka.consumer_restarts],
    ["aies_kafka_events_duplicate_total", "Redelivered Kafka events not enqueued again", snapshot.kafka.duplicates],
    [
      "aies_kafka_results_published_total",
      "Outcomes (results and final failures) produced to the results topic",
      snapshot.kafka.results_published,
    ],
    [
      "aies_kafka_results_failures_published_total",
      "Final failures produced to the results topic",
      snapshot.kafka.results_failures_published,
    ],
    [
      "aies_kafka_results_unpublished_total",
      "Outcomes whose produce failed with no retry of their job left (not on the results topic)",
      snapshot.kafka.results_unpublished,
    ],
    [
      "aies_kafka_results_republished_total",
      "Results a re-run produced again (possible duplicates on the results topic)",
      snapshot.kafka.results_republished,
    ],
  ];
  for (const [name, help, value] of counters) new Counter({ name, help, registers }).inc(value);
  const gauges: [string, string, number][] = [
    ["aies_tasks_active", "Tasks being processed", snapshot.active_tasks],
    ["aies_tasks_per_second", "Tasks ended per second over the last 10 s", snapshot.tasks_per_second],
    ["aies_uptime_seconds", "Seconds since the answering process started", snapshot.uptime],
    ["aies_cache_hit_ratio", "Cache hits / lookups (bypasses excluded)", snapshot.cache.hit_rate],
    [
      "aies_cache_cost_saved_usd",
      "Estimated LLM cost saved by the cache, net of embeddings",
      snapshot.cache.estimated_cost_saved_usd,
    ],
  ];
  for (const [name, help, value] of gauges) new Gauge({ name, help, registers }).set(value);

  const tokens = new Counter({ name: "aies_llm_tokens_total", help: "LLM tokens", labelNames: ["kind"], registers });
  tokens.inc({ kind: "prompt" }, snapshot.llm.prompt_tokens);
  tokens.inc({ kind: "completion" }, snapshot.llm.completion_tokens);
  const depth = new Gauge({
    name: "aies_queue_depth",
    help: "Jobs per queue and state; the figure an autoscaler (KEDA) reads",
    labelNames: ["queue", "state"],
    registers,
  });
  for (const [queue, depths] of Object.entries(snapshot.queues)) {
    for (const state of QUEUE_STATES) depth.set({ queue, state }, depths[state]);
  }
  const lag = new Gauge({
    name: "aies_kafka_consumer_lag",
    help: "Messages after the committed offset, per partition",
    labelNames: ["partition"],
    registers,
  });
  for (const [partition, entry] of Object.entries(snapshot.kafka.lag)) lag.set({ partition }, entry.lag);
  const latency = new Gauge({
    name: "aies_task_latency_ms",
    help: "Accepted → result latency quantiles in ms, since the metrics began",
    labelNames: ["quantile"],
    registers,
  });
  latency.set({ quantile: "0.5" }, snapshot.latency_ms.p50);
  latency.set({ quantile: "0.95" }, snapshot.latency_ms.p95);
  latency.set({ quantile: "0.99" }, snapshot.latency_ms.p99);
  return registry.metrics();
}
