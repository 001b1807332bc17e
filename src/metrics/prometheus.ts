/**
 * GET /metrics/prometheus: the snapshot in Prometheus text exposition, with
 * per-queue depth for autoscalers (KEDA, HPA).
 *
 * Names follow Prometheus's conventions (issue 16): base units in the name
 * (`_seconds`), `_total` on counters, and durations as histograms whose
 * `_bucket` series an aggregator can merge and take any quantile of over any
 * window, not quantile gauges fixed at export. The names these replaced are
 * still emitted for one release, their HELP saying DEPRECATED and what to use
 * (DEPRECATED_METRICS, and the README's "Metric names").
 */
import { Counter, Gauge, Registry } from "prom-client";
import { type CumulativeBuckets, cumulativeBuckets } from "./histogram";
import type { HistogramName } from "./keys";
import { type MetricsExtras, type MetricsSnapshot, QUEUE_STATES } from "./snapshot";

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** Old name → what replaces it. Emitted until the release after the one that renamed them. */
export const DEPRECATED_METRICS = {
  aies_task_latency_ms: "aies_task_latency_seconds (a histogram: histogram_quantile over its _bucket rate)",
  aies_kafka_consumer_lag:
    'aies_kafka_consumer_lag_messages{topic,partition} (partition is no longer "topic:partition")',
} as const;

const deprecated = (name: keyof typeof DEPRECATED_METRICS, help: string) =>
  `DEPRECATED, removed in the next release: use ${DEPRECATED_METRICS[name]}. ${help}`;

/**
 * Upper bounds in seconds, shared by every duration: a cache hit takes about
 * 1 ms, an LLM call 0.1-30 s, and one set of bounds lets panels compare them.
 */
export const DURATION_BOUNDS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
] as const;

const HISTOGRAM_NAMES: Record<HistogramName, [name: string, help: string]> = {
  latency: ["aies_task_latency_seconds", "Accepted → result latency of tasks that succeeded"],
  processing: ["aies_task_processing_seconds", "Time a worker spent on a task that succeeded"],
  llm: ["aies_llm_request_duration_seconds", "LLM chat calls, successful or not"],
  cache_lookup: ["aies_cache_lookup_duration_seconds", "Semantic cache lookups (bypasses excluded)"],
};

/** What the exporter reads of a worker's heartbeat (queue/worker-registry.ts's Worker has it). */
export interface WorkerJobsInFlight {
  id: string;
  jobs_in_flight?: { limit: number; in_flight: number; reason: string; throttled: number; event_loop_delay_ms: number };
}

/** USD per million tokens, as configured (LLM_PRICE_*_PER_MTOK). */
export interface LlmPrices {
  input: number;
  output: number;
}

/** Prometheus text exposition of a snapshot; a registry of its own per call, so nothing global accumulates. */
export async function renderPrometheus(
  snapshot: MetricsSnapshot,
  extras?: MetricsExtras,
  prices?: LlmPrices,
  workers?: { list: readonly WorkerJobsInFlight[]; reasons: readonly string[] },
): Promise<string> {
  const registry = new Registry();
  const registers = [registry];
  const { cache, kafka, llm } = snapshot;
  const counters: [string, string, number][] = [
    ["aies_tasks_accepted_total", "Tasks accepted from the API and Kafka", snapshot.total_tasks],
    ["aies_tasks_started_total", "Attempts started, retries included", snapshot.started_tasks],
    ["aies_tasks_completed_total", "Tasks that succeeded", snapshot.completed_tasks],
    ["aies_tasks_failed_total", "Tasks that failed for good", snapshot.failed_tasks],
    ["aies_tasks_retried_total", "Attempts that failed and were retried", snapshot.retried_tasks],
    ["aies_llm_calls_total", "Successful LLM chat calls", llm.calls],
    ["aies_llm_errors_total", "Failed LLM chat calls", llm.errors],
    ["aies_llm_rate_limited_waits_total", "LLM calls that waited for the rate limiter", llm.rate_limited_waits],
    [
      "aies_llm_rate_limited_wait_seconds_total",
      "Time LLM calls spent waiting for the rate limiter",
      llm.rate_limited_wait_ms / 1000,
    ],
    ["aies_cache_hits_total", "Tasks answered from the semantic cache", cache.hits],
    ["aies_cache_misses_total", "Tasks that needed the LLM", cache.misses],
    ["aies_cache_guard_refusals_total", "Semantic hits refused: numbers or negation differ", cache.guard_refusals],
    ["aies_cache_errors_total", "Cache failures that sent a task to the LLM", cache.errors],
    ["aies_cache_tokens_saved_total", "LLM tokens of the answers served from the cache", cache.tokens_saved],
    ["aies_cache_saved_usd_total", "Estimated LLM cost of the answers served from the cache", cache.saved_usd],
    ["aies_embedding_calls_total", "Embeddings calls", cache.embedding_calls],
    ["aies_embedding_inputs_total", "Texts embedded", cache.embedding_inputs],
    ["aies_embedding_cost_usd_total", "Estimated cost of the embeddings calls", cache.embedding_cost_usd],
    ["aies_webhook_attempts_total", "Webhook delivery attempts", snapshot.webhooks.attempts],
    ["aies_webhooks_delivered_total", "Webhooks a receiver took (2xx)", snapshot.webhooks.delivered],
    ["aies_webhooks_failed_total", "Webhooks given up after their last attempt", snapshot.webhooks.failed],
    ["aies_kafka_events_consumed_total", "Kafka events consumed", kafka.events_consumed],
    ["aies_kafka_events_enqueued_total", "Kafka events that became a job", kafka.events_enqueued],
    ["aies_kafka_events_dead_lettered_total", "Kafka events sent to the DLQ", kafka.dead_lettered],
    ["aies_kafka_events_skipped_total", "Kafka events neither enqueued nor dead-lettered", kafka.events_skipped],
    ["aies_kafka_consumer_restarts_total", "Kafka consumer threads restarted", kafka.consumer_restarts],
    ["aies_kafka_events_duplicate_total", "Redelivered Kafka events not enqueued again", kafka.duplicates],
    [
      "aies_kafka_results_published_total",
      "Outcomes (results and final failures) produced to the results topic",
      kafka.results_published,
    ],
    [
      "aies_kafka_results_failures_published_total",
      "Final failures produced to the results topic",
      kafka.results_failures_published,
    ],
    [
      "aies_kafka_results_unpublished_total",
      "Outcomes whose produce failed with no retry of their job left (not on the results topic)",
      kafka.results_unpublished,
    ],
    [
      "aies_kafka_results_republished_total",
      "Results a re-run produced again (possible duplicates on the results topic)",
      kafka.results_republished,
    ],
  ];
  if (prices) {
    const cost = (llm.prompt_tokens * prices.input + llm.completion_tokens * prices.output) / 1e6;
    counters.push(["aies_llm_cost_usd_total", "Estimated LLM cost at LLM_PRICE_*_PER_MTOK", cost]);
  }
  for (const [name, help, value] of counters) new Counter({ name, help, registers }).inc(value);
  const gauges: [string, string, number][] = [
    ["aies_tasks_active", "Tasks being processed", snapshot.active_tasks],
    ["aies_tasks_per_second", "Tasks ended per second over the last 10 s", snapshot.tasks_per_second],
    ["aies_uptime_seconds", "Seconds since the answering process started", snapshot.uptime],
    ["aies_cache_hit_ratio", "Cache hits / lookups (bypasses excluded), since the metrics began", cache.hit_rate],
    [
      "aies_cache_cost_saved_usd",
      "Estimated LLM cost saved by the cache, net of embeddings",
      cache.estimated_cost_saved_usd,
    ],
  ];
  for (const [name, help, value] of gauges) new Gauge({ name, help, registers }).set(value);

  const labelled = <L extends string>(name: string, help: string, label: L, entries: [string, number][]) => {
    const counter = new Counter({ name, help, labelNames: [label], registers });
    for (const [value, n] of entries) counter.inc({ [label]: value } as Record<L, string>, n);
  };
  labelled("aies_llm_tokens_total", "LLM tokens", "kind", [
    ["prompt", llm.prompt_tokens],
    ["completion", llm.completion_tokens],
  ]);
  labelled("aies_cache_lookups_total", "Cache lookups by result (miss includes cache errors)", "result", [
    ["exact", cache.exact_hits],
    ["semantic", cache.semantic_hits],
    ["single_flight", cache.single_flight_hits],
    ["miss", cache.misses],
    ["bypass", cache.bypassed],
  ]);
  labelled(
    "aies_cache_refusals_total",
    "Semantic hits the false-hit guard refused, by reason",
    "reason",
    Object.entries(cache.guard_refusals_by_reason),
  );
  labelled(
    "aies_queue_accepted_total",
    "Tasks accepted into each queue",
    "queue",
    Object.entries(snapshot.queues).map(([queue, depths]) => [queue, depths.accepted]),
  );

  // Issue 17: cost and calls per tenant, provider, model and task type; fallbacks; circuit breakers.
  const byLabels = ["tenant", "provider", "model", "task_type"] as const;
  const cost = new Counter({
    name: "aies_llm_task_cost_usd_total",
    help: "LLM cost at the price table (per model; LLM_PRICES_FILE), by tenant, provider, model and task type",
    labelNames: byLabels,
    registers,
  });
  const calls = new Counter({
    name: "aies_llm_model_calls_total",
    help: "LLM chat calls by tenant, provider, model, task type and outcome (ok, error, fallback: a fallback answered)",
    labelNames: [...byLabels, "outcome"],
    registers,
  });
  for (const entry of snapshot.llm_costs.by) {
    const labels = { tenant: entry.tenant, provider: entry.provider, model: entry.model, task_type: entry.task_type };
    cost.inc(labels, entry.cost_usd);
    calls.inc({ ...labels, outcome: "ok" }, entry.calls - entry.fallback_answers);
    calls.inc({ ...labels, outcome: "fallback" }, entry.fallback_answers);
    calls.inc({ ...labels, outcome: "error" }, entry.errors);
  }
  const fallbacks = new Counter({
    name: "aies_llm_fallbacks_total",
    help: "Times a model failed and the next model of its fallback chain was asked",
    labelNames: ["from", "to"],
    registers,
  });
  for (const pair of snapshot.llm_routing.fallback_pairs) fallbacks.inc({ from: pair.from, to: pair.to }, pair.count);
  const breakers = new Counter({
    name: "aies_llm_breaker_events_total",
    help: "Circuit breaker events per provider/model: opened, reopened (a probe failed), closed, skipped (a call while open)",
    labelNames: ["model", "event"],
    registers,
  });
  for (const entry of snapshot.llm_routing.breakers) {
    for (const event of ["opened", "reopened", "closed", "skipped"] as const)
      breakers.inc({ model: entry.model, event }, entry[event]);
  }

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
    name: "aies_kafka_consumer_lag_messages",
    help: "Messages after the committed offset, per topic and partition, as a consumer thread last reported",
    labelNames: ["topic", "partition"],
    registers,
  });
  const oldLag = new Gauge({
    name: "aies_kafka_consumer_lag",
    help: deprecated("aies_kafka_consumer_lag", "Messages after the committed offset, per partition"),
    labelNames: ["partition"],
    registers,
  });
  for (const [key, entry] of Object.entries(kafka.lag)) {
    const at = key.lastIndexOf(":");
    lag.set({ topic: key.slice(0, at), partition: key.slice(at + 1) }, entry.lag);
    oldLag.set({ partition: key }, entry.lag);
  }
  const latency = new Gauge({
    name: "aies_task_latency_ms",
    help: deprecated("aies_task_latency_ms", "Accepted → result latency quantiles in ms, since the metrics began"),
    labelNames: ["quantile"],
    registers,
  });
  latency.set({ quantile: "0.5" }, snapshot.latency_ms.p50);
  latency.set({ quantile: "0.95" }, snapshot.latency_ms.p95);
  latency.set({ quantile: "0.99" }, snapshot.latency_ms.p99);

  if (workers) workerGauges(workers.list, workers.reasons, registers);

  const blocks = [await registry.metrics()];
  if (extras) {
    for (const [key, [name, help]] of Object.entries(HISTOGRAM_NAMES)) {
      const counters = extras.histograms[key as HistogramName];
      blocks.push(histogramText(name, help, cumulativeBuckets(counters, DURATION_BOUNDS_SECONDS)));
    }
    // A summary with no quantiles: rate(_sum) / rate(_count) is the mean similarity over any window.
    blocks.push(
      family("aies_cache_semantic_similarity", "Cosine similarity of semantic cache hits", "summary", [
        ["_sum", "", extras.similarity.sum],
        ["_count", "", extras.similarity.count],
      ]),
    );
  }
  return blocks.join("\n");
}

/**
 * Each live worker process's jobs in flight, their limit, and why the limit is
 * what it is: an enum as one 0/1 series per reason (the Prometheus way to
 * export a state, so `max by (reason)` works and no series appears only
 * while a reason holds). Label `worker` is the heartbeat's id.
 */
function workerGauges(workers: readonly WorkerJobsInFlight[], reasons: readonly string[], registers: Registry[]): void {
  const labelNames = ["worker"] as const;
  const inFlight = new Gauge({
    name: "aies_worker_jobs_in_flight",
    help: "Jobs running in a worker process",
    labelNames,
    registers,
  });
  const limit = new Gauge({
    name: "aies_worker_jobs_in_flight_limit",
    help: "The current limit of jobs in flight of a worker process (WORKER_JOBS_PER_PROCESS; auto: adaptive)",
    labelNames,
    registers,
  });
  const reason = new Gauge({
    name: "aies_worker_jobs_in_flight_limit_reason",
    help: "1 for what sets a worker process's limit of jobs in flight now, 0 for the other reasons",
    labelNames: ["worker", "reason"],
    registers,
  });
  const throttled = new Counter({
    name: "aies_worker_llm_throttled_total",
    help: "Provider 429 answers a worker process got (the adaptive limit backs off on them)",
    labelNames,
    registers,
  });
  const delay = new Gauge({
    name: "aies_worker_event_loop_delay_seconds",
    help: "P99 of a worker process's event-loop delay over its last window",
    labelNames,
    registers,
  });
  for (const w of workers) {
    const status = w.jobs_in_flight;
    if (!status) continue;
    const labels = { worker: w.id };
    inFlight.set(labels, status.in_flight);
    limit.set(labels, status.limit);
    for (const r of reasons) reason.set({ worker: w.id, reason: r }, r === status.reason ? 1 : 0);
    throttled.inc(labels, status.throttled);
    delay.set(labels, status.event_loop_delay_ms / 1000);
  }
}

/**
 * One metric family in text exposition. prom-client's Histogram only takes
 * observations one at a time, and these come as bucket counts (millions of
 * samples), so the few lines are written here; every name and label value is
 * one of this file's constants, so nothing needs escaping.
 */
function family(name: string, help: string, type: string, samples: [suffix: string, labels: string, value: number][]) {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const [suffix, labels, value] of samples) lines.push(`${name}${suffix}${labels} ${value}`);
  return `${lines.join("\n")}\n`;
}

function histogramText(name: string, help: string, buckets: CumulativeBuckets): string {
  const samples: [string, string, number][] = buckets.bounds.map((bound, i) => [
    "_bucket",
    `{le="${bound}"}`,
    buckets.cumulative[i] as number,
  ]);
  samples.push(["_bucket", '{le="+Inf"}', buckets.count]);
  samples.push(["_sum", "", buckets.sumSeconds]);
  samples.push(["_count", "", buckets.count]);
  return family(name, help, "histogram", samples);
}
