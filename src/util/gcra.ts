/**
 * GCRA (the generic cell rate algorithm) in Redis: one atomic round trip per
 * decision, and the state of a limit is a single timestamp (its theoretical
 * arrival time, TAT). Shared by the LLM's global rate limit (llm/rate-limiter.ts)
 * and the API's per-client limit (api/client-limits.ts).
 */
import type Redis from "ioredis";
import { defineScript } from "../redis/script";

/**
 * KEYS[1] the limiter's key (its TAT, in ms)
 * ARGV[1] emission interval, ms (period / calls)   ARGV[2] burst tolerance, ms (0: evenly spaced)
 * Returns "0" when the call may go now (and books it), else the ms to wait, as a string to keep fractions.
 * Time comes from Redis so that clocks of different hosts never disagree.
 */
const GCRA = defineScript<string>(
  "gcraAttempt",
  `
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
`,
);

/*
 * The same limit, booked ahead: the caller takes the next free slot if it is at most ARGV[3] ms away and
 * sleeps until then, with no second round trip. Refused callers of the plain decision above all wake at
 * the one next slot and ask again, so under a backlog every admitted call cost a round trip per waiter.
 * KEYS[1] the limiter's key   ARGV[1] emission interval, ms   ARGV[2] burst tolerance, ms
 * ARGV[3] the farthest slot a caller may book, ms from now
 * Returns {1, ms until the booked slot} or {0, ms until a slot within reach}, as strings.
 */
const GCRA_RESERVE = defineScript<[number, string]>(
  "gcraReserve",
  `
local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > horizon then return {0, tostring(wait - horizon)} end
local next_tat = tat + interval
redis.call("SET", KEYS[1], tostring(next_tat), "PX", math.ceil(next_tat - now) + 1)
return {1, tostring(wait)}
`,
);

/**
 * Books the next slot of `key` when it is at most `horizonMs` away: `{ booked: true, waitMs }` (sleep that
 * long, then go), else `{ booked: false, waitMs }` (ask again after that long).
 */
export function createGcraReservation(
  redis: Redis,
): (
  key: string,
  intervalMs: number,
  toleranceMs: number,
  horizonMs: number,
) => Promise<{ booked: boolean; waitMs: number }> {
  return async (key, intervalMs, toleranceMs, horizonMs) => {
    const [booked, wait] = await GCRA_RESERVE.run(redis, [key], [intervalMs, toleranceMs, horizonMs]);
    return { booked: booked === 1, waitMs: Number(wait) };
  };
}

/**
 * One GCRA decision: 0 when a call under `key` may go now (and books it),
 * else the ms until it may. `tolerance` is the burst allowed, in ms of
 * intervals: 0 spaces calls evenly; (calls - 1) × interval admits a burst of
 * the whole period's calls.
 */
export function createGcra(redis: Redis): (key: string, intervalMs: number, toleranceMs: number) => Promise<number> {
  return async (key, intervalMs, toleranceMs) => Number(await GCRA.run(redis, [key], [intervalMs, toleranceMs]));
}
