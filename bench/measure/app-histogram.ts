/**
 * The app's own record of task latency (accepted → result), read where the
 * app keeps it: the bucket counters every process adds to in Redis once a second
 * (src/metrics/recorder.ts). Two snapshots subtracted give exactly the tasks
 * of one measured window, to set beside the harness's figures.
 */
import Redis from "ioredis";
import { type Histogram, histogramOfCounters } from "../../src/metrics/histogram";
import { metricsKeys } from "../../src/metrics/keys";

/** The latency histogram's counters at one moment (null: none yet). */
export type Counters = Buffer | null;

export interface AppHistogramReader {
  snapshot(): Promise<Counters>;
  close(): void;
}

export function createAppHistogramReader(redisUrl: string, prefix = "metrics"): AppHistogramReader {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 2000 });
  redis.on("error", () => {}); // a failed command rejects with the reason; no second report
  const key = metricsKeys(prefix).histogram("latency");
  return {
    snapshot: () => redis.getBuffer(key),
    close: () => redis.disconnect(),
  };
}

/** after − before, counter by counter: the window's histogram, its max included (the top of its highest bucket). */
export function windowOf(before: Counters, after: Counters): Histogram {
  return histogramOfCounters(after, before);
}
