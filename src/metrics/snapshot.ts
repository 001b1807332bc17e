/**
 * The /metrics snapshot: counters and histogram buckets as every process
 * added to them, queue depths read from Bee-Queue's keys; one pipelined round trip.
 */
import { Type as t } from "@sinclair/typebox";
import type Redis from "ioredis";
import { CacheMetricsSchema, cacheSimilarity, cacheSnapshot, indexInfo } from "./cache-metrics";
import { type DurationSummary, summarizeCounters } from "./histogram";
import {
  EXTERNAL_COUNTERS,
  HISTOGRAMS,
  type HistogramName,
  metricsKeys,
  RATE_WINDOW_SECONDS,
  RECENT_DEAD_LETTERS,
} from "./keys";
import { LlmCostsSchema, LlmRoutingSchema, llmCostsSnapshot, llmRoutingSnapshot } from "./llm-metrics";

const Count = t.Integer({ minimum: 0 });
const Quantiles = { p50: t.Number(), p95: t.Number(), p99: t.Number() };
export const QUEUE_STATES = ["waiting", "active", "delayed", "failed"] as const;

export const MetricsSnapshotSchema = t.Object({
  total_tasks: t.Integer({ minimum: 0, description: "tasks accepted, from the API and Kafka" }),
  active_tasks: Count,
  started_tasks: t.Integer({ minimum: 0, description: "attempts started, retries included" }),
  completed_tasks: Count,
  failed_tasks: Count,
  retried_tasks: Count,
  failure_rate: t.Number({ description: "failed / (completed + failed); 0 when none ended" }),
  tasks_per_second: t.Number({
    description: "tasks ended (completed or failed) per second, over the 10 s that ended 1 s ago",
  }),
  cache_hit_rate: t.Number(),
  avg_processing_time: t.Number({ description: "seconds a worker spends on a task, mean" }),
  uptime: t.Number({ description: "seconds since the answering process started" }),
  latency_ms: t.Object({ ...Quantiles, max: t.Number(), count: Count }, { description: "accepted → result" }),
  processing_ms: t.Object(Quantiles),
  llm: t.Object({
    calls: Count,
    errors: Count,
    avg_ms: t.Number(),
    p95_ms: t.Number(),
    prompt_tokens: Count,
    completion_tokens: Count,
    embedding_calls: Count,
    embedding_inputs: Count,
    rate_limited_waits: Count,
    rate_limited_wait_ms: Count,
  }),
  queues: t.Record(
    t.String(),
    t.Object({ waiting: Count, active: Count, delayed: Count, failed: Count, accepted: Count }),
  ),
  cache: CacheMetricsSchema,
  webhooks: t.Object(
    {
      attempts: Count,
      delivered: t.Integer({ minimum: 0, description: "webhooks a receiver took (2xx)" }),
      retrying: t.Integer({ minimum: 0, description: "attempts that failed and will be tried again" }),
      failed: t.Integer({ minimum: 0, description: "webhooks given up after WEBHOOK_MAX_ATTEMPTS" }),
      gone: t.Integer({ minimum: 0, description: "webhooks stopped by a 410 Gone of their URL" }),
    },
    { description: "signed webhook deliveries (callback_url), across the worker processes" },
  ),
  kafka: t.Object({
    events_consumed: Count,
    events_enqueued: Count,
    duplicates: t.Integer({ minimum: 0, description: "redelivered events that were not enqueued again" }),
    dead_lettered: t.Integer({ minimum: 0, description: "events sent to the DLQ topic" }),
    events_skipped: t.Integer({
      minimum: 0,
      description: "events of a chunk that kept failing that the DLQ refused too: skipped, neither task nor letter",
    }),
    consumer_restarts: t.Integer({ minimum: 0, description: "consumer threads that died and were restarted" }),
    lag: t.Record(t.String(), t.Object({ lag: Count, committed: t.String(), at: t.Number() }), {
      description: "consumer lag per topic:partition, as last reported by a consumer thread",
    }),
    total_lag: Count,
    recent_dead_letters: t.Array(
      t.Object({
        at: t.String({ description: "when it was sent to the DLQ, ISO 8601" }),
        reason: t.String({ description: "not_json, schema, unknown_task_type, … or unprocessable" }),
        detail: t.String(),
        topic: t.String(),
        partition: t.Integer(),
        offset: t.String(),
      }),
      { description: `the latest ${RECENT_DEAD_LETTERS} events sent to the DLQ topic, newest first` },
    ),
    results_published: t.Integer({
      minimum: 0,
      description: "outcomes produced to KAFKA_TOPIC_OUT: results and final failures",
    }),
    results_failures_published: t.Integer({
      minimum: 0,
      description: "of results_published, the FAILURE messages (tasks that failed for good)",
    }),
    results_failed_batches: t.Integer({
      minimum: 0,
      description: "result batches the broker refused (their jobs are retried while retries remain)",
    }),
    results_unpublished: t.Integer({
      minimum: 0,
      description: "outcomes whose produce failed with no retry of their job left: not on KAFKA_TOPIC_OUT (logged)",
    }),
    results_republished: t.Integer({
      minimum: 0,
      description: "results a re-run published again: at most this many duplicates on KAFKA_TOPIC_OUT",
    }),
  }),
  enqueue: t.Object({ batches: Count, jobs: Count, avg_batch_size: t.Number() }),
  llm_costs: LlmCostsSchema,
  llm_routing: LlmRoutingSchema,
});
export type MetricsSnapshot = typeof MetricsSnapshotSchema.static;

const round = (n: number, digits = 4) => Math.round(n * 10 ** digits) / 10 ** digits;
const ratio = (part: number, whole: number) => (whole > 0 ? round(part / whole) : 0);

/** A queue's state keys, from the queue layer's layout (queue/bee-queue-layout.ts, queueKeys). */
export interface QueueStateKeys {
  readonly name: string;
  readonly waiting: string;
  readonly active: string;
  readonly delayed: string;
  readonly failed: string;
}

type ReadMetricsDeps = {
  redis: Redis;
  queues: readonly QueueStateKeys[];
  /** In-flight tasks, when the caller counts them itself; else the sum of the queues' active lists. */
  activeTasks?: number;
  prefix?: string;
  /** Epoch ms the answering process started; defaults to this process's start. */
  startedAt?: number;
  /** Epoch ms; tests move the clock to see the rate window. */
  now?: number;
  /** The semantic cache's vector index, reported with FT.INFO in the same round trip. */
  cacheIndex?: { name: string; algorithm: string; dim: number };
};

/**
 * What the Prometheus exporter needs beyond the JSON snapshot, from the same
 * read: each histogram's counters (for `_bucket` series an aggregator can
 * merge) and the similarity sum behind `cache.avg_similarity`.
 */
export interface MetricsExtras {
  histograms: Record<HistogramName, Buffer | null>;
  similarity: { sum: number; count: number };
}

/**
 * The deployment's metrics in one pipelined round trip: counters, every
 * histogram's counters, the rate buckets and the queues' key sizes.
 */
export async function readMetrics(deps: ReadMetricsDeps): Promise<MetricsSnapshot> {
  return (await readMetricsWithExtras(deps)).snapshot;
}

/** readMetrics, plus what only the Prometheus exporter uses (MetricsExtras). */
export async function readMetricsWithExtras(
  deps: ReadMetricsDeps,
): Promise<{ snapshot: MetricsSnapshot; extras: MetricsExtras }> {
  const { redis, queues, prefix = "metrics", now = Date.now() } = deps;
  const keys = metricsKeys(prefix);
  // The 10 seconds before the last one: with a flush interval of at most 1 s, every process has sent them.
  const lastSecond = Math.floor(now / 1000) - 2;
  const pipeline = redis.pipeline().hgetall(keys.counters);
  for (const name of HISTOGRAMS) pipeline.getBuffer(keys.histogram(name));
  for (let i = 0; i < RATE_WINDOW_SECONDS; i++) pipeline.hmget(keys.rate(lastSecond - i), "completed", "failed");
  for (const queue of queues) {
    pipeline.llen(queue.waiting).llen(queue.active).zcard(queue.delayed).scard(queue.failed);
  }
  pipeline.hgetall(keys.kafkaLag).lrange(keys.deadLetters, 0, RECENT_DEAD_LETTERS - 1);
  // Last: its error (no index, no Query Engine) is a state to report, not a failure of the snapshot.
  if (deps.cacheIndex) pipeline.call("FT.INFO", deps.cacheIndex.name);
  const replies = (await pipeline.exec()) ?? [];
  let cursor = 0;
  const next = <T>(): T => {
    const [error, value] = replies[cursor++] ?? [new Error("missing reply in the metrics pipeline")];
    if (error) throw error;
    return value as T;
  };

  const counters = next<Record<string, string>>();
  const count = (field: string) => {
    const value = Number(counters[field] ?? 0);
    return Number.isFinite(value) ? value : 0;
  };
  const histograms = Object.fromEntries(HISTOGRAMS.map((name) => [name, next<Buffer | null>()])) as Record<
    HistogramName,
    Buffer | null
  >;
  const [latency, processing, llm, cacheLookup] = HISTOGRAMS.map((name) => summarizeCounters(histograms[name])) as [
    DurationSummary,
    DurationSummary,
    DurationSummary,
    DurationSummary,
  ];
  let ended = 0;
  for (let i = 0; i < RATE_WINDOW_SECONDS; i++) {
    for (const value of next<(string | null)[]>()) ended += Number(value ?? 0);
  }
  const depths: MetricsSnapshot["queues"] = {};
  for (const queue of queues) {
    const [waiting, active, delayed, failed] = QUEUE_STATES.map(() => next<number>()) as [
      number,
      number,
      number,
      number,
    ];
    depths[queue.name] = { waiting, active, delayed, failed, accepted: count(`tasks_accepted:${queue.name}`) };
  }

  const lag: MetricsSnapshot["kafka"]["lag"] = {};
  for (const [partition, raw] of Object.entries(next<Record<string, string>>())) {
    lag[partition] = JSON.parse(raw) as MetricsSnapshot["kafka"]["lag"][string];
  }

  const cache = cacheSnapshot(count, cacheLookup);
  const deadLetters = next<string[]>().map(
    (raw) => JSON.parse(raw) as MetricsSnapshot["kafka"]["recent_dead_letters"][0],
  );
  if (deps.cacheIndex) {
    const [error, reply] = replies[cursor++] ?? [null, undefined];
    cache.index = indexInfo(deps.cacheIndex, reply, error, redis.options.db ?? 0);
  }

  const completed = count("tasks_completed");
  const failed = count("tasks_failed");
  const batches = count("enqueue_batches");
  const jobs = count("enqueue_jobs");
  const snapshot: MetricsSnapshot = {
    total_tasks: count("tasks_accepted"),
    active_tasks: deps.activeTasks ?? Object.values(depths).reduce((sum, depth) => sum + depth.active, 0),
    started_tasks: count("tasks_started"),
    completed_tasks: completed,
    failed_tasks: failed,
    retried_tasks: count("tasks_retried"),
    failure_rate: ratio(failed, completed + failed),
    tasks_per_second: round(ended / RATE_WINDOW_SECONDS),
    cache_hit_rate: cache.hit_rate,
    avg_processing_time: round(processing.mean / 1000, 6),
    uptime: round(deps.startedAt === undefined ? process.uptime() : (now - deps.startedAt) / 1000, 3),
    latency_ms: { p50: latency.p50, p95: latency.p95, p99: latency.p99, max: latency.max, count: latency.count },
    processing_ms: { p50: processing.p50, p95: processing.p95, p99: processing.p99 },
    llm: {
      calls: count("llm_calls"),
      errors: count("llm_errors"),
      avg_ms: round(llm.mean, 3),
      p95_ms: llm.p95,
      prompt_tokens: count("llm_prompt_tokens"),
      completion_tokens: count("llm_completion_tokens"),
      embedding_calls: count("embedding_calls"),
      embedding_inputs: count("embedding_inputs"),
      rate_limited_waits: count("rate_limited_waits"),
      rate_limited_wait_ms: count("rate_limited_wait_ms"),
    },
    queues: depths,
    cache,
    webhooks: {
      attempts: count("webhook_attempts"),
      delivered: count("webhook_attempts:delivered"),
      retrying: count("webhook_attempts:retrying"),
      failed: count("webhook_attempts:failed"),
      gone: count("webhook_attempts:gone"),
    },
    kafka: {
      events_consumed: count(EXTERNAL_COUNTERS.kafkaEventsConsumed),
      events_enqueued: count(EXTERNAL_COUNTERS.kafkaEventsEnqueued),
      duplicates: count(EXTERNAL_COUNTERS.kafkaEventsDuplicate),
      dead_lettered: count(EXTERNAL_COUNTERS.kafkaEventsDeadLettered),
      events_skipped: count(EXTERNAL_COUNTERS.kafkaEventsSkipped),
      consumer_restarts: count(EXTERNAL_COUNTERS.kafkaConsumerRestarts),
      lag,
      total_lag: Object.values(lag).reduce((sum, p) => sum + p.lag, 0),
      recent_dead_letters: deadLetters,
      results_published: count(EXTERNAL_COUNTERS.kafkaResultsPublished),
      results_failures_published: count(EXTERNAL_COUNTERS.kafkaResultsFailuresPublished),
      results_failed_batches: count(EXTERNAL_COUNTERS.kafkaResultsFailedBatches),
      results_unpublished: count(EXTERNAL_COUNTERS.kafkaResultsUnpublished),
      results_republished: count(EXTERNAL_COUNTERS.kafkaResultsRepublished),
    },
    enqueue: { batches, jobs, avg_batch_size: ratio(jobs, batches) },
    llm_costs: llmCostsSnapshot(counters),
    llm_routing: llmRoutingSnapshot(counters),
  };
  return { snapshot, extras: { histograms, similarity: cacheSimilarity(count) } };
}
