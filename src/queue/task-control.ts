/**
 * What an operator does to tasks and queues (issue 16 §2), as Flower and
 * Bull Board allow: retry a task that failed for good (or every failed task
 * of a queue), cancel a task that has not started, purge a queue's failed
 * jobs. Each is one atomic step on Bee-Queue's keys (bee-queue-layout.ts), so
 * no worker can take a job half-way through a change.
 *
 * - Retry moves the job from the failed set back to the head of its waiting
 *   list with its retries restored, and removes the task's record and event
 *   stream: the task reads PENDING again (from its job, as a new task does)
 *   and runs from its first attempt. The failed attempts stay in the logs and
 *   the audit line, not in the record.
 * - Cancel ends a waiting (or retry-delayed) task as FAILURE with the code
 *   CANCELLED, in the same script that takes its job out of the queue
 *   (store/task-store.ts, cancel); a task that started runs to its end.
 * - Purge drops the failed jobs (their stack traces); the tasks' own records,
 *   with their errors, stay readable for RESULT_TTL_SECONDS.
 */
import type Redis from "ioredis";
import type { ChainableCommander } from "ioredis";
import { AppError } from "../errors";
import { defineScript, execChecked } from "../redis/script";
import { taskEventsKey } from "../store/task-events";
import { type FinishedTask, pendingKey, resultKey, type TaskStore } from "../store/task-store";
import type { TaskError, TaskJob } from "../task/contract";
import { type JobRecord, type QueueKeys, queueKeys } from "./bee-queue-layout";
import { failedAtKey } from "./failed-jobs";

/** The error a cancelled task ends with. */
export const CANCELLED: TaskError = { code: "CANCELLED", message: "cancelled by an operator", retriable: false };

/*
 * KEYS[1] failed set   KEYS[2] failed_at zset   KEYS[3] job hash   KEYS[4] waiting list
 * KEYS[5] result:{id}   KEYS[6] events:task:{id}   KEYS[7] the tenant's pending set (absent without a tenant)
 * ARGV[1] job id   ARGV[2] the job's new record   ARGV[3] now (epoch ms)
 * Returns "queued", "not_failed" (not in the failed set: it was retried already, or never failed) or
 * "gone" (its record was pruned: JOB_FAILED_KEEP, JOB_FAILED_MAX_AGE_SECONDS).
 */
const REQUEUE = defineScript<string>(
  "taskRequeue",
  `
if redis.call("SISMEMBER", KEYS[1], ARGV[1]) == 0 then return "not_failed" end
if redis.call("HEXISTS", KEYS[3], ARGV[1]) == 0 then
  redis.call("SREM", KEYS[1], ARGV[1])
  return "gone"
end
redis.call("SREM", KEYS[1], ARGV[1])
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("HSET", KEYS[3], ARGV[1], ARGV[2])
redis.call("DEL", KEYS[5], KEYS[6])
if KEYS[7] then redis.call("ZADD", KEYS[7], ARGV[3], ARGV[1]) end
redis.call("RPUSH", KEYS[4], ARGV[1])
return "queued"
`,
);

/*
 * KEYS[1] failed set   KEYS[2] failed_at zset   KEYS[3] job hash   ARGV[1] at most this many
 * Returns how many failed jobs it dropped (0: none left).
 */
const PURGE = defineScript<number>(
  "purgeFailedJobs",
  `
local ids = redis.call("SPOP", KEYS[1], ARGV[1])
if #ids == 0 then return 0 end
redis.call("HDEL", KEYS[3], unpack(ids))
redis.call("ZREM", KEYS[2], unpack(ids))
return #ids
`,
);

/**
 * queued; not_failed: the task exists and did not fail for good (or was retried already); gone: it failed but
 * its job was purged or pruned; not_found: no such task.
 */
export type RetryOutcome = "queued" | "not_failed" | "gone" | "not_found";

export interface TaskControl {
  /** Finds the queue that holds a task's job, with its record; undefined when no queue has it. */
  find(taskId: string): Promise<{ queue: string; record: JobRecord } | undefined>;
  /** Re-queues a task that failed for good (see the header). */
  retry(taskId: string): Promise<{ outcome: RetryOutcome; queue?: string }>;
  /** Re-queues every failed task of a queue; the counts of each outcome. */
  retryFailed(queue: string): Promise<{ queued: number; gone: number }>;
  /** Cancels a task that has not started; "not_waiting" when it started, ended or is not queued. */
  cancel(taskId: string): Promise<{ outcome: "cancelled" | "not_waiting"; queue?: string }>;
  /** Drops every failed job of a queue; how many. */
  purgeFailed(queue: string): Promise<number>;
}

export function createTaskControl(deps: {
  redis: Redis;
  queues: readonly string[];
  store: TaskStore;
  /** Retries a re-queued job gets (WORKER_RETRIES), as a new one does. */
  retries: number;
  /** What else a task's end writes (its webhook delivery), run after a cancel. */
  onFinish?: (pipeline: ChainableCommander, task: FinishedTask) => void;
}): TaskControl {
  const { redis, queues, store, retries, onFinish } = deps;
  const keysOf = (queue: string): QueueKeys => {
    if (!queues.includes(queue)) throw new AppError("QUEUE_NOT_FOUND", `no queue named ${queue}`, { status: 404 });
    return queueKeys(queue);
  };

  const find = async (taskId: string) => {
    const tx = redis.multi();
    for (const queue of queues) tx.hget(queueKeys(queue).jobs, taskId);
    const replies = await execChecked(tx);
    for (const [i, raw] of replies.entries()) {
      if (typeof raw === "string") return { queue: queues[i] as string, record: JSON.parse(raw) as JobRecord };
    }
    return undefined;
  };

  /** The record a re-queued job starts again with: created, its retries restored, no stack traces. */
  const fresh = (record: JobRecord): string => {
    const { retryAfterMs: _, ...options } = record.options as JobRecord["options"] & { retryAfterMs?: number };
    return JSON.stringify({ ...record, options: { ...options, retries, stacktraces: [] }, status: "created" });
  };

  const requeueKeys = (keys: QueueKeys, job: TaskJob) => {
    const list = [
      keys.failed,
      failedAtKey(keys),
      keys.jobs,
      keys.waiting,
      resultKey(job.task_id),
      taskEventsKey(job.task_id),
    ];
    if (job.tenant) list.push(pendingKey(job.tenant));
    return list;
  };

  return {
    find,
    async retry(taskId) {
      const found = await find(taskId);
      if (!found) {
        // No job: a task that ended well (its job was dropped then), or whose failed job was purged.
        const task = await store.get(taskId);
        if (!task) return { outcome: "not_found" };
        return {
          outcome: task.status === "FAILURE" ? "gone" : "not_failed",
          ...(task.queue ? { queue: task.queue } : {}),
        };
      }
      const keys = queueKeys(found.queue);
      const outcome = (await REQUEUE.run(redis, requeueKeys(keys, found.record.data), [
        taskId,
        fresh(found.record),
        Date.now(),
      ])) as RetryOutcome;
      return { outcome, queue: found.queue };
    },
    async retryFailed(queue) {
      const keys = keysOf(queue);
      const counts = { queued: 0, gone: 0 };
      let cursor = "0";
      const seen = new Set<string>();
      do {
        const [next, ids] = await redis.sscan(keys.failed, cursor, "COUNT", 200);
        cursor = next;
        const batch = ids.filter((id) => !seen.has(id));
        for (const id of batch) seen.add(id);
        if (batch.length === 0) continue;
        const records = await redis.hmget(keys.jobs, ...batch);
        const pipeline = redis.pipeline();
        for (const [i, id] of batch.entries()) {
          const raw = records[i];
          if (!raw) {
            counts.gone++;
            pipeline.srem(keys.failed, id);
            continue;
          }
          const record = JSON.parse(raw) as JobRecord;
          REQUEUE.queue(redis, pipeline, requeueKeys(keys, record.data), [id, fresh(record), Date.now()]);
        }
        for (const reply of await execChecked(pipeline)) {
          if (reply === "queued") counts.queued++;
          else if (reply === "gone") counts.gone++;
        }
      } while (cursor !== "0");
      return counts;
    },
    async cancel(taskId) {
      const found = await find(taskId);
      if (!found || found.record.status === "failed")
        return { outcome: "not_waiting", ...(found ? { queue: found.queue } : {}) };
      const task = found.record.data;
      const now = Date.now();
      const cancelled = await store.cancel(task, queueKeys(found.queue), CANCELLED, now);
      if (!cancelled) return { outcome: "not_waiting", queue: found.queue };
      if (onFinish) {
        const pipeline = redis.pipeline();
        onFinish(pipeline, {
          task_id: taskId,
          status: "FAILURE",
          error: CANCELLED,
          finished_at: now,
          ...(task.tenant ? { tenant: task.tenant } : {}),
          ...(task.callback_url ? { callback_url: task.callback_url } : {}),
        });
        await execChecked(pipeline);
      }
      return { outcome: "cancelled", queue: found.queue };
    },
    async purgeFailed(queue) {
      const keys = keysOf(queue);
      let purged = 0;
      for (;;) {
        const dropped = await PURGE.run(redis, [keys.failed, failedAtKey(keys), keys.jobs], [500]);
        purged += dropped;
        if (dropped === 0) return purged;
      }
    },
  };
}
