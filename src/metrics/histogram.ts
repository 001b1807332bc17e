/**
 * Duration histograms (HDR), one configuration for every process, so that a histogram encoded by one process
 * can be added to one built by another (each process's field in Redis hashes: histogram-hashes.ts).
 *
 * Unit: microseconds, 1 µs .. 1 h, 3 significant digits (at most 0.1 % error).
 * Microseconds rather than milliseconds because a cache hit is often done in
 * well under 1 ms, and in ms all of those would land in one bucket. A duration
 * above 1 h is recorded as 1 h rather than thrown away, so counts stay exact.
 * Figures are reported in ms.
 *
 * The pure JS implementation (no WebAssembly): its memory is the GC's, so a
 * histogram that is dropped needs no destroy() (which is a no-op for it); the
 * code still calls destroy() on temporaries, so switching implementations
 * cannot leak.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from "hdr-histogram-js";

export type { Histogram } from "hdr-histogram-js";

const HIGHEST_US = 3_600_000_000;
/** 64-bit (float) counts: cumulative histograms of long-lived clusters must never overflow a bucket. */
const BIT_BUCKET_SIZE = 64;

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

/** Records a duration given in ms (fractions kept to the µs, rounded up, at least 1 µs). */
export function recordMs(histogram: Histogram, ms: number): void {
  const us = Number.isFinite(ms) ? Math.ceil(ms * 1000) : HIGHEST_US;
  histogram.recordValue(Math.min(HIGHEST_US, Math.max(1, us)));
}

export function encodeHistogram(histogram: Histogram): string {
  return encodeIntoCompressedBase64(histogram);
}

/**
 * Adds an encoded histogram to `target` (subtracts it with `sign` -1). False
 * when the text is not a histogram of a compatible range (a corrupt or
 * foreign field), which the caller skips rather than failing a whole read.
 */
export function addEncoded(target: Histogram, encoded: string, sign: 1 | -1 = 1): boolean {
  let decoded: Histogram | undefined;
  try {
    decoded = decodeFromCompressedBase64(encoded, BIT_BUCKET_SIZE, false);
    if (sign === 1) target.add(decoded);
    else target.subtract(decoded);
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

/** Summary of the sum of encoded histograms (the fields of one hash); a field that does not decode is skipped. */
export function summarizeMerged(encoded: Iterable<string>): DurationSummary {
  const merged = createDurationHistogram();
  try {
    for (const text of encoded) addEncoded(merged, text);
    return summarize(merged);
  } finally {
    merged.destroy();
  }
}
