/**
 * Where the metrics live in Redis, shared by the recorders that write them
 * (recorder.ts) and the reader (snapshot.ts). Processes only ever add to
 * these keys (HINCRBY, BITFIELD INCRBY), so they never coordinate:
 *   {prefix}:counters          field = counter name
 *   {prefix}:rate:{epochSec}   fields completed, failed: tasks ended in that second, EXPIRE 120
 *   {prefix}:buckets:{name}    string of i64 counters, one per HDR bucket: samples in it (histogram.ts)
 *   {prefix}:kafka_lag         field = topic:partition, value = lag JSON (written by the consumer role)
 *   {prefix}:dead_letters      list of the latest dead letters' JSON, newest first (written by the consumer role)
 *   {prefix}:flushed:...       a flush's receipt, so a flush whose reply was lost is never sent twice
 * The histogram keys are not the `{prefix}:hist:{name}` of the per-process layout they replace (issue 12):
 * a process of that version, still running during a rolling upgrade, writes its hashes there. Its `hist:*`
 * and `hist_seen` keys can be deleted once it is gone.
 */
export const HISTOGRAMS = ["latency", "processing", "llm", "cache_lookup"] as const;
export type HistogramName = (typeof HISTOGRAMS)[number];
export const RATE_TTL_SECONDS = 120;
export const RATE_WINDOW_SECONDS = 10;
/** Dead letters kept in `{prefix}:dead_letters` for /metrics and the console. */
export const RECENT_DEAD_LETTERS = 20;

/** Counter fields that other modules increment themselves in `{prefix}:counters` (HINCRBY). */
export const EXTERNAL_COUNTERS = {
  kafkaEventsConsumed: "kafka_events_consumed",
  kafkaEventsEnqueued: "kafka_events_enqueued",
  kafkaEventsDuplicate: "kafka_events_duplicate",
  kafkaEventsDeadLettered: "kafka_events_dead_lettered",
  kafkaEventsSkipped: "kafka_events_skipped",
  kafkaConsumerRestarts: "kafka_consumer_restarts",
  kafkaResultsPublished: "kafka_results_published",
  kafkaResultsFailedBatches: "kafka_results_failed_batches",
  kafkaResultsRepublished: "kafka_results_republished",
  kafkaResultsFailuresPublished: "kafka_results_failures_published",
  kafkaResultsUnpublished: "kafka_results_unpublished",
} as const;

export const metricsKeys = (prefix = "metrics") => ({
  counters: `${prefix}:counters`,
  rate: (epochSecond: number) => `${prefix}:rate:${epochSecond}`,
  histogram: (name: HistogramName) => `${prefix}:buckets:${name}`,
  kafkaLag: `${prefix}:kafka_lag`,
  /** The latest dead letters, newest first, JSON each, capped at RECENT_DEAD_LETTERS (written by consumer threads). */
  deadLetters: `${prefix}:dead_letters`,
  /** Prefix of a process's flush receipts: `{prefix}:flushed:{process}:{nonce}:{seq}`, EX 600 (recorder.ts). */
  receipt: (processId: string) => `${prefix}:flushed:${processId}`,
});
