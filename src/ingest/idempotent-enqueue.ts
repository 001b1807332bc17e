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
import { JITTER_BACKOFF, QUEUE_KEY_PREFIX } from "../queue/queues";
import type { TaskJob } from "../queue/task-job";

/*
 * KEYS[1] bq:{queue}:jobs   KEYS[2] bq:{queue}:waiting
 * ARGV[1] marker key prefix ("ingest:seen:")   ARGV[2] marker TTL seconds
 * ARGV[3..] pairs: task id, job record (JSON)
 * Returns one flag per job: 1 added, 0 seen before (marker present, or the id still in the queue),
 * then the waiting list's length after the push (backpressure reads it at no extra round trip).
 * One script call for the whole chunk: a call per job cost ~3x the time in
 * Redis command overhead. The marker keys are not in KEYS: Bee-Queue itself
 * needs a non-cluster Redis (its scripts touch keys across slots), so this
 * adds no new constraint.
 */
const ADD_ONCE_SCRIPT = `
local added = {}
local ids = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local flag = 0
  if redis.call("SET", ARGV[1] .. id, "1", "NX", "EX", ARGV[2]) and redis.call("HEXISTS", KEYS[1], id) == 0 then
    redis.call("HSET", KEYS[1], id, ARGV[i + 1])
    ids[#ids + 1] = id
    flag = 1
  end
  added[#added + 1] = flag
end
local waiting
if #ids > 0 then waiting = redis.call("LPUSH", KEYS[2], unpack(ids)) else waiting = redis.call("LLEN", KEYS[2]) end
added[#added + 1] = waiting
return added
`;

type ScriptClient = Redis & {
  ingestAddOnce(jobs: string, waiting: string, ...args: (string | number)[]): Promise<number[]>;
};

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
  if (!("ingestAddOnce" in redis)) redis.defineCommand("ingestAddOnce", { numberOfKeys: 2, lua: ADD_ONCE_SCRIPT });
  const client = redis as ScriptClient;
  const jobsKey = `${queuePrefix}:${queue}:jobs`;
  const waitingKey = `${queuePrefix}:${queue}:waiting`;
  // unpack() of LPUSH arguments is bounded by Lua's stack (LUAI_MAXCSTACK 8000): stay well below.
  const maxPerCall = 2000;

  const record = (job: TaskJob, now: number) =>
    JSON.stringify({
      data: job,
      options: { timestamp: now, stacktraces: [], retries, backoff: { strategy: JITTER_BACKOFF, delay: backoffMs } },
      status: "created",
      progress: 0,
    });

  return {
    async enqueueBatch(jobs) {
      if (jobs.length === 0)
        return { added: 0, duplicates: 0, duplicateIds: [], waiting: await redis.llen(waitingKey) };
      const now = Date.now();
      const pipeline = client.pipeline() as unknown as Pick<ScriptClient, "ingestAddOnce"> & {
        exec(): ReturnType<Redis["exec"]>;
      };
      for (let from = 0; from < jobs.length; from += maxPerCall) {
        const args: string[] = [];
        for (const job of jobs.slice(from, from + maxPerCall)) args.push(job.task_id, record(job, now));
        pipeline.ingestAddOnce(jobsKey, waitingKey, `${markerPrefix}:`, markerTtlSeconds, ...args);
      }
      const replies = (await pipeline.exec()) ?? [];
      const flags: number[] = [];
      let waiting = 0;
      for (const [error, reply] of replies) {
        if (error) throw error;
        const values = reply as number[];
        waiting = values[values.length - 1] ?? 0;
        for (let i = 0; i < values.length - 1; i++) flags.push(values[i] as number);
      }
      if (flags.length !== jobs.length) throw new Error(`Redis answered ${flags.length} of ${jobs.length} jobs`);
      const duplicateIds = jobs.filter((_, i) => flags[i] !== 1).map((job) => job.task_id);
      return { added: jobs.length - duplicateIds.length, duplicates: duplicateIds.length, duplicateIds, waiting };
    },
  };
}
