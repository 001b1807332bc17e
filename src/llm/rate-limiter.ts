/**
 * The global rate limit toward the LLM (LLM_RATE_LIMIT, e.g. 60/60s), shared
 * by every worker of every process through one Redis key: GCRA (the generic
 * cell rate algorithm) in a Lua script, so admission is one atomic round
 * trip and the state is a single timestamp. Calls are spread evenly (no
 * burst): 60/60s admits one call a second, so whatever window the provider
 * counts in, it never sees more than the limit. A caller over the limit is told
 * how long to wait and sleeps on a timer (never blocking the event loop),
 * then asks again; the job is delayed, never failed.
 */
import type Redis from "ioredis";
import { sleep } from "../util/backoff";

/**
 * KEYS[1] the limiter's key (its theoretical arrival time, TAT, in ms)
 * ARGV[1] emission interval, ms (period / calls)   ARGV[2] burst tolerance, ms (0: evenly spaced)
 * Returns "0" when the call may go now (and books it), else the ms to wait, as a string to keep fractions.
 * Time comes from Redis so that clocks of different hosts never disagree.
 */
const GCRA_SCRIPT = `
local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
if tat < now then tat = now end
local allowed_at = tat - tolerance
if allowed_at > now then return tostring(allowed_at - now) end
local next_tat = tat + interval
redis.call("SET", KEYS[1], tostring(next_tat), "PX", math.ceil(next_tat - now) + 1)
return "0"
`;

type ScriptClient = Redis & { llmRateLimit(key: string, interval: number, tolerance: number): Promise<string> };

export interface RateLimiter {
  /** Resolves when a call may go, with the ms it waited (0 when it did not). */
  waitForSlot(options?: { signal?: AbortSignal }): Promise<number>;
}

export const UNLIMITED: RateLimiter = { waitForSlot: async () => 0 };

/**
 * One GCRA decision: 0 when a call under `key` may go now (and books it),
 * else the ms until it may. `tolerance` is the burst allowed, in ms of
 * intervals: 0 spaces calls evenly; (calls - 1) × interval admits a burst of
 * the whole period's calls.
 */
export function createGcra(redis: Redis): (key: string, intervalMs: number, toleranceMs: number) => Promise<number> {
  if (!("llmRateLimit" in redis)) redis.defineCommand("llmRateLimit", { numberOfKeys: 1, lua: GCRA_SCRIPT });
  const client = redis as ScriptClient;
  return async (key, intervalMs, toleranceMs) => Number(await client.llmRateLimit(key, intervalMs, toleranceMs));
}

export function createRateLimiter(deps: {
  redis: Redis;
  /** Undefined: no limit, and no Redis round trip. */
  limit: { calls: number; periodMs: number } | undefined;
  key?: string;
}): RateLimiter {
  const { redis, limit, key = "llm:ratelimit" } = deps;
  if (!limit) return UNLIMITED;
  const attempt = createGcra(redis);
  const interval = limit.periodMs / limit.calls;

  return {
    async waitForSlot({ signal } = {}) {
      const started = performance.now();
      for (;;) {
        signal?.throwIfAborted();
        const wait = await attempt(key, interval, 0);
        if (wait <= 0) return performance.now() - started;
        // A little jitter so that waiters woken together do not all ask at the same millisecond.
        await sleep(wait + Math.random() * Math.min(interval, 10), signal);
      }
    },
  };
}
