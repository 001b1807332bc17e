/**
 * What the cache-quality run reports, from one observation per pair: its
 * cosine similarity (computed once from the embeddings) and whether the
 * exact tier or the false-hit guard would decide it. The sweep and the
 * calibration need no further embedding calls.
 */
import type { LabelledPair } from "./pairs";

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export interface PairObservation {
  pair: LabelledPair;
  similarity: number;
  /** The two texts normalise to the same exact key: served by the exact tier, whatever the threshold. */
  exactKey: boolean;
  /** The false-hit guard accepts B against A's stored text. */
  guardOk: boolean;
  /** What the cache really did at the run's threshold (lookups through createCache). */
  servedThresholdOnly: boolean;
  servedWithGuard: boolean;
}

export type Safeguards = "threshold" | "threshold+guard";

export const served = (o: PairObservation, threshold: number, with_: Safeguards): boolean =>
  o.exactKey || (o.similarity >= threshold && (with_ === "threshold" || o.guardOk));

export interface Rates {
  pairs: number;
  served: number;
  rate: number;
}

const rates = (list: readonly PairObservation[], isServed: (o: PairObservation) => boolean): Rates => {
  const n = list.filter(isServed).length;
  return { pairs: list.length, served: n, rate: list.length === 0 ? 0 : round(n / list.length, 4) };
};

export interface KindRow {
  kind: string;
  same: boolean;
  pairs: number;
  /** Served by the cache in the run: false hits for a different-answer kind, paraphrase hits for a same-answer one. */
  thresholdOnly: Rates;
  withGuard: Rates;
  meanSimilarity: number;
}

export function perKind(observations: readonly PairObservation[]): KindRow[] {
  const kinds = [...new Set(observations.map((o) => o.pair.kind))];
  return kinds.map((kind) => {
    const list = observations.filter((o) => o.pair.kind === kind);
    return {
      kind,
      same: list[0]?.pair.same ?? false,
      pairs: list.length,
      thresholdOnly: rates(list, (o) => o.servedThresholdOnly),
      withGuard: rates(list, (o) => o.servedWithGuard),
      meanSimilarity: round(list.reduce((s, o) => s + o.similarity, 0) / Math.max(1, list.length), 4),
    };
  });
}

export interface SweepPoint {
  threshold: number;
  safeguards: Safeguards;
  /** Served same-answer pairs / all served. */
  precision: number;
  /** Paraphrase hit rate: served same-answer pairs / same-answer pairs. */
  recall: number;
  falseHitRate: number;
}

export const THRESHOLDS = Array.from({ length: 20 }, (_, i) => round(0.8 + i * 0.01, 2));

export function sweep(observations: readonly PairObservation[], thresholds = THRESHOLDS): SweepPoint[] {
  const same = observations.filter((o) => o.pair.same);
  const different = observations.filter((o) => !o.pair.same);
  return (["threshold", "threshold+guard"] as const).flatMap((safeguards) =>
    thresholds.map((threshold) => {
      const hits = same.filter((o) => served(o, threshold, safeguards)).length;
      const falseHits = different.filter((o) => served(o, threshold, safeguards)).length;
      return {
        threshold,
        safeguards,
        precision: hits + falseHits === 0 ? 1 : round(hits / (hits + falseHits), 4),
        recall: same.length === 0 ? 0 : round(hits / same.length, 4),
        falseHitRate: different.length === 0 ? 0 : round(falseHits / different.length, 4),
      };
    }),
  );
}

export interface Calibration {
  taskType: string;
  /** undefined: no threshold up to 1 keeps false hits within the limit, or the task type lacks pairs of one label. */
  threshold: number | undefined;
  paraphraseHitRate: number;
  falseHitRate: number;
  samePairs: number;
  differentPairs: number;
}

/**
 * Per task type, the lowest threshold (so the most paraphrase hits, which only
 * fall as it rises) whose false-hit rate with the guard on is within maxFalseHits.
 */
export function calibrate(observations: readonly PairObservation[], maxFalseHits = 0.005): Calibration[] {
  const taskTypes = [...new Set(observations.map((o) => o.pair.task_type))].sort();
  const candidates = Array.from({ length: 21 }, (_, i) => round(0.8 + i * 0.01, 2));
  return taskTypes.map((taskType) => {
    const list = observations.filter((o) => o.pair.task_type === taskType);
    const same = list.filter((o) => o.pair.same);
    const different = list.filter((o) => !o.pair.same);
    const at = (t: number) => ({
      paraphraseHitRate:
        same.length === 0 ? 0 : round(same.filter((o) => served(o, t, "threshold+guard")).length / same.length, 4),
      falseHitRate:
        different.length === 0
          ? 0
          : round(different.filter((o) => served(o, t, "threshold+guard")).length / different.length, 4),
    });
    // Without pairs of both labels a threshold would be measured against nothing.
    const measurable = same.length > 0 && different.length > 0;
    const threshold = measurable ? candidates.find((t) => at(t).falseHitRate <= maxFalseHits) : undefined;
    return { taskType, threshold, ...at(threshold ?? 1), samePairs: same.length, differentPairs: different.length };
  });
}

/** `CACHE_SIMILARITY_THRESHOLDS=task=0.93,...` for the task types a threshold was found for. */
export const thresholdsEnv = (calibration: readonly Calibration[]): string =>
  `CACHE_SIMILARITY_THRESHOLDS=${calibration
    .filter((c) => c.threshold !== undefined)
    .map((c) => `${c.taskType}=${c.threshold?.toFixed(2)}`)
    .join(",")}`;

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] as number) * (b[i] as number);
    na += (a[i] as number) ** 2;
    nb += (b[i] as number) ** 2;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
