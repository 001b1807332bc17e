/**
 * Enqueues a batch of Kafka tasks into a Bee-Queue queue so that a
 * redelivered event never becomes a second job, even after the first job has
 * finished and been removed (Bee-Queue's own addJob only refuses ids it still
 * stores). A Lua script sets a marker `{prefix}:{task_id}` with a TTL per
 * job and adds the job only when the marker was new, atomically: a marker
 * never exists without its job. One script call per chunk: one round trip
 * per batch.
 *
 * The job record is written in Bee-Queue's own format (Job#toData), so Bee-Queue
 * workers run it as any other job.
 */
import type Redis from "ioredis";
import { jobRecord, QUEUE_KEY_PREFIX, queueKeys } from "../queue/bee-queue-layout";
import { defineScript, execChecked } from "../redis/script";
import type { TaskJob } from "../task/contract";

/*
 * KEYS[1] bq:{queue}:jobs   KEYS[2] bq:{queue}:waiting
 * ARGV[1] marker key prefix ("ingest:seen:")   ARGV[2] marker TTL seconds
 * ARGV[3..] pairs: task id, job record (JSON)
 * Returns the waiting list's length after the push (backpressure reads it at
 * no extra round trip), then the 1-based positions of the jobs seen before
 * (marker present, or the id still in the queue): usually none.
 * One script call for the whole chunk: a call per job cost ~3x the time in
 * Redis command overhead. HSETNX both checks and writes the job (one command
 * instead of HEXISTS + HSET). The marker keys are not in KEYS: Bee-Queue
 * itself needs a non-cluster Redis (its scripts touch keys across slots), so
 * this adds no new constraint.
 */
const ADD_ONCE = defineScript<number[]>(
  "ingestAddOnce",
  `
local ids = {}
local reply = { 0 }
local position = 0
for i = 3, #ARGV, 2 do
  position = position + 1
  local id = ARGV[i]
  if redis.call("SET", ARGV[1] .. id, "1", "NX", "EX", ARGV[2]) and redis.call("HSETNX", KEYS[1], id, ARGV[i + 1]) == 1 then
    ids[#ids + 1] = id
  else
    reply[#reply + 1] = position
  end
end
if #ids > 0 then reply[1] = redis.call("LPUSH", KEYS[2], unpack(ids)) else reply[1] = redis.call("LLEN", KEYS[2]) end
return reply
`,
);

export interface BatchEnqueueResult {
  added: number;
  duplicates: number;
  /** The task ids that were already known, in input order. */
  duplicateIds: string[];
  /** Jobs waiting in the queue right after this batch went in. */
  waiting: number;
}

export interface IdempotentEnqueuer {
  /** Resolves once every job of the batch is in Redis (or known as a duplicate); rejects when Redis did not take the batch. */
  enqueueBatch(jobs: readonly TaskJob[]): Promise<BatchEnqueueResult>;
}

export const DEFAULT_MARKER_PREFIX = "ingest:seen";

export function createIdempotentEnqueuer(deps: {
  redis: Redis;
  queue: string;
  retries: number;
  backoffMs: number;
  /** How long a task id is remembered; longer than any redelivery can come (retention, a consumer down). */
  markerTtlSeconds: number;
  markerPrefix?: string;
  queueKeyPrefix?: string;
}): IdempotentEnqueuer {
  const { redis, queue, retries, backoffMs, markerTtlSeconds } = deps;
  const markerPrefix = deps.markerPrefix ?? DEFAULT_MARKER_PREFIX;
  const queuePrefix = deps.queueKeyPrefix ?? QUEUE_KEY_PREFIX;
  const { jobs: jobsKey, waiting: waitingKey } = queueKeys(queue, queuePrefix);
  // unpack() of LPUSH arguments is bounded by Lua's stack (LUAI_MAXCSTACK 8000): stay well below.
  const maxPerCall = 2000;

  return {
    async enqueueBatch(jobs) {
      if (jobs.length === 0)
        return { added: 0, duplicates: 0, duplicateIds: [], waiting: await redis.llen(waitingKey) };
      const now = Date.now();
      const pipeline = redis.pipeline();
      const calls: number[] = [];
      for (let from = 0; from < jobs.length; from += maxPerCall) {
        calls.push(from);
        const args: string[] = [];
        for (const job of jobs.slice(from, from + maxPerCall))
          args.push(job.task_id, jobRecord(job, { now, retries, backoffMs }));
        ADD_ONCE.queue(redis, pipeline, [jobsKey, waitingKey], [`${markerPrefix}:`, markerTtlSeconds, ...args]);
      }
      const replies = await execChecked(pipeline);
      if (replies.length !== calls.length) throw new Error(`Redis answered ${replies.length} of ${calls.length} calls`);
      const duplicateIds: string[] = [];
      let waiting = 0;
      replies.forEach((reply, call) => {
        const [length, ...positions] = reply as number[];
        waiting = length ?? 0;
        const from = calls[call] as number;
        for (const position of positions) duplicateIds.push((jobs[from + position - 1] as TaskJob).task_id);
      });
      return { added: jobs.length - duplicateIds.length, duplicates: duplicateIds.length, duplicateIds, waiting };
    },
  };
}
