/**
 * The histogram counters the recorders add to in Redis are hdr-histogram-js's
 * own buckets: a duration's counter is the library's counts-array index, and
 * a histogram rebuilt from the counters gives the summary of one fed every
 * raw sample.
 */
import { describe, expect, test } from "bun:test";
import {
  counterOfMs,
  createDurationHistogram,
  cumulativeBuckets,
  type Histogram,
  histogramOfCounters,
  recordMs,
  summarize,
  summarizeCounters,
} from "../../src/metrics/histogram";

/** Not in the library's public types, but where it counts a value. */
const indexOf = (histogram: Histogram, us: number) =>
  (histogram as unknown as { countsArrayIndex(value: number): number }).countsArrayIndex(us);

let seed = 5;
const random = () => {
  seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
  return seed / 2 ** 32;
};

/** Counters as Redis's BITFIELD i64 keeps them: 8 bytes each, big-endian. */
function countersOf(counts: Map<number, number>): Buffer {
  const buffer = Buffer.alloc(8 * (Math.max(0, ...counts.keys()) + 1));
  for (const [index, count] of counts) buffer.writeBigInt64BE(BigInt(count), index * 8);
  return buffer;
}

describe("histogram counters", () => {
  test("a duration's counter is hdr-histogram-js's counts-array index, at every power of two and between", () => {
    const reference = createDurationHistogram();
    const us = new Set<number>();
    for (let v = 1; v <= 8192; v++) us.add(v);
    for (let k = 11; k < 32; k++) for (const d of [-1, 0, 1]) us.add(2 ** k + d);
    for (let i = 0; i < 20_000; i++) us.add(Math.ceil(3.6e9 ** random()));
    for (const v of us) expect(counterOfMs(v / 1000)).toBe(indexOf(reference, Math.ceil((v / 1000) * 1000)));
    // Outside the range: clamped to 1 µs and 1 h, as recordMs does.
    expect(counterOfMs(0)).toBe(1);
    expect(counterOfMs(-5)).toBe(1);
    const top = counterOfMs(Number.POSITIVE_INFINITY);
    expect(top).toBe(indexOf(reference, 3_600_000_000));
    expect(summarizeCounters(countersOf(new Map([[top, 2]]))).max).toBeGreaterThanOrEqual(3_600_000);
  });

  test("counters give the percentiles, mean and count of a histogram of the raw samples, and its max within 0.1 %", () => {
    const raw = createDurationHistogram();
    const counts = new Map<number, number>();
    for (let i = 0; i < 50_000; i++) {
      const ms = 0.001 * 3.6e9 ** random();
      recordMs(raw, ms);
      const index = counterOfMs(ms);
      counts.set(index, (counts.get(index) ?? 0) + 1);
    }
    const { max, ...rest } = summarizeCounters(countersOf(counts));
    const { max: rawMax, ...rawRest } = summarize(raw);
    expect(rest).toEqual(rawRest);
    // The top of the highest bucket, which is HDR's 100th percentile.
    expect(max).toBe(raw.getValueAtPercentile(100) / 1000);
    expect(max).toBeGreaterThanOrEqual(rawMax);
    expect(max).toBeLessThanOrEqual(rawMax * 1.001);
    const rebuilt = histogramOfCounters(countersOf(counts));
    for (const p of [1, 10, 50, 90, 99, 99.9, 99.99, 100]) {
      expect(rebuilt.getValueAtPercentile(p)).toBe(raw.getValueAtPercentile(p));
    }
  });

  test("a later read less an earlier one is the histogram of what was counted in between", () => {
    const before = countersOf(new Map([[1000, 5]]));
    const after = countersOf(
      new Map([
        [1000, 7],
        [5000, 3],
      ]),
    );
    const window = histogramOfCounters(after, before);
    expect(window.totalCount).toBe(5);
    expect(histogramOfCounters(null).totalCount).toBe(0);
    expect(histogramOfCounters(after, null).totalCount).toBe(10);
  });

  test("Prometheus buckets from the counters count the raw samples under each bound, off only for samples within 0.1 % under it", () => {
    const bounds = [0.001, 0.0025, 0.01, 0.1, 1, 10];
    const samples: number[] = [];
    for (let i = 0; i < 20_000; i++) samples.push(10 ** (random() * 5 - 3.5) * 1000);
    const counts = new Map<number, number>();
    for (const ms of samples) {
      const index = counterOfMs(ms);
      counts.set(index, (counts.get(index) ?? 0) + 1);
    }
    const buckets = cumulativeBuckets(countersOf(counts), bounds);
    expect(buckets.count).toBe(samples.length);
    bounds.forEach((bound, i) => {
      const exactBelow = samples.filter((ms) => ms / 1000 <= bound * 0.999).length;
      const exactAtOrBelow = samples.filter((ms) => ms / 1000 <= bound).length;
      // Only a sample within 0.1 % under a bound may land above it, never one over it below.
      expect(buckets.cumulative[i]).toBeGreaterThanOrEqual(exactBelow);
      expect(buckets.cumulative[i]).toBeLessThanOrEqual(exactAtOrBelow);
    });
    const exactSum = samples.reduce((sum, ms) => sum + ms / 1000, 0);
    expect(buckets.sumSeconds).toBeGreaterThanOrEqual(exactSum);
    expect(buckets.sumSeconds).toBeLessThanOrEqual(exactSum * 1.001);
    expect(cumulativeBuckets(null, bounds)).toEqual({
      bounds,
      cumulative: [0, 0, 0, 0, 0, 0],
      count: 0,
      sumSeconds: 0,
    });
  });
});
