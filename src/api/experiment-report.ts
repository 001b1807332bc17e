/**
 * GET /experiments/:id's report (issue 17 §5): each variant's figures with
 * confidence intervals, each variant compared with the first (the control),
 * and the variant that leads on the experiment's primary metric.
 *
 * Rates (failures, cache hits, "correct" feedback) get Wilson intervals and
 * the two-proportion z-test; means (rating, latency, tokens, cost) get t
 * intervals and Welch's t-test (util/stats.ts). With more than one
 * challenger the level of each comparison is divided by their number
 * (Bonferroni), so "significant" keeps its meaning however many variants
 * run. Failures count over every ended task; cache hits, latency, tokens
 * and cost over the succeeded ones; feedback over the answers rated.
 */
import { t } from "elysia";
import type { VariantStats } from "../metrics/experiment-metrics";
import type { Experiment, PrimaryMetric } from "../store/experiments";
import {
  type Comparison,
  type Interval,
  type Moments,
  meanInterval,
  meanOf,
  proportionTest,
  welchTest,
  wilsonInterval,
} from "../util/stats";

const Estimate = t.Object({
  value: t.Optional(t.Number({ description: "absent until there is a sample" })),
  low: t.Optional(
    t.Number({ description: "the confidence interval's low end (at 1 - significance level); absent below 2 samples" }),
  ),
  high: t.Optional(t.Number()),
  n: t.Integer({ minimum: 0, description: "the sample it is computed from" }),
});

export const COMPARED_METRICS = [
  "rating",
  "correct",
  "failure_rate",
  "cache_hit_rate",
  "latency",
  "tokens",
  "cost",
] as const;
type ComparedMetric = (typeof COMPARED_METRICS)[number];
/** Which way is better: a higher rating, share correct and cache hit rate; lower failures, latency, tokens, cost. */
const HIGHER_IS_BETTER: Record<ComparedMetric, boolean> = {
  rating: true,
  correct: true,
  failure_rate: false,
  cache_hit_rate: true,
  latency: false,
  tokens: false,
  cost: false,
};

export const VariantReportSchema = t.Object({
  name: t.String(),
  weight: t.Number(),
  share: t.Number({ description: "the weight's share of the experiment's traffic, 0..1" }),
  prompt_version: t.Integer({ minimum: 0 }),
  model: t.Optional(t.String()),
  source: t.Optional(t.String()),
  tasks: t.Integer({ minimum: 0, description: "tasks of this variant that ended (succeeded or failed)" }),
  failures: t.Integer({ minimum: 0 }),
  failure_rate: Estimate,
  cache_hit_rate: Estimate,
  latency_ms: t.Object({
    p50: t.Number(),
    p95: t.Number(),
    p99: t.Number(),
    mean: Estimate,
  }),
  tokens: t.Object({ mean: Estimate, total: t.Number() }),
  cost_usd: t.Object({ mean: Estimate, total: t.Number() }),
  feedback: t.Object({
    rating: Estimate,
    correct_rate: Estimate,
  }),
});

export const ComparisonSchema = t.Object({
  metric: t.Union(COMPARED_METRICS.map((m) => t.Literal(m))),
  control: t.String(),
  variant: t.String(),
  difference: t.Number({ description: "variant minus control" }),
  low: t.Number(),
  high: t.Number(),
  p_value: t.Number(),
  significant: t.Boolean({ description: "p_value below the significance level (Bonferroni-adjusted)" }),
  better: t.Boolean({ description: "the variant does better than the control on this metric (significant or not)" }),
});

export const ReportSchema = t.Object({
  significance_level: t.Number(),
  comparison_level: t.Number({ description: "each comparison's level: significance_level / number of challengers" }),
  variants: t.Array(VariantReportSchema),
  comparisons: t.Array(ComparisonSchema),
  leader: t.Object({
    variant: t.String({ description: "the variant that would win if the experiment ended now" }),
    metric: t.String(),
    significant: t.Boolean({ description: "it beats the control significantly (false when it is the control)" }),
    reason: t.String(),
  }),
});
export type Report = typeof ReportSchema.static;
type Estimate = typeof Estimate.static;

const estimate = (value: number | undefined, interval: Interval | undefined, n: number): Estimate => ({
  ...(value === undefined ? {} : { value }),
  ...(interval ? { low: interval.low, high: interval.high } : {}),
  n,
});
const rate = (successes: number, n: number, alpha: number) =>
  estimate(n > 0 ? successes / n : undefined, wilsonInterval(successes, n, alpha), n);
const mean = (m: Moments, alpha: number) => estimate(meanOf(m), meanInterval(m, alpha), m.n);

/** The samples of each compared metric, from a variant's counters. */
function samplesOf(v: VariantStats) {
  const s = v.stats;
  const succeeded = s.tasks - s.failures;
  return {
    rating: { kind: "mean" as const, m: { n: s.ratings, sum: s.rating_sum, sumSquares: s.rating_sq } },
    correct: { kind: "rate" as const, r: { successes: s.correct, n: s.judged } },
    failure_rate: { kind: "rate" as const, r: { successes: s.failures, n: s.tasks } },
    cache_hit_rate: { kind: "rate" as const, r: { successes: s.cache_hits, n: succeeded } },
    latency: { kind: "mean" as const, m: { n: succeeded, sum: s.latency_ms, sumSquares: s.latency_ms_sq } },
    tokens: { kind: "mean" as const, m: { n: succeeded, sum: s.tokens, sumSquares: s.tokens_sq } },
    cost: {
      kind: "mean" as const,
      m: { n: succeeded, sum: s.cost_nano_usd / 1000, sumSquares: s.cost_micro_usd_sq },
    },
  };
}

type Sample = ReturnType<typeof samplesOf>[ComparedMetric];

function compare(a: Sample, b: Sample, alpha: number): Comparison | undefined {
  if (a.kind === "rate" && b.kind === "rate") return proportionTest(a.r, b.r, alpha);
  if (a.kind === "mean" && b.kind === "mean") return welchTest(a.m, b.m, alpha);
  return undefined;
}

/** The point value of a sample (for the leader); undefined without data. */
function pointOf(sample: Sample): number | undefined {
  return sample.kind === "rate" ? (sample.r.n > 0 ? sample.r.successes / sample.r.n : undefined) : meanOf(sample.m);
}

const EMPTY_STATS: VariantStats = {
  stats: {
    tasks: 0,
    failures: 0,
    cache_hits: 0,
    tokens: 0,
    tokens_sq: 0,
    cost_nano_usd: 0,
    cost_micro_usd_sq: 0,
    latency_ms: 0,
    latency_ms_sq: 0,
    ratings: 0,
    rating_sum: 0,
    rating_sq: 0,
    judged: 0,
    correct: 0,
  },
  latency: { p50: 0, p95: 0, p99: 0, max: 0, mean: 0, count: 0 },
};

const PRIMARY_TO_COMPARED: Record<PrimaryMetric, ComparedMetric> = {
  rating: "rating",
  correct: "correct",
  failure_rate: "failure_rate",
  latency: "latency",
  cost: "cost",
};

export function buildReport(experiment: Experiment, figures: ReadonlyMap<string, VariantStats>): Report {
  const alpha = experiment.significance_level;
  const [control, ...challengers] = experiment.variants;
  const level = challengers.length > 1 ? alpha / challengers.length : alpha;
  const totalWeight = experiment.variants.reduce((sum, v) => sum + v.weight, 0);
  const statsOf = (name: string) => figures.get(name) ?? EMPTY_STATS;

  const variants = experiment.variants.map((v) => {
    const f = statsOf(v.name);
    const s = samplesOf(f);
    const succeeded = f.stats.tasks - f.stats.failures;
    return {
      name: v.name,
      weight: v.weight,
      share: totalWeight > 0 ? v.weight / totalWeight : 0,
      prompt_version: v.prompt_version,
      ...(v.model ? { model: v.model } : {}),
      ...(v.source ? { source: v.source } : {}),
      tasks: f.stats.tasks,
      failures: f.stats.failures,
      failure_rate: rate(f.stats.failures, f.stats.tasks, alpha),
      cache_hit_rate: rate(f.stats.cache_hits, succeeded, alpha),
      latency_ms: { p50: f.latency.p50, p95: f.latency.p95, p99: f.latency.p99, mean: mean(s.latency.m, alpha) },
      tokens: { mean: mean(s.tokens.m, alpha), total: f.stats.tokens },
      cost_usd: {
        mean: scaleEstimate(mean(s.cost.m, alpha), 1e-6),
        total: f.stats.cost_nano_usd / 1e9,
      },
      feedback: { rating: mean(s.rating.m, alpha), correct_rate: rate(f.stats.correct, f.stats.judged, alpha) },
    };
  });

  const comparisons: Report["comparisons"] = [];
  if (control) {
    const base = samplesOf(statsOf(control.name));
    for (const challenger of challengers) {
      const other = samplesOf(statsOf(challenger.name));
      for (const metric of COMPARED_METRICS) {
        const result = compare(base[metric], other[metric], level);
        if (!result) continue;
        const scale = metric === "cost" ? 1e-6 : 1;
        comparisons.push({
          metric,
          control: control.name,
          variant: challenger.name,
          difference: result.difference * scale,
          low: result.interval.low * scale,
          high: result.interval.high * scale,
          p_value: result.pValue,
          significant: result.significant,
          better: HIGHER_IS_BETTER[metric] ? result.difference > 0 : result.difference < 0,
        });
      }
    }
  }

  return {
    significance_level: alpha,
    comparison_level: level,
    variants,
    comparisons,
    leader: leaderOf(experiment, comparisons, (name) => samplesOf(statsOf(name))),
  };
}

function scaleEstimate(e: Estimate, factor: number): Estimate {
  return {
    ...(e.value === undefined ? {} : { value: e.value * factor }),
    ...(e.low === undefined || e.high === undefined ? {} : { low: e.low * factor, high: e.high * factor }),
    n: e.n,
  };
}

/**
 * The winner if the experiment ended now: among the control and the
 * challengers that beat it significantly on the primary metric, the best.
 * Without such a challenger the control stays: a difference that may be
 * noise never replaces what runs today.
 */
function leaderOf(
  experiment: Experiment,
  comparisons: Report["comparisons"],
  samples: (name: string) => ReturnType<typeof samplesOf>,
): Report["leader"] {
  const metric = PRIMARY_TO_COMPARED[experiment.primary_metric];
  const control = experiment.variants[0]?.name ?? "";
  const winners = comparisons.filter((c) => c.metric === metric && c.significant && c.better).map((c) => c.variant);
  if (winners.length === 0) {
    return {
      variant: control,
      metric,
      significant: false,
      reason: `no variant beats the control '${control}' on ${metric} at the ${experiment.significance_level} level: the control stays`,
    };
  }
  const sign = HIGHER_IS_BETTER[metric] ? 1 : -1;
  const best = winners.reduce((a, b) =>
    sign * ((pointOf(samples(b)[metric]) ?? 0) - (pointOf(samples(a)[metric]) ?? 0)) > 0 ? b : a,
  );
  return {
    variant: best,
    metric,
    significant: true,
    reason: `'${best}' beats the control '${control}' on ${metric}, significant at the ${experiment.significance_level} level`,
  };
}
