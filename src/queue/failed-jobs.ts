/**
 * Failed jobs are kept for inspection (Bee-Queue's removeOnFailure: false,
 * with their stack traces), but not for ever: without a bound, `bq:{queue}:failed`
 * and the jobs hash grew with every failure of a deployment's life. A worker
 * records when each job failed for good in a sorted set beside Bee-Queue's
 * keys, and every minute one Lua call per queue drops the failed jobs past
 * JOB_FAILED_MAX_AGE_SECONDS and the oldest beyond JOB_FAILED_KEEP. The
 * task's own record (its FAILURE and error, result:{task_id}) is untouched:
 * clients still read it for RESULT_TTL_SECONDS.
 */
import type Redis from "ioredis";
import type { Logger } from "../log";
import { defineScript } from "../redis/script";
import { type QueueKeys, queueKeys } from "./bee-queue-layout";

/** Sorted set of the queue's failed job ids, scored by the epoch ms they failed for good. */
export const failedAtKey = (keys: QueueKeys) => `${keys.failed}_at`;

/*
 * KEYS[1] bq:{queue}:failed_at   KEYS[2] bq:{queue}:failed   KEYS[3] bq:{queue}:jobs
 * ARGV[1] drop jobs that failed before this epoch ms   ARGV[2] jobs to keep at most
 * Returns how many jobs it dropped. At most 1000 per call: a backlog drains over a few minutes.
 */
const PRUNE = defineScript<number>(
  "pruneFailedJobs",
  `
local old = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", "(" .. ARGV[1], "LIMIT", 0, 1000)
local extra = redis.call("ZCARD", KEYS[1]) - #old - tonumber(ARGV[2])
local ids = old
if extra > 0 then
  local oldest = redis.call("ZRANGE", KEYS[1], #old, #old + math.min(extra, 1000 - #old) - 1)
  for _, id in ipairs(oldest) do ids[#ids + 1] = id end
end
for _, id in ipairs(ids) do
  redis.call("ZREM", KEYS[1], id)
  redis.call("SREM", KEYS[2], id)
  redis.call("HDEL", KEYS[3], id)
end
return #ids
`,
);

export interface FailedJobRetention {
  /** Records that a job failed for good (called from the queue's 'failed' event). */
  failed(queue: string, jobId: string, at?: number): Promise<void>;
  /** Drops what is past the bounds now; returns how many jobs per queue. */
  prune(now?: number): Promise<Record<string, number>>;
  start(): void;
  stop(): void;
}

export function createFailedJobRetention(deps: {
  redis: Redis;
  queues: readonly string[];
  keep: number;
  maxAgeMs: number;
  logger: Logger;
  keyPrefix?: string;
  intervalMs?: number;
}): FailedJobRetention {
  const { redis, queues, keep, maxAgeMs, logger, keyPrefix, intervalMs = 60_000 } = deps;
  const keysOf = (queue: string) => queueKeys(queue, keyPrefix);
  let timer: ReturnType<typeof setInterval> | undefined;

  const retention: FailedJobRetention = {
    async failed(queue, jobId, at = Date.now()) {
      await redis.zadd(failedAtKey(keysOf(queue)), at, jobId);
    },
    async prune(now = Date.now()) {
      const dropped: Record<string, number> = {};
      for (const queue of queues) {
        const keys = keysOf(queue);
        dropped[queue] = await PRUNE.run(redis, [failedAtKey(keys), keys.failed, keys.jobs], [now - maxAgeMs, keep]);
      }
      return dropped;
    },
    start() {
      timer ??= setInterval(() => {
        retention.prune().then(
          (dropped) => {
            const total = Object.values(dropped).reduce((sum, n) => sum + n, 0);
            if (total > 0) logger.info({ dropped, keep, max_age_ms: maxAgeMs }, "failed jobs past retention dropped");
          },
          (error: unknown) => logger.warn({ err: error }, "failed-job retention: prune failed; next try in a minute"),
        );
      }, intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
  return retention;
}
