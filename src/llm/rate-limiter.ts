/**
 * The global rate limit toward the LLM (LLM_RATE_LIMIT, e.g. 60/60s), shared
 * by every worker of every process through one Redis key: GCRA (the generic
 * cell rate algorithm, util/gcra.ts) in a Lua script, so admission is one
 * atomic round trip and the state is a single timestamp. By default calls are spread evenly (no
 * burst): 60/60s admits one call a second, so whatever window the provider
 * counts in, it never sees more than the limit. LLM_RATE_BURST = B lets up to
 * B calls go at once above that spacing (GCRA's burst tolerance, B intervals):
 * the average rate is the same, any window of the period sees at most the
 * limit + B calls, and a burst of jobs (a Kafka consumer's chunk) is not made
 * to wait its length × the interval. A caller over the limit books
 * the next free slot (up to BOOKING_HORIZON_MS ahead) and sleeps to it on a
 * timer (never blocking the event loop): one round trip per call, however
 * long the backlog. Past the horizon it sleeps and asks again. The job is
 * delayed, never failed.
 */
import type Redis from "ioredis";
import { sleep } from "../util/backoff";
import { createGcraReservation } from "../util/gcra";

/**
 * How far ahead a call may book its slot. Far enough that, at the rates the adaptive worker runs at, waiting
 * calls book once and sleep (no herd asking Redis again at every slot); near enough that a booked call is not
 * held past its job's time, and that a lowered limit (PUT /admin/rate-limit) applies within about this long.
 */
const BOOKING_HORIZON_MS = 2000;

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
  /** Calls that may go at once above the even spacing (LLM_RATE_BURST); 0 or absent: none. */
  burst?: number;
}): RateLimiter {
  const { redis, limit, key = "llm:ratelimit", burst = 0 } = deps;
  if (!limit) return UNLIMITED;
  const current = typeof limit === "function" ? limit : () => limit;
  const reserve = createGcraReservation(redis);

  return {
    async waitForSlot({ signal } = {}) {
      const started = performance.now();
      for (;;) {
        signal?.throwIfAborted();
        const now = current();
        if (!now) return performance.now() - started;
        const interval = now.periodMs / now.calls;
        // One round trip per call: the next free slot is booked and slept to, unless it is beyond the horizon.
        const { booked, waitMs } = await reserve(
          key,
          interval,
          burstToleranceMs(burst, interval),
          Math.max(BOOKING_HORIZON_MS, interval),
        );
        if (booked) {
          if (waitMs > 0) await sleep(waitMs, signal);
          return performance.now() - started;
        }
        // A little jitter so that waiters woken together do not all ask at the same millisecond.
        await sleep(waitMs + Math.random() * Math.min(interval, 10), signal);
      }
    },
  };
}

/**
 * GCRA's burst tolerance for `burst` calls above the even spacing. Also what a
 * reader of the limiter's state (the Kafka consumer's backpressure) must allow
 * for: with a burst, a theoretical arrival time up to this far ahead still admits a call now.
 */
export function burstToleranceMs(burst: number, intervalMs: number): number {
  return Math.max(0, burst) * intervalMs;
}
