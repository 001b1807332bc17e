/**
 * Enqueues a batch of Kafka tasks into a Bee-Queue queue so that a
 * redelivered event never becomes a second job, even after the first job has
 * finished and been removed (Bee-Queue's own addJob only refuses ids it still
 * stores). One Lua script per job sets a marker `{prefix}:{task_id}` with a
 * TTL and adds the job only when the marker was new, atomically: a marker
 * never exists without its job. All scripts of a batch go in one pipeline:
 * one round trip per batch.
 *
 * The job record is written in Bee-Queue's own format (Job#toData), so Bee-Queue
 * workers run it as any other job.
 */
import type Redis from "ioredis";
import { JITTER_BACKOFF, QUEUE_KEY_PREFIX } from "../queue/queues";
import type { TaskJob } from "../queue/task-job";

/*
 * KEYS[1] {markerPrefix}:{task_id}   KEYS[2] bq:{queue}:jobs   KEYS[3] bq:{queue}:waiting
 * ARGV[1] task id   ARGV[2] job record (JSON)   ARGV[3] marker TTL seconds
 * Returns 1 when the job was added, 0 when the task was seen before.
 */
const ADD_ONCE_SCRIPT = `
if not redis.call("SET", KEYS[1], "1", "NX", "EX", ARGV[3]) then return 0 end
if redis.call("HEXISTS", KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
redis.call("LPUSH", KEYS[3], ARGV[1])
return 1
`;

type ScriptClient = Redis & {
  ingestAddOnce(marker: string, jobs: string, waiting: string, id: string, data: string, ttl: number): Promise<number>;
};

export interface BatchEnqueueResult {
  added: number;
  duplicates: number;
  /** The task ids that were already known, in input order. */
  duplicateIds: string[];
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
  if (!("ingestAddOnce" in redis)) redis.defineCommand("ingestAddOnce", { numberOfKeys: 3, lua: ADD_ONCE_SCRIPT });
  const client = redis as ScriptClient;
  const jobsKey = `${queuePrefix}:${queue}:jobs`;
  const waitingKey = `${queuePrefix}:${queue}:waiting`;

  const record = (job: TaskJob, now: number) =>
    JSON.stringify({
      data: job,
      options: { timestamp: now, stacktraces: [], retries, backoff: { strategy: JITTER_BACKOFF, delay: backoffMs } },
      status: "created",
      progress: 0,
    });

  return {
    async enqueueBatch(jobs) {
      if (jobs.length === 0) return { added: 0, duplicates: 0, duplicateIds: [] };
      const now = Date.now();
      const pipeline = client.pipeline() as unknown as ScriptClient & { exec(): ReturnType<Redis["exec"]> };
      for (const job of jobs) {
        pipeline.ingestAddOnce(
          `${markerPrefix}:${job.task_id}`,
          jobsKey,
          waitingKey,
          job.task_id,
          record(job, now),
          markerTtlSeconds,
        );
      }
      const replies = (await pipeline.exec()) ?? [];
      if (replies.length !== jobs.length) throw new Error(`Redis answered ${replies.length} of ${jobs.length} jobs`);
      const duplicateIds: string[] = [];
      let added = 0;
      replies.forEach(([error, reply], i) => {
        if (error) throw error;
        if (reply === 1) added++;
        else duplicateIds.push(jobs[i]?.task_id ?? "");
      });
      return { added, duplicates: duplicateIds.length, duplicateIds };
    },
  };
}
