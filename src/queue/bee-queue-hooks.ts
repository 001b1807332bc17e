/**
 * Where the product changes what Bee-Queue 2.0.0 (pinned in package.json)
 * does inside a worker, in one place. Each hook replaces one of its internal
 * methods on one queue object, keeps what the method promises to the rest of
 * Bee-Queue, and sends fewer Redis requests (issue 18):
 *
 * - `_preventStall(jobId)`: Bee-Queue renews each running job's stall lock
 *   with an SREM of its own, at the job's start and then every half stall
 *   interval: with 2,400 jobs in flight, about 2,000 requests a second. The
 *   calls made in one turn of the event loop share one SREM.
 * - `_getNextJob()`: Bee-Queue takes a job in two round trips (BRPOPLPUSH
 *   waiting → active, then HGET of its record). The takes asked in one turn
 *   of the event loop go out as one script that moves up to that many jobs
 *   and returns their records: one round trip for the lot while the queue has
 *   a backlog. When it comes back short (the queue is empty), takes go back
 *   to Bee-Queue's own blocking take until a short while has passed. The
 *   take gate (take-gate.ts) wraps the result, in worker-runner.ts.
 * - `_finishJob(error, data, job)`: a succeeded job is removed from the queue
 *   by the task store's finish script, with the result (task-store.ts,
 *   FINISH_JOB); Bee-Queue's own MULTI for it is skipped. Failures and
 *   retries still go through Bee-Queue, whose record of the job they update.
 *
 * test/integration/bee-queue.test.ts fails when these methods change shape,
 * and checks that Bee-Queue's own workers still interoperate with ours;
 * test/fault/worker-kill.test.ts that stall detection still re-runs the jobs
 * of a killed worker.
 */
import { createRequire } from "node:module";
import type BeeQueue from "bee-queue";
import type { RedisClient } from "../redis/client";
import { defineScript } from "../redis/script";

type Job = BeeQueue.Job<unknown>;

/** The internals of a Bee-Queue queue that the hooks use. */
interface QueueInternals {
  client: RedisClient;
  paused: boolean;
  toKey(name: string): string;
  _preventStall(jobId: string): Promise<unknown>;
  _getNextJob(): Promise<Job | null>;
  _finishJob(error: unknown, data: unknown, job: Job): Promise<[string, unknown]>;
}

const METHODS = ["toKey", "_preventStall", "_getNextJob", "_finishJob"] as const;

function internalsOf(queue: BeeQueue<unknown>): QueueInternals {
  const internal = queue as unknown as QueueInternals;
  for (const method of METHODS)
    if (typeof internal[method] !== "function")
      throw new Error(`bee-queue has no ${method}: the product's hooks (queue/bee-queue-hooks.ts) cannot be applied`);
  return internal;
}

/** Bee-Queue's Job class (internal): a job from its id and record, as Job.fromId builds it after its HGET. */
const BeeQueueJob = createRequire(import.meta.url)("bee-queue/lib/job.js") as {
  fromData(queue: BeeQueue<unknown>, jobId: string, record: string): Job;
};

/** Ids in one SREM at most (a command's arguments are held in Redis's memory while it runs). */
const MAX_IDS_PER_SREM = 1000;

/**
 * The stall-lock renewals of one turn of the event loop (the jobs started in
 * it, the timers that fired in it) go out as one SREM of all their ids. Each
 * caller still gets its own promise, settled by that SREM: Bee-Queue chains
 * the job's next renewal on it, so the timing of each job's renewals is
 * unchanged (the batch goes out before the next turn's timers).
 */
export function coalesceStallRenewals(queue: BeeQueue<unknown>): void {
  const internal = internalsOf(queue);
  const stalling = internal.toKey("stalling");
  let batch: { id: string; settle: (error?: unknown) => void }[] = [];

  const flush = () => {
    const renewals = batch;
    batch = [];
    for (let from = 0; from < renewals.length; from += MAX_IDS_PER_SREM) {
      const part = renewals.slice(from, from + MAX_IDS_PER_SREM);
      internal.client.srem(stalling, ...part.map((r) => r.id)).then(
        () => {
          for (const r of part) r.settle();
        },
        (error: unknown) => {
          for (const r of part) r.settle(error);
        },
      );
    }
  };

  internal._preventStall = (jobId) =>
    new Promise<void>((resolve, reject) => {
      if (batch.length === 0) setImmediate(flush);
      batch.push({ id: String(jobId), settle: (error) => (error === undefined ? resolve() : reject(error)) });
    });
}

/*
 * KEYS[1] the queue's waiting list   KEYS[2] its active list   KEYS[3] its job hash
 * ARGV[1] most jobs to take
 * Moves up to ARGV[1] job ids from waiting to active, from the same ends as Bee-Queue's BRPOPLPUSH, and returns
 * {id, record, id, record, ..., jobs still waiting}. An id whose record is gone (its task was cancelled between
 * two commands) leaves active at once, as no worker will run it.
 */
const TAKE = defineScript<(string | number)[]>(
  "queueTakeJobs",
  `local taken = {}
for _ = 1, tonumber(ARGV[1]) do
  local id = redis.call("RPOPLPUSH", KEYS[1], KEYS[2])
  if not id then break end
  local record = redis.call("HGET", KEYS[3], id)
  if record then
    taken[#taken + 1] = id
    taken[#taken + 1] = record
  else
    redis.call("LREM", KEYS[2], 1, id)
  end
end
taken[#taken + 1] = redis.call("LLEN", KEYS[1])
return taken
`,
);

/** Jobs one take script moves at most (it holds Redis for about 1 µs a job). */
const MAX_JOBS_PER_TAKE = 256;
/** After a take script found the queue empty, takes block in Bee-Queue's own take for this long. */
const EMPTY_QUEUE_BACKOFF_MS = 50;

/**
 * Replaces `_getNextJob` with the batched take, and returns Bee-Queue's own
 * (blocking) take for whoever wraps the new one. Every caller still gets one
 * job or null, as from Bee-Queue's; a job is moved to active only for a caller
 * that asked for one.
 */
export function batchTakes(queue: BeeQueue<unknown>): () => Promise<Job | null> {
  const internal = internalsOf(queue);
  const blockingTake = internal._getNextJob.bind(queue);
  const keys = [internal.toKey("waiting"), internal.toKey("active"), internal.toKey("jobs")];
  const takers: ((job: Job | null | "none") => void)[] = [];
  let emptyAt: number | undefined;

  const flush = async () => {
    const batch = takers.splice(0, MAX_JOBS_PER_TAKE);
    if (takers.length > 0) setImmediate(flush);
    if (internal.paused) {
      for (const give of batch) give(null);
      return;
    }
    let reply: (string | number)[] = [];
    try {
      reply = await TAKE.run(internal.client, keys, [batch.length]);
    } catch {
      // Bee-Queue's own take reports the error and retries with its delays.
    }
    const taken = Math.floor(reply.length / 2);
    emptyAt =
      reply.length > 0 && taken === batch.length && Number(reply[reply.length - 1]) > 0 ? undefined : Date.now();
    for (const [i, give] of batch.entries())
      give(i < taken ? BeeQueueJob.fromData(queue, String(reply[2 * i]), String(reply[2 * i + 1])) : "none");
  };

  internal._getNextJob = async () => {
    if (emptyAt !== undefined && Date.now() - emptyAt < EMPTY_QUEUE_BACKOFF_MS) return blockingTake();
    const job = await new Promise<Job | null | "none">((resolve) => {
      if (takers.length === 0) setImmediate(flush);
      takers.push(resolve);
    });
    return job === "none" ? blockingTake() : job;
  };
  return internal._getNextJob.bind(queue);
}

/**
 * Skips Bee-Queue's finish of a succeeded job that the task store already
 * removed from the queue (task-store.ts FINISH_JOB); returns what the store
 * calls when it did (`onJobReleased`). Bee-Queue still counts the job and
 * emits 'succeeded' for it.
 */
export function skipReleasedFinishes(queue: BeeQueue<unknown>): (jobId: string) => void {
  const internal = internalsOf(queue);
  const finish = internal._finishJob.bind(queue);
  const released = new Set<string>();
  internal._finishJob = (error, data, job) => {
    if (released.delete(String(job.id)) && !error) {
      job.status = "succeeded";
      return Promise.resolve(["succeeded", data]);
    }
    return finish(error, data, job);
  };
  return (jobId) => {
    released.add(jobId);
  };
}
