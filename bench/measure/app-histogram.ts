/**
 * The app's own record of task latency (accepted → result), read where the
 * app keeps it: the HDR histograms every process flushes to Redis once a
 * second (src/metrics/recorder.ts). Two snapshots subtracted give exactly the
 * tasks of one measured window, to set beside the harness's figures.
 */
import Redis from "ioredis";
import { addEncoded, createDurationHistogram, type Histogram } from "../../src/metrics/histogram";
import { metricsKeys } from "../../src/metrics/recorder";

export interface AppHistogramReader {
  snapshot(): Promise<Histogram>;
  close(): void;
}

export function createAppHistogramReader(redisUrl: string, prefix = "metrics"): AppHistogramReader {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 2000 });
  redis.on("error", () => {}); // a failed command rejects with the reason; no second report
  const key = metricsKeys(prefix).histogram("latency");
  return {
    async snapshot() {
      const merged = createDurationHistogram();
      for (const encoded of Object.values(await redis.hgetall(key))) addEncoded(merged, encoded);
      return merged;
    },
    close: () => redis.disconnect(),
  };
}

/** after − before: the window's histogram. */
export function windowOf(before: Histogram, after: Histogram): Histogram {
  const window = createDurationHistogram();
  window.add(after);
  window.subtract(before);
  return window;
}
