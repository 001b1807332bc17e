/**
 * A latency distribution, as SIMULATED_LATENCY_MS, the mock OpenAI server's
 * --latency and `bun bench --latency` write it:
 *
 *   50                   fixed, ms
 *   20-80                uniform between two bounds
 *   lognormal:1000:4000  log-normal with a median of 1000 ms and a P99 of 4000 ms
 *
 * Real LLM calls are log-normal-ish: most near the median, a long tail
 * (a long answer, a busy provider). Its mean is median × e^(σ²/2), above the
 * median: what Little's law needs for jobs in flight.
 */

export type LatencyDistribution =
  | { readonly min: number; readonly max: number }
  | { readonly median: number; readonly p99: number };

/** The spec's pattern (without anchors), for the config schema and the bench's flags. */
export const LATENCY_PATTERN = "[0-9]{1,6}(-[0-9]{1,6})?|lognormal:[0-9]{1,6}:[0-9]{1,7}";
export const LATENCY_DESCRIPTION =
  "milliseconds, fixed (50), uniform between two bounds (20-80), or log-normal lognormal:MEDIAN:P99 (lognormal:1000:4000)";

/** z of the 99th percentile of the standard normal distribution. */
const Z99 = 2.3263478740408408;

/** Undefined when the spec is not one of the forms above, or its numbers are out of order. */
export function parseLatency(spec: string): LatencyDistribution | undefined {
  const log = /^lognormal:(\d+):(\d+)$/.exec(spec);
  if (log) {
    const median = Number(log[1]);
    const p99 = Number(log[2]);
    return median > 0 && p99 >= median ? { median, p99 } : undefined;
  }
  const range = /^(\d+)(?:-(\d+))?$/.exec(spec);
  if (!range) return undefined;
  const min = Number(range[1]);
  const max = range[2] === undefined ? min : Number(range[2]);
  return max >= min ? { min, max } : undefined;
}

/** σ of the log-normal whose P99 / median is the given ratio. */
export function lognormalSigma(median: number, p99: number): number {
  return Math.log(p99 / median) / Z99;
}

/** The distribution's mean, ms. */
export function meanLatency(d: LatencyDistribution): number {
  if ("median" in d) return d.median * Math.exp(lognormalSigma(d.median, d.p99) ** 2 / 2);
  return (d.min + d.max) / 2;
}

/** Draws latencies, ms. */
export function latencySampler(d: LatencyDistribution, random: () => number = Math.random): () => number {
  if ("median" in d) {
    const mu = Math.log(d.median);
    const sigma = lognormalSigma(d.median, d.p99);
    return () => {
      // Box-Muller; 1 - u keeps the log away from 0.
      const u = 1 - random();
      const v = random();
      const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
      return Math.exp(mu + sigma * z);
    };
  }
  const { min, max } = d;
  return () => min + random() * (max - min);
}

export function describeLatency(d: LatencyDistribution): string {
  if ("median" in d) return `log-normal, median ${d.median} ms, P99 ${d.p99} ms`;
  return d.min === d.max ? `${d.min} ms` : `${d.min}-${d.max} ms`;
}
