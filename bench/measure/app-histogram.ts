/**
 * The app's own record of task latency (accepted → result), and of its LLM
 * calls' latency (what the provider took, the rate limiter's wait excluded), read where the
 * app keeps them: the bucket counters every process adds to in Redis once a second
 * (src/metrics/recorder.ts). Two snapshots subtracted give exactly the tasks
 * of one measured window, to set beside the harness's figures.
 */
import Redis from "ioredis";
import { type Histogram, histogramOfCounters } from "../../src/metrics/histogram";
import { metricsKeys } from "../../src/metrics/keys";

/** A histogram's counters at one moment (null: none yet). */
export type Counters = Buffer | null;

export interface AppSnapshot {
  /** Accepted → result. */
  latency: Counters;
  /** Started → ended on a worker (the LLM call, its wait for the rate limiter, the result's write). */
  processing: Counters;
  /** The LLM calls. */
  llm: Counters;
  /** ms the LLM calls waited for the global rate limiter (LLM_RATE_LIMIT), summed. */
  rateLimitedWaitMs: number;
}

export interface AppHistogramReader {
  snapshot(): Promise<AppSnapshot>;
  close(): void;
}

export function createAppHistogramReader(redisUrl: string, prefix = "metrics"): AppHistogramReader {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 2000 });
  redis.on("error", () => {}); // a failed command rejects with the reason; no second report
  const keys = metricsKeys(prefix);
  return {
    snapshot: async () => {
      const [[latency, processing, llm], waited] = await Promise.all([
        redis.mgetBuffer(keys.histogram("latency"), keys.histogram("processing"), keys.histogram("llm")),
        redis.hget(keys.counters, "rate_limited_wait_ms"),
      ]);
      return {
        latency: latency ?? null,
        processing: processing ?? null,
        llm: llm ?? null,
        rateLimitedWaitMs: Number(waited ?? 0),
      };
    },
    close: () => redis.disconnect(),
  };
}

/** after − before, counter by counter: the window's histogram, its max included (the top of its highest bucket). */
export function windowOf(before: Counters, after: Counters): Histogram {
  return histogramOfCounters(after, before);
}
