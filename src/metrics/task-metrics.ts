/**
 * Which counters and histograms the pipeline's events feed, in every process
 * (API, workers, consumer threads' host). A listener only bumps local
 * numbers; the recorder sends them to Redis once per flush interval.
 */
import type { EventBus } from "../events";
import { subscribeCacheMetrics } from "./cache-metrics";
import { type ExperimentSink, subscribeExperimentMetrics } from "./experiment-metrics";
import { EXTERNAL_COUNTERS, type HistogramName } from "./keys";
import { subscribeLlmMetrics } from "./llm-metrics";

/** Where the listeners put what they count (recorder.ts). */
export interface MetricsSink extends ExperimentSink {
  /** Bumps an integer counter of `{prefix}:counters`. */
  add(field: string, n?: number): void;
  /** Records a duration into one of the histograms. */
  observe(name: HistogramName, ms: number): void;
  /** Counts a task that ended, in the rate bucket of the current second. */
  tick(kind: "completed" | "failed"): void;
}

/** Subscribes every metrics listener; returns the unsubscribers. */
export function subscribeMetrics(bus: EventBus, sink: MetricsSink, prefix: string): (() => void)[] {
  const { add, observe, tick } = sink;
  return [
    bus.on("task.accepted", (e) => {
      add("tasks_accepted");
      add(`tasks_accepted:${e.queue}`);
    }),
    bus.on("task.started", () => add("tasks_started")),
    bus.on("task.succeeded", (e) => {
      add("tasks_completed");
      if (e.from_cache) add("cache_tokens_saved", e.tokens);
      tick("completed");
      observe("latency", e.latency_ms);
      observe("processing", e.processing_ms);
    }),
    bus.on("task.retried", () => add("tasks_retried")),
    bus.on("task.failed", () => {
      add("tasks_failed");
      tick("failed");
    }),
    bus.on("llm.call", (e) => {
      add(e.ok ? "llm_calls" : "llm_errors");
      add("llm_prompt_tokens", e.prompt_tokens);
      add("llm_completion_tokens", e.completion_tokens);
      observe("llm", e.ms);
    }),
    bus.on("llm.rate_limited", (e) => {
      add("rate_limited_waits");
      add("rate_limited_wait_ms", e.wait_ms);
    }),
    bus.on("ingest.batch", (e) => {
      add(EXTERNAL_COUNTERS.kafkaEventsConsumed, e.consumed);
      add(EXTERNAL_COUNTERS.kafkaEventsEnqueued, e.enqueued);
      add(EXTERNAL_COUNTERS.kafkaEventsDuplicate, e.duplicates);
      add(EXTERNAL_COUNTERS.kafkaEventsDeadLettered, e.dead_lettered);
      add(EXTERNAL_COUNTERS.kafkaEventsSkipped, e.skipped);
      // Consumer threads enqueue without the bus: their accepted tasks are counted here.
      add("tasks_accepted", e.enqueued);
      add("tasks_accepted:kafka_events", e.enqueued);
    }),
    bus.on("ingest.thread", (e) => {
      if (e.state === "died") add(EXTERNAL_COUNTERS.kafkaConsumerRestarts);
    }),
    bus.on("ingest.results_out", (e) => {
      if (e.ok) {
        add(EXTERNAL_COUNTERS.kafkaResultsPublished, e.size);
        add(EXTERNAL_COUNTERS.kafkaResultsFailuresPublished, e.failures);
      } else add(EXTERNAL_COUNTERS.kafkaResultsFailedBatches);
    }),
    bus.on("ingest.results_republished", () => add(EXTERNAL_COUNTERS.kafkaResultsRepublished)),
    bus.on("ingest.results_unpublished", () => add(EXTERNAL_COUNTERS.kafkaResultsUnpublished)),
    bus.on("enqueue.batch", (e) => {
      add("enqueue_batches");
      add("enqueue_jobs", e.size);
    }),
    bus.on("webhook.attempt", (e) => {
      add("webhook_attempts");
      add(`webhook_attempts:${e.state}`);
    }),
    ...subscribeCacheMetrics(bus, add, (ms) => observe("cache_lookup", ms)),
    ...subscribeLlmMetrics(bus, add),
    ...subscribeExperimentMetrics(bus, sink, prefix),
  ];
}
