/**
 * A circuit breaker per provider and model (issue 17 §3), shared by every
 * process through Redis: after `failures` consecutive failures (5xx, 429s
 * beyond the wait budget, timeouts, lost connections; never a 4xx of the
 * request) the circuit opens, and calls skip that model (the router falls
 * back, or the task waits in the queue) instead of each process paying a
 * timeout or an error to learn what another already knows. After
 * `cooldownMs` ONE call, in one process, is let through as a probe; its
 * success closes the circuit for all, its failure opens it for another
 * cooldown. Any success closes it.
 *
 * State: one hash per model, `{prefix}:{provider/model}` = state, failures,
 * opened_at, probe_until; time from Redis, so hosts' clocks never disagree.
 * Round trips: a healthy call costs one (admit: the circuit is closed with
 * no failure counted, so its success records nothing); a failure, a probe or
 * a success after failures cost one more.
 */
import type Redis from "ioredis";
import { defineScript } from "../redis/script";

/**
 * KEYS[1] the model's circuit   ARGV[1] cooldown ms   ARGV[2] probe lease ms
 * Returns {"closed", failures} | {"open", ms until a probe may go} | {"probe", 0} (this call is the probe).
 */
const ADMIT = defineScript<[string, number]>(
  "breakerAdmit",
  `
local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call("HMGET", KEYS[1], "state", "failures", "opened_at", "probe_until")
if state[1] ~= "open" then return {"closed", tonumber(state[2] or "0")} end
local ready = tonumber(state[3]) + tonumber(ARGV[1])
if now < ready then return {"open", ready - now} end
local probe = tonumber(state[4] or "0")
if probe > now then return {"open", probe - now} end
redis.call("HSET", KEYS[1], "probe_until", now + tonumber(ARGV[2]))
return {"probe", 0}
`,
);

/**
 * KEYS[1] the model's circuit   ARGV[1] "1" success, "0" failure   ARGV[2] failures that open it
 * ARGV[3] "1" when the call was the probe   ARGV[4] ms the state outlives its last change
 * Returns what changed: "closed" (it was open), "opened", "reopened" (a probe failed), or "" for nothing.
 */
const RECORD = defineScript<string>(
  "breakerRecord",
  `
local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call("HGET", KEYS[1], "state")
if ARGV[1] == "1" then
  redis.call("DEL", KEYS[1])
  if state == "open" then return "closed" end
  return ""
end
if state == "open" then
  -- A failure of a call let in before the circuit opened changes nothing; a failed probe waits another cooldown.
  if ARGV[3] ~= "1" then return "" end
  redis.call("HSET", KEYS[1], "opened_at", now, "probe_until", 0)
  redis.call("PEXPIRE", KEYS[1], ARGV[4])
  return "reopened"
end
local failures = redis.call("HINCRBY", KEYS[1], "failures", 1)
redis.call("PEXPIRE", KEYS[1], ARGV[4])
if failures >= tonumber(ARGV[2]) then
  redis.call("HSET", KEYS[1], "state", "open", "opened_at", now, "probe_until", 0)
  return "opened"
end
return ""
`,
);

export type Admission = { go: true; probe: boolean; failures: number } | { go: false; retryAfterMs: number };
export type BreakerChange = "opened" | "reopened" | "closed";

export interface CircuitBreaker {
  admit(model: string): Promise<Admission>;
  /** Records a call's outcome; resolves to the circuit's change, if any. */
  record(model: string, admission: Admission & { go: true }, ok: boolean): Promise<BreakerChange | undefined>;
}

/** No breaker (LLM_BREAKER_FAILURES=0): every call goes, nothing is recorded. */
export const NO_BREAKER: CircuitBreaker = {
  admit: async () => ({ go: true, probe: false, failures: 0 }),
  record: async () => undefined,
};

export function createCircuitBreaker(deps: {
  redis: Redis;
  failures: number;
  cooldownMs: number;
  /** How long a probe holds its turn; a probe that never reports lets another go after it. Default: the cooldown. */
  probeLeaseMs?: number;
  prefix?: string;
}): CircuitBreaker {
  const { redis, failures, cooldownMs, probeLeaseMs = cooldownMs, prefix = "llm:breaker" } = deps;
  if (failures <= 0) return NO_BREAKER;
  // Long enough that a run of failures spread over a few cooldowns still counts as consecutive.
  const ttlMs = Math.max(10 * cooldownMs, 60_000);
  return {
    async admit(model) {
      const [state, value] = await ADMIT.run(redis, [`${prefix}:${model}`], [cooldownMs, probeLeaseMs]);
      if (state === "open") return { go: false, retryAfterMs: Number(value) };
      return { go: true, probe: state === "probe", failures: Number(value) };
    },
    async record(model, admission, ok) {
      // The common case costs nothing: a success while closed with no failure counted.
      if (ok && !admission.probe && admission.failures === 0) return undefined;
      const change = await RECORD.run(
        redis,
        [`${prefix}:${model}`],
        [ok ? "1" : "0", failures, admission.probe ? "1" : "0", ttlMs],
      );
      return change === "" ? undefined : (change as BreakerChange);
    },
  };
}
