/**
 * The `console` scenario's arithmetic, with no browser: the main thread's busy fraction from two readings of
 * Chromium's Performance.getMetrics, a least-squares slope per minute, and the report's summary of the samples.
 */

/** The Performance.getMetrics figures the scenario reads (Chromium's names; durations and Timestamp in seconds). */
export interface PageMetrics {
  /** Monotonic clock, seconds. */
  Timestamp: number;
  /** Main-thread time spent in tasks (of any kind: script, style, layout, paint, GC...), seconds since the page opened. */
  TaskDuration: number;
  ScriptDuration: number;
  LayoutDuration: number;
  RecalcStyleDuration: number;
  JSHeapUsedSize: number;
  JSHeapTotalSize: number;
  /** DOM nodes alive in the renderer, attached or not yet collected. */
  Nodes: number;
  JSEventListeners: number;
}

/** Shares of the wall time between two readings the main thread spent in tasks, and in script, layout and style. */
export function busyBetween(from: PageMetrics, to: PageMetrics) {
  const wall = to.Timestamp - from.Timestamp;
  const share = (pick: (m: PageMetrics) => number) => (wall > 0 ? Math.max(0, pick(to) - pick(from)) / wall : 0);
  return {
    wallS: wall,
    busy: share((m) => m.TaskDuration),
    script: share((m) => m.ScriptDuration),
    layout: share((m) => m.LayoutDuration),
    style: share((m) => m.RecalcStyleDuration),
  };
}

/** Least-squares slope of y over x, per unit of x; 0 with fewer than two distinct x. */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den > 0 ? num / den : 0;
}

/** One sample of the page, at the end of an interval of the measured phase. */
export interface ConsoleSample {
  /** Seconds since the measured phase began. */
  at: number;
  /** Wall seconds the busy shares below cover (the forced GC of the previous sample excluded). */
  wallS: number;
  /** Shares (0..1) of the interval the main thread was busy: in any task, and in script, layout, style. */
  busy: number;
  script: number;
  layout: number;
  style: number;
  /** CPU time of the renderer's main thread over the interval, as a share of one core (/proc); -1 when unknown. */
  mainThreadCpu: number;
  /** JS heap used after a forced full GC, MiB. */
  heapMiB: number;
  /** DOM nodes alive after that GC (Performance.getMetrics Nodes), and those in the document. */
  nodes: number;
  documentNodes: number;
  listeners: number;
  /** Long tasks (over 50 ms, PerformanceObserver "longtask") in the interval, and their total ms. */
  longTasks: number;
  longTaskMs: number;
}

export interface SeriesSummary {
  first: number;
  last: number;
  min: number;
  max: number;
  /** Least-squares slope over the run, per minute. */
  slopePerMin: number;
  /**
   * The same over the second half of the run only: the page fills bounded buffers at first (five minutes of
   * snapshots for its charts), so a leak is what still grows once they are full.
   */
  lastHalfSlopePerMin: number;
}

export interface ConsoleReport {
  /** The events' rate, per minute, and their mix. */
  eventsPerMin: number;
  mix: string;
  sampleEveryS: number;
  samples: ConsoleSample[];
  /** Busy share over the whole measured phase (sum of busy time over sum of wall time), and the worst interval. */
  busy: { overall: number; maxInterval: number; target: number };
  /** The renderer main thread's CPU share over the whole measured phase and in the worst interval (-1: unknown). */
  mainThreadCpu: { overall: number; maxInterval: number };
  heapMiB: SeriesSummary;
  nodes: SeriesSummary;
  documentNodes: SeriesSummary;
  longTasks: { count: number; totalMs: number; maxMs: number };
  /**
   * From a sentiment_analysis task's finished_at (the worker's clock) to the page counting it (the page's clock; one
   * machine), for every such completion of the measured phase; `seen`: those the page had counted by the end.
   */
  completionToPageMs: { completions: number; seen: number; p50: number; p95: number; max: number };
  /** At the end, once drained: the page's counters against GET /metrics. */
  final: { pageCompleted: number; metricsCompleted: number; pageFailed: number; metricsFailed: number };
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

export function summarizeSeries(points: readonly (readonly [number, number])[]): SeriesSummary {
  const ys = points.map(([, y]) => y);
  const middle = ((points[0]?.[0] ?? 0) + (points.at(-1)?.[0] ?? 0)) / 2;
  const perMinute = (of: readonly (readonly [number, number])[]) =>
    round(slope(of.map(([x, y]) => [x / 60, y] as const)), 4);
  return {
    first: round(ys[0] ?? 0),
    last: round(ys.at(-1) ?? 0),
    min: round(ys.length ? Math.min(...ys) : 0),
    max: round(ys.length ? Math.max(...ys) : 0),
    slopePerMin: perMinute(points),
    lastHalfSlopePerMin: perMinute(points.filter(([x]) => x >= middle)),
  };
}

/** The value at percentile p (0..100) of sorted numbers; 0 when empty. */
export function percentileOf(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

/** A share over the whole run: the intervals' shares weighted by their wall time. */
export function overallShare(samples: readonly ConsoleSample[], pick: (s: ConsoleSample) => number): number {
  const wall = samples.reduce((s, x) => s + x.wallS, 0);
  return wall > 0 ? samples.reduce((s, x) => s + pick(x) * x.wallS, 0) / wall : 0;
}

/**
 * How long each completion took to show: `finishes[n - 1]` is when the n-th completion of the stream ended,
 * `shown` when the page's count reached a total (its clock, ascending, totals not decreasing). Only completions
 * that ended within `window` (epoch ms) are measured; one the page never counted is not seen.
 */
export function lagsToPage(
  finishes: readonly number[],
  shown: readonly (readonly [number, number])[],
  window: { from: number; to: number },
): { completions: number; lags: number[] } {
  const lags: number[] = [];
  let completions = 0;
  let j = 0;
  for (let n = 1; n <= finishes.length; n++) {
    const ended = finishes[n - 1] as number;
    while (j < shown.length && (shown[j] as readonly [number, number])[1] < n) j++;
    if (ended < window.from || ended > window.to) continue;
    completions++;
    const at = shown[j];
    if (at) lags.push(Math.max(0, at[0] - ended));
  }
  return { completions, lags };
}
