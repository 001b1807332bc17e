/**
 * What `e2e` and `kafka` measure beside their own latencies, over the same
 * measured part: the app's own percentiles (accepted → result, its processing,
 * its LLM calls and their rate-limiter wait), the worker processes' jobs in
 * flight, and with --redis-stats what each task cost Redis. Returned as the
 * measurement's beforeMeasure/afterMeasure hooks.
 */
import { percentiles } from "../result";
import { type AppSnapshot, createAppHistogramReader, windowOf } from "./app-histogram";
import { createInFlightSampler } from "./in-flight";
import type { createRedisWindow } from "./redis-stats";

type RedisWindow = ReturnType<typeof createRedisWindow>;

export interface AppWindow {
  beforeMeasure: () => Promise<void>;
  afterMeasure: () => Promise<Record<string, number | string>>;
  close(): void;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** The app's figures from two snapshots of its histograms and counters. */
export function appFigures(before: AppSnapshot, after: AppSnapshot): Record<string, number> {
  const p = percentiles(windowOf(before.latency, after.latency));
  // The LLM's own latency in the same window: what a task's P99 is compared with.
  const llm = percentiles(windowOf(before.llm, after.llm));
  const processing = percentiles(windowOf(before.processing, after.processing));
  return {
    app_count: p.count,
    app_p50_ms: p.p50,
    app_p95_ms: p.p95,
    app_p99_ms: p.p99,
    app_max_ms: p.max,
    processing_p50_ms: processing.p50,
    processing_p99_ms: processing.p99,
    llm_p50_ms: llm.p50,
    llm_p99_ms: llm.p99,
    app_p99_over_llm_p99_ms: round1(p.p99 - llm.p99),
    rate_limit_wait_mean_ms: p.count === 0 ? 0 : round1((after.rateLimitedWaitMs - before.rateLimitedWaitMs) / p.count),
  };
}

export function createAppWindow(target: { url: string; redisUrl: string | undefined }, redis: RedisWindow | undefined) {
  const app = target.redisUrl ? createAppHistogramReader(target.redisUrl) : undefined;
  // The worker processes' jobs in flight over the measured part (GET /workers).
  const inFlight = createInFlightSampler(target.url);
  let before: AppSnapshot | undefined;
  const window: AppWindow = {
    async beforeMeasure() {
      if (app) {
        await Bun.sleep(1500); // the warm-up's last tasks reach the app's histogram (1 s flushes)
        before = await app.snapshot();
      }
      await redis?.start();
      await inFlight.start();
    },
    async afterMeasure() {
      const flight = inFlight.stop();
      // The Redis window closes first (after its own settling), so the histogram reads are not in it.
      const costs = { ...flight, ...((await redis?.stop()) ?? {}) };
      if (!app || !before) return costs;
      await Bun.sleep(redis ? 300 : 1500);
      return { ...appFigures(before, await app.snapshot()), ...costs };
    },
    close: () => app?.close(),
  };
  return window;
}
