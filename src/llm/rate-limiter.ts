/**
 * The global rate limit toward the LLM (LLM_RATE_LIMIT, e.g. 60/60s), shared
 * by every worker of every process through one Redis key: GCRA (the generic
 * cell rate algorithm, util/gcra.ts) in a Lua script, so admission is one
 * atomic round trip and the state is a single timestamp. Calls are spread evenly (no
 * burst): 60/60s admits one call a second, so whatever window the provider
 * counts in, it never sees more than the limit. A caller over the limit is told
 * how long to wait and sleeps on a timer (never blocking the event loop),
 * then asks again; the job is delayed, never failed.
 */
import type Redis from "ioredis";
import { sleep } from "../util/backoff";
import { createGcra } from "../util/gcra";

export interface RateLimiter {
  /** Resolves when a call may go, with the ms it waited (0 when it did not). */
  waitForSlot(options?: { signal?: AbortSignal }): Promise<number>;
}

export const UNLIMITED: RateLimiter = { waitForSlot: async () => 0 };

export interface RateLimit {
  calls: number;
  periodMs: number;
}

/**
 * `limit` is read at each call when it is a function: the limit an operator
 * sets at run time (store/control.ts) applies to the next call. Undefined:
 * no limit, and no Redis round trip.
 */
export function createRateLimiter(deps: {
  redis: Redis;
  limit: RateLimit | undefined | (() => RateLimit | undefined);
  key?: string;
}): RateLimiter {
  const { redis, limit, key = "llm:ratelimit" } = deps;
  if (!limit) return UNLIMITED;
  const current = typeof limit === "function" ? limit : () => limit;
  const attempt = createGcra(redis);

  return {
    async waitForSlot({ signal } = {}) {
      const started = performance.now();
      for (;;) {
        signal?.throwIfAborted();
        const now = current();
        if (!now) return performance.now() - started;
        const interval = now.periodMs / now.calls;
        const wait = await attempt(key, interval, 0);
        if (wait <= 0) return performance.now() - started;
        // A little jitter so that waiters woken together do not all ask at the same millisecond.
        await sleep(wait + Math.random() * Math.min(interval, 10), signal);
      }
    },
  };
}
