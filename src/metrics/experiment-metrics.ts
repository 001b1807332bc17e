/**
 * A prompt experiment's figures per variant (issue 17 §5), added up by every
 * process like the other metrics (recorder.ts: one MULTI per flush, nothing
 * per task): a task's end in the worker that ran it, a feedback in the API
 * process that took it. Sufficient statistics only (counts, sums, sums of
 * squares), which is all the report's intervals and tests need
 * (util/stats.ts), plus each variant's latency histogram for its
 * percentiles:
 *
 *   {prefix}:exp:{id}                     hash `{variant}:{stat}` → integer
 *   {prefix}:exp:{id}:latency:{variant}   HDR bucket counters (histogram.ts)
 *
 * Money is integer nano-USD for the sum and micro-USD² for the sum of
 * squares (a nano-USD² sum would overflow HINCRBY's 64 bits after a few
 * thousand expensive tasks). A second feedback on the same task replaces the
 * first: its figures are taken back before the new ones are added.
 */
import type Redis from "ioredis";
import type { EventBus, ExperimentRef } from "../events";
import { execChecked } from "../redis/script";
import { counterOfMs, type DurationSummary, summarizeCounters } from "./histogram";

export const EXPERIMENT_STATS = [
  "tasks",
  "failures",
  "cache_hits",
  "tokens",
  "tokens_sq",
  "cost_nano_usd",
  "cost_micro_usd_sq",
  "latency_ms",
  "latency_ms_sq",
  "ratings",
  "rating_sum",
  "rating_sq",
  "judged",
  "correct",
] as const;
export type ExperimentStat = (typeof EXPERIMENT_STATS)[number];

export const experimentKeys = (prefix: string, id: string) => ({
  stats: `${prefix}:exp:${id}`,
  latency: (variant: string) => `${prefix}:exp:${id}:latency:${variant}`,
});

/** Where the listeners put what they count: a hash field, and a histogram bucket (recorder.ts). */
export interface ExperimentSink {
  addToHash(key: string, field: string, n: number): void;
  observeInto(key: string, counterIndex: number): void;
}

export function subscribeExperimentMetrics(bus: EventBus, sink: ExperimentSink, prefix: string): (() => void)[] {
  const add = (ref: ExperimentRef, stat: ExperimentStat, n: number) =>
    sink.addToHash(experimentKeys(prefix, ref.id).stats, `${ref.variant}:${stat}`, Math.round(n));
  const feedback = (ref: ExperimentRef, f: { correct?: boolean; rating?: number }, sign: 1 | -1) => {
    if (f.rating !== undefined) {
      add(ref, "ratings", sign);
      add(ref, "rating_sum", sign * f.rating);
      add(ref, "rating_sq", sign * f.rating * f.rating);
    }
    if (f.correct !== undefined) {
      add(ref, "judged", sign);
      if (f.correct) add(ref, "correct", sign);
    }
  };
  return [
    bus.on("task.succeeded", (e) => {
      const ref = e.experiment;
      if (!ref) return;
      add(ref, "tasks", 1);
      if (e.from_cache) add(ref, "cache_hits", 1);
      add(ref, "tokens", e.tokens);
      add(ref, "tokens_sq", e.tokens * e.tokens);
      const cost = e.cost_usd ?? 0;
      add(ref, "cost_nano_usd", cost * 1e9);
      add(ref, "cost_micro_usd_sq", (cost * 1e6) ** 2);
      add(ref, "latency_ms", e.latency_ms);
      add(ref, "latency_ms_sq", e.latency_ms * e.latency_ms);
      sink.observeInto(experimentKeys(prefix, ref.id).latency(ref.variant), counterOfMs(e.latency_ms));
    }),
    bus.on("task.failed", (e) => {
      if (!e.experiment) return;
      add(e.experiment, "tasks", 1);
      add(e.experiment, "failures", 1);
    }),
    bus.on("task.feedback", (e) => {
      if (!e.experiment) return;
      if (e.previous) feedback(e.experiment, e.previous, -1);
      feedback(e.experiment, e, 1);
    }),
  ];
}

/** One variant's counters and its latency percentiles, as the report reads them. */
export interface VariantStats {
  stats: Record<ExperimentStat, number>;
  latency: DurationSummary;
}

/** Every variant's figures in one round trip: the stats hash and each latency histogram. */
export async function readExperimentStats(
  redis: Redis,
  prefix: string,
  id: string,
  variants: readonly string[],
): Promise<Map<string, VariantStats>> {
  const keys = experimentKeys(prefix, id);
  const pipeline = redis.pipeline().hgetall(keys.stats);
  for (const variant of variants) pipeline.getBuffer(keys.latency(variant));
  const [hash, ...histograms] = (await execChecked(pipeline)) as [Record<string, string>, ...(Buffer | null)[]];
  const out = new Map<string, VariantStats>();
  variants.forEach((variant, i) => {
    const stats = Object.fromEntries(
      EXPERIMENT_STATS.map((stat) => [stat, Number(hash[`${variant}:${stat}`] ?? 0)]),
    ) as Record<ExperimentStat, number>;
    out.set(variant, { stats, latency: summarizeCounters(histograms[i] ?? null) });
  });
  return out;
}
