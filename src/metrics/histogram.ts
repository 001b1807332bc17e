/**
 * Duration histograms, one layout for every process: HDR's log-linear buckets
 * (hdr-histogram-js), 1 µs .. 1 h, 3 significant digits (at most 0.1 % error).
 *
 * Across processes a histogram is a Redis string of 64-bit counters, one per
 * bucket at HDR's own counts-array index (keys.ts): each process adds what it
 * recorded since its last flush with one BITFIELD INCRBY per changed bucket.
 * Adding counts commutes, so nothing in Redis belongs to one process and
 * nothing ever has to be folded or cleaned up (issue 12). A string of
 * counters rather than a hash of bucket → count: Redis increments ~900
 * buckets in 0.5 ms as BITFIELD ops, 1-2 ms as HINCRBYs (3 ms from Lua), and
 * the reader GETs at most 188 KB and walks it, instead of parsing a hash of
 * thousands of fields (BENCHMARKS.md "Metrics flush").
 * The reader records each bucket's count into an HDR histogram of the same
 * layout, so percentiles and mean are the ones a histogram fed every raw
 * sample would give.
 *
 * Unit: microseconds, because a cache hit is often done in well under 1 ms
 * and in ms all of those would land in one bucket. A duration above 1 h is
 * recorded as 1 h rather than thrown away, so counts stay exact. Figures are
 * reported in ms.
 *
 * The pure JS implementation (no WebAssembly): its memory is the GC's, so a
 * histogram that is dropped needs no destroy() (a no-op for it); the code
 * still calls destroy() on temporaries, so switching implementations cannot leak.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from "hdr-histogram-js";

export type { Histogram } from "hdr-histogram-js";

const HIGHEST_US = 3_600_000_000;
/** 64-bit (float) counts: a deployment's cumulative counts must never overflow a bucket. */
const BIT_BUCKET_SIZE = 64;
/** HDR's sub-bucket half count for 3 significant digits from 1 µs: 2048 sub-buckets, 2^10 per half. */
const SUB_BUCKET_HALF_MAGNITUDE = 10;
const SUB_BUCKET_HALF = 2 ** SUB_BUCKET_HALF_MAGNITUDE;

export function createDurationHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
    bitBucketSize: BIT_BUCKET_SIZE,
    // A fixed range keeps every histogram's layout identical, so merging adds counts array to counts array.
    autoResize: false,
    useWebAssembly: false,
  });
}

/** A duration given in ms, in µs as recorded: fractions rounded up, at least 1 µs, at most 1 h. */
function toUs(ms: number): number {
  const us = Number.isFinite(ms) ? Math.ceil(ms * 1000) : HIGHEST_US;
  return Math.min(HIGHEST_US, Math.max(1, us));
}

export function recordMs(histogram: Histogram, ms: number): void {
  histogram.recordValue(toUs(ms));
}

/** HDR's bucket index of a value in µs: 0 below 2048 µs (1 µs apart), +1 per power of 2 above. */
const bucketOf = (us: number) => Math.max(Math.floor(Math.log2(us)) - SUB_BUCKET_HALF_MAGNITUDE, 0);

/**
 * The counter a duration in ms is counted in: hdr-histogram-js's counts-array
 * index (countsArrayIndex, not in its public types) for the layout above,
 * with the same arithmetic so the two never disagree.
 */
export function counterOfMs(ms: number): number {
  return counterOfUs(toUs(ms));
}

function counterOfUs(us: number): number {
  const bucket = bucketOf(us);
  return bucket * SUB_BUCKET_HALF + Math.floor(us / 2 ** bucket);
}

/** The highest µs value counted in counter `index` (HDR's highestEquivalentValue of valueFromIndex). */
function highestOfCounter(index: number): number {
  const bucket = Math.max(Math.floor(index / SUB_BUCKET_HALF) - 1, 0);
  const width = 2 ** bucket;
  return (index - bucket * SUB_BUCKET_HALF) * width + width - 1;
}

/** Bytes per counter in Redis: BITFIELD i64, big-endian. */
const COUNTER_BYTES = 8;
/** A counter as a number (exact below 2^53), without a BigInt per counter. */
const counterAt = (counters: Buffer, offset: number) =>
  counters.readInt32BE(offset) * 2 ** 32 + counters.readUInt32BE(offset + 4);

/**
 * The histogram of a string of counters (null: none yet), less the counts of
 * `minus` when given (an earlier read of the same string: what was counted
 * in between). Each count is recorded at its bucket's highest value, so the
 * max is the top of the highest bucket (at most 0.1 % above the largest
 * sample), as HDR reports every percentile: an exact max would need a
 * compare-and-set in Redis, where increments need none.
 */
export function histogramOfCounters(counters: Buffer | null, minus?: Buffer | null): Histogram {
  const histogram = createDurationHistogram();
  forEachBucket(counters, minus, (highestUs, count) => histogram.recordValueWithCount(highestUs, count));
  return histogram;
}

/** Calls `visit` with each non-empty bucket's highest value (µs) and count, lowest bucket first. */
function forEachBucket(
  counters: Buffer | null,
  minus: Buffer | null | undefined,
  visit: (highestUs: number, count: number) => void,
): void {
  // Counters past the one of 1 h are none of this layout's (a corrupt string): skipped.
  const length = Math.min(Math.floor((counters?.length ?? 0) / COUNTER_BYTES), counterOfUs(HIGHEST_US) + 1);
  for (let index = 0; counters && index < length; index++) {
    const offset = index * COUNTER_BYTES;
    let count = counterAt(counters, offset);
    if (minus && offset + COUNTER_BYTES <= minus.length) count -= counterAt(minus, offset);
    if (count > 0) visit(highestOfCounter(index), count);
  }
}

/** A histogram in Prometheus's shape: cumulative counts at fixed upper bounds, the total count and sum. */
export interface CumulativeBuckets {
  /** Upper bounds in seconds, ascending; +Inf is implied (its count is `count`). */
  readonly bounds: readonly number[];
  /** Samples ≤ each bound, cumulative, one per bound. */
  readonly cumulative: number[];
  readonly count: number;
  readonly sumSeconds: number;
}

/**
 * Prometheus buckets derived from a string of counters at export time, so an
 * aggregator can merge processes and compute any quantile over any window
 * (histogram_quantile of a rate), which pre-computed quantile gauges never
 * allow (issue 16). Each HDR bucket counts at its highest value, as
 * `summarize` does: a bucket that straddles a bound counts above it, an error
 * of at most 0.1 % of the bound. The sum is the same approximation (the
 * counters keep no exact sum), within 0.1 %.
 */
export function cumulativeBuckets(counters: Buffer | null, bounds: readonly number[]): CumulativeBuckets {
  const boundsUs = bounds.map((seconds) => Math.round(seconds * 1e6));
  const perBound = bounds.map(() => 0);
  let count = 0;
  let sumUs = 0;
  let bound = 0;
  forEachBucket(counters, undefined, (highestUs, n) => {
    // Buckets arrive in ascending order, so the bound only ever moves up.
    while (bound < boundsUs.length && highestUs > (boundsUs[bound] as number)) bound++;
    if (bound < bounds.length) perBound[bound] = (perBound[bound] as number) + n;
    count += n;
    sumUs += highestUs * n;
  });
  let running = 0;
  const cumulative = perBound.map((n) => {
    running += n;
    return running;
  });
  return { bounds, cumulative, count, sumSeconds: sumUs / 1e6 };
}

/** For the bench's result files: one histogram as one string. */
export function encodeHistogram(histogram: Histogram): string {
  return encodeIntoCompressedBase64(histogram);
}

/** Adds an encoded histogram to `target`; false (nothing added) when the text is not one of this layout. */
export function addEncoded(target: Histogram, encoded: string): boolean {
  let decoded: Histogram | undefined;
  try {
    decoded = decodeFromCompressedBase64(encoded, BIT_BUCKET_SIZE, false);
    target.add(decoded);
    return true;
  } catch {
    return false;
  } finally {
    decoded?.destroy();
  }
}

export interface DurationSummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
  count: number;
}

const toMs = (us: number) => Math.round(us) / 1000;

/** Percentiles, max and mean in ms; all 0 for an empty histogram. */
export function summarize(histogram: Histogram): DurationSummary {
  const count = histogram.totalCount;
  if (count === 0) return { p50: 0, p95: 0, p99: 0, max: 0, mean: 0, count: 0 };
  return {
    p50: toMs(histogram.getValueAtPercentile(50)),
    p95: toMs(histogram.getValueAtPercentile(95)),
    p99: toMs(histogram.getValueAtPercentile(99)),
    max: toMs(histogram.maxValue),
    mean: toMs(histogram.mean),
    count,
  };
}

/** Summary of a string of counters, as the recorders write it. */
export function summarizeCounters(counters: Buffer | null): DurationSummary {
  const histogram = histogramOfCounters(counters);
  try {
    return summarize(histogram);
  } finally {
    histogram.destroy();
  }
}
