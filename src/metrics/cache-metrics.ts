/**
 * The semantic cache's share of the metrics: which counters its events bump
 * (in every process), and how /metrics turns them into the `cache` section.
 * Money is counted in integer nano-USD: one embedding of a short text costs
 * well under a micro-dollar, which integer HINCRBY would round to zero.
 */
import { Type as t } from "@sinclair/typebox";
import type { EventBus } from "../events";
import type { DurationSummary } from "./histogram";

const Count = t.Integer({ minimum: 0 });

export const CacheIndexSchema = t.Object(
  {
    name: t.String(),
    algorithm: t.String(),
    dims: t.Integer({ minimum: 0 }),
    docs: t.Integer({ minimum: 0, description: "entries the index holds: the semantic tier's entries" }),
    state: t.Union([t.Literal("ready"), t.Literal("indexing"), t.Literal("missing"), t.Literal("unavailable")], {
      description:
        "ready; indexing (a backfill runs: percent_indexed); missing (not created yet); unavailable (no Query Engine, or a Redis database other than 0, which the Query Engine does not index: exact tier only)",
    }),
    percent_indexed: t.Number(),
    indexing_failures: t.Integer({
      minimum: 0,
      description: "hashes the index could not take (hash_indexing_failures)",
    }),
  },
  { description: "the vector index of the configured embedding model, from FT.INFO" },
);
export type CacheIndexInfo = typeof CacheIndexSchema.static;

export const CacheMetricsSchema = t.Object({
  hits: t.Integer({
    minimum: 0,
    description: "lookups answered without an LLM call: exact + semantic + single-flight",
  }),
  misses: t.Integer({ minimum: 0, description: "lookups that went to the LLM, cache errors included" }),
  hit_rate: t.Number({ description: "hits / (hits + misses); bypassed requests (use_cache false) not counted" }),
  exact_hits: Count,
  semantic_hits: Count,
  single_flight_hits: t.Integer({ minimum: 0, description: "concurrent duplicates served by one leader's LLM call" }),
  bypassed: t.Integer({
    minimum: 0,
    description: "use_cache false, refresh, or temperature above CACHE_MAX_TEMPERATURE",
  }),
  errors: t.Integer({ minimum: 0, description: "Redis or embeddings failures; those tasks went to the LLM" }),
  guard_refusals: t.Integer({
    minimum: 0,
    description: "semantic hits refused: numbers, identifiers, negation, substituted or swapped words differ",
  }),
  guard_refusals_by_reason: t.Object({
    numbers: Count,
    identifiers: Count,
    negation: Count,
    substitution: Count,
    order: Count,
  }),
  feedback: t.Object(
    {
      received: Count,
      wrong_cached: t.Integer({
        minimum: 0,
        description: "answers served from the cache that a client said were wrong",
      }),
      wrong_fresh: t.Integer({ minimum: 0, description: "fresh LLM answers a client said were wrong" }),
      invalidations: t.Integer({ minimum: 0, description: "cache entries deleted because of such feedback" }),
    },
    { description: "POST /task/{id}/feedback" },
  ),
  avg_similarity: t.Number({ description: "mean cosine similarity of semantic hits" }),
  stored: Count,
  not_admitted: t.Integer({ minimum: 0, description: "answers the admission policy kept out (finish reason, empty)" }),
  embedding_calls: Count,
  embedding_inputs: Count,
  avg_inputs_per_embedding_call: t.Number(),
  knn_batches: t.Integer({ minimum: 0, description: "pipelines of KNN queries sent" }),
  knn_queries: Count,
  avg_knn_batch_size: t.Number(),
  round_trips_per_lookup: t.Number({
    description: "Redis round trips per lookup, a pipeline shared by N counting 1/N",
  }),
  lookup_ms: t.Object({ p50: t.Number(), p95: t.Number(), p99: t.Number() }),
  tokens_saved: Count,
  saved_usd: t.Number({ description: "estimated LLM cost of the hits, at the configured prices" }),
  embedding_cost_usd: t.Number({ description: "estimated cost of the embeddings calls" }),
  estimated_cost_saved_usd: t.Number({ description: "saved_usd net of embedding_cost_usd" }),
  index: t.Optional(CacheIndexSchema),
});
export type CacheMetrics = typeof CacheMetricsSchema.static;

const MICRO = 1e6;
const NANO_PER_USD = 1e9;

/** Subscribes the cache counters; returns the unsubscribers. `add` bumps an integer counter, `observe` a histogram. */
export function subscribeCacheMetrics(
  bus: EventBus,
  add: (field: string, n?: number) => void,
  observeLookupMs: (ms: number) => void,
): (() => void)[] {
  return [
    bus.on("cache.lookup", (e) => {
      add(`cache_lookup:${e.tier}`);
      if (e.tier === "bypass") return;
      add("cache_round_trips_micro", e.round_trips * MICRO);
      observeLookupMs(e.ms);
      if (e.similarity !== undefined) {
        add("cache_similarity_sum_micro", e.similarity * MICRO);
        add("cache_similarity_count");
      }
      if (e.saved_nano_usd) add("cache_saved_nano_usd", e.saved_nano_usd);
    }),
    bus.on("task.feedback", (e) => {
      add("feedback_received");
      if (e.correct === false) add(e.from_cache ? "feedback_wrong_cached" : "feedback_wrong_fresh");
      if (e.invalidated) add("cache_feedback_invalidations");
    }),
    bus.on("cache.guard_refused", (e) => {
      add("cache_guard_refusals");
      add(`cache_guard_refusals:${e.reason}`);
    }),
    bus.on("cache.knn_batch", (e) => {
      add("cache_knn_batches");
      add("cache_knn_queries", e.queries);
    }),
    bus.on("cache.store", (e) => add(e.stored ? "cache_stored" : "cache_not_admitted")),
    bus.on("cache.error", (e) => {
      add("cache_errors");
      add(`cache_errors:${e.stage}`);
    }),
    bus.on("llm.embed", (e) => {
      add("embedding_calls");
      add("embedding_inputs", e.inputs);
      add("embedding_cost_nano_usd", e.cost_nano_usd);
    }),
  ];
}

const round = (n: number, digits = 4) => Math.round(n * 10 ** digits) / 10 ** digits;
const ratio = (part: number, whole: number, digits = 4) => (whole > 0 ? round(part / whole, digits) : 0);

/** The cosine similarities of semantic hits, summed, and how many: avg_similarity's parts, for Prometheus. */
export function cacheSimilarity(count: (field: string) => number): { sum: number; count: number } {
  return { sum: count("cache_similarity_sum_micro") / MICRO, count: count("cache_similarity_count") };
}

export function cacheSnapshot(count: (field: string) => number, lookup: DurationSummary): CacheMetrics {
  const exact = count("cache_lookup:exact");
  const semantic = count("cache_lookup:semantic");
  const singleFlight = count("cache_lookup:single_flight");
  const errors = count("cache_lookup:error");
  const hits = exact + semantic + singleFlight;
  const misses = count("cache_lookup:miss") + errors;
  const calls = count("embedding_calls");
  const inputs = count("embedding_inputs");
  const batches = count("cache_knn_batches");
  const queries = count("cache_knn_queries");
  const saved = count("cache_saved_nano_usd") / NANO_PER_USD;
  const embeddingCost = count("embedding_cost_nano_usd") / NANO_PER_USD;
  const similarity = cacheSimilarity(count);
  return {
    hits,
    misses,
    hit_rate: ratio(hits, hits + misses),
    exact_hits: exact,
    semantic_hits: semantic,
    single_flight_hits: singleFlight,
    bypassed: count("cache_lookup:bypass"),
    errors: count("cache_errors"),
    guard_refusals: count("cache_guard_refusals"),
    feedback: {
      received: count("feedback_received"),
      wrong_cached: count("feedback_wrong_cached"),
      wrong_fresh: count("feedback_wrong_fresh"),
      invalidations: count("cache_feedback_invalidations"),
    },
    guard_refusals_by_reason: {
      numbers: count("cache_guard_refusals:numbers"),
      identifiers: count("cache_guard_refusals:identifiers"),
      negation: count("cache_guard_refusals:negation"),
      substitution: count("cache_guard_refusals:substitution"),
      order: count("cache_guard_refusals:order"),
    },
    avg_similarity: ratio(similarity.sum, similarity.count),
    stored: count("cache_stored"),
    not_admitted: count("cache_not_admitted"),
    embedding_calls: calls,
    embedding_inputs: inputs,
    avg_inputs_per_embedding_call: ratio(inputs, calls, 2),
    knn_batches: batches,
    knn_queries: queries,
    avg_knn_batch_size: ratio(queries, batches, 2),
    round_trips_per_lookup: ratio(count("cache_round_trips_micro") / MICRO, hits + misses, 3),
    lookup_ms: { p50: lookup.p50, p95: lookup.p95, p99: lookup.p99 },
    tokens_saved: count("cache_tokens_saved"),
    saved_usd: round(saved, 6),
    embedding_cost_usd: round(embeddingCost, 6),
    estimated_cost_saved_usd: round(saved - embeddingCost, 6),
  };
}

/**
 * The index's figures from an FT.INFO reply (a flat list of names and
 * values), or its state from the error FT.INFO answered instead.
 */
export function indexInfo(
  index: { name: string; algorithm: string; dim: number },
  reply: unknown,
  error: Error | null,
  /** The Redis database: the Query Engine creates indexes in database 0 only. */
  db = 0,
): CacheIndexInfo {
  const base = { name: index.name, algorithm: index.algorithm, dims: index.dim };
  if (error || !Array.isArray(reply)) {
    const missing = db === 0 && error && /unknown index name|no such index/i.test(error.message);
    return { ...base, docs: 0, state: missing ? "missing" : "unavailable", percent_indexed: 0, indexing_failures: 0 };
  }
  const field = (name: string) => {
    const i = reply.indexOf(name);
    const value = Number(i < 0 ? 0 : reply[i + 1]);
    return Number.isFinite(value) ? value : 0;
  };
  return {
    ...base,
    docs: field("num_docs"),
    state: field("indexing") ? "indexing" : "ready",
    percent_indexed: field("percent_indexed"),
    indexing_failures: field("hash_indexing_failures"),
  };
}
