/**
 * Where the product changes what Bee-Queue 2.0.0 (pinned in package.json)
 * does inside a worker, in one place. Each hook replaces one of its internal
 * methods on one queue object, keeps what the method promises to the rest of
 * Bee-Queue, and sends fewer Redis requests (issue 18 §2; before, a job cost
 * the worker 6 requests, 5 of them waited for one after the other):
 *
 * - `_getNextJob()`: Bee-Queue takes a job in two round trips (BRPOPLPUSH
 *   waiting → active, then HGET of its record), and the task's start is a
 *   third (task-store.ts START). Here the takes asked in one turn of the event
 *   loop go out as one script that moves up to that many jobs, returns their
 *   records and starts their tasks (start_task, the same Lua as START): one
 *   round trip for the lot while the queue has a backlog. When it comes back
 *   short (the queue is empty), takes block in BRPOPLPUSH, as Bee-Queue's do,
 *   and the job that comes is loaded and started by the same script: two
 *   round trips. The script says how many jobs are still waiting; the takes
 *   go back to it as soon as one says some are. The take gate (take-gate.ts) wraps the result, in
 *   worker-runner.ts; the pipeline reads the start from the job (`started`).
 * - `_preventStall(jobId)`: Bee-Queue renews each running job's stall lock
 *   with an SREM of its own, at the job's start and then every half stall
 *   interval: with 2,400 jobs in flight, about 2,000 requests a second. The
 *   take script already removed a taken job from the stalling set, so the
 *   first renewal is skipped; the later ones of one turn of the event loop
 *   share one SREM.
 * - `_finishJob(error, data, job)`: a succeeded job is removed from the queue
 *   by the task store's finish script, with the result (task-store.ts,
 *   FINISH_JOB); Bee-Queue's own MULTI for it is skipped. Failures and
 *   retries still go through Bee-Queue, whose record of the job they update.
 *
 * Stall detection is Bee-Queue's, unchanged: its check moves the jobs of the
 * stalling set back to waiting, and a job is in active from its take to its
 * finish, as with Bee-Queue's own take. test/integration/bee-queue.test.ts
 * fails when these methods change shape, and checks that Bee-Queue's own
 * workers still interoperate with ours; test/fault/worker-kill.test.ts that
 * stall detection still re-runs the jobs of a killed worker.
 */
import { createRequire } from "node:module";
import type BeeQueue from "bee-queue";
import type { RedisClient } from "../redis/client";
import { defineScript } from "../redis/script";
import { START_TASK_LUA, type StartOutcome, type StartScriptArgs, startOutcome } from "../store/task-store";

type Job = BeeQueue.Job<unknown>;

/** The internals of a Bee-Queue queue that the hooks use. */
interface QueueInternals {
  client: RedisClient;
  paused: boolean;
  settings: { initialRedisFailureRetryDelay: number };
  toKey(name: string): string;
  emit(event: "error", error: unknown): boolean;
  _commandable(requireBlocking: boolean): Promise<RedisClient>;
  _preventStall(jobId: string): Promise<unknown>;
  _getNextJob(): Promise<Job | null>;
  _finishJob(error: unknown, data: unknown, job: Job): Promise<[string, unknown]>;
}

const METHODS = ["toKey", "emit", "_commandable", "_preventStall", "_getNextJob", "_finishJob"] as const;

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

/** A job taken by the hooks: its task already started, or found already finished. */
export type TakenJob = Job & { started?: StartOutcome };

/*
 * KEYS[1] the queue's waiting list   KEYS[2] its active list   KEYS[3] its job hash   KEYS[4] its stalling set
 * ARGV[1] "take": move up to ARGV[2] jobs from waiting to active, from the same ends as Bee-Queue's BRPOPLPUSH;
 *         "load": the ids ARGV[10..], already moved to active by a BRPOPLPUSH
 * ARGV[3] the queue's name   ARGV[4] now (epoch ms)   ARGV[5] "1": start the tasks, "0": only take
 * ARGV[6] result key prefix   ARGV[7] task events key prefix   ARGV[8] ttl of an unfinished record
 * ARGV[9] entries kept in a task's stream   ARGV[10] channel prefix   ARGV[11..] ids ("load")
 * Returns {id, record, status, attempt, ...} then the jobs still waiting. Each job leaves the stalling set (its
 * first stall-lock renewal). An id whose record is gone (its task was cancelled between two commands) leaves
 * active at once, as no worker will run it. The task keys are built here from their prefixes, as they are only
 * known once the job is taken (Bee-Queue and this product run on one Redis, not a cluster).
 */
const TAKE = defineScript<(string | number)[]>(
  "queueTakeJobs",
  `${START_TASK_LUA}
local taken = {}
local function str(v)
  if type(v) == "string" or type(v) == "number" then return v end
  return ""
end
local function take(id)
  local record = redis.call("HGET", KEYS[3], id)
  if not record then
    redis.call("LREM", KEYS[2], 1, id)
    return
  end
  redis.call("SREM", KEYS[4], id)
  local started = {"", 0}
  if ARGV[5] == "1" then
    local task = cjson.decode(record).data
    started = start_task(ARGV[6] .. id, ARGV[7] .. id, ARGV[4], ARGV[3], str(task.task_type), str(task.tenant),
      str(task.accepted_at), ARGV[8], id, ARGV[9], ARGV[10])
  end
  taken[#taken + 1] = id
  taken[#taken + 1] = record
  taken[#taken + 1] = started[1]
  taken[#taken + 1] = started[2]
end
if ARGV[1] == "take" then
  for _ = 1, tonumber(ARGV[2]) do
    local id = redis.call("RPOPLPUSH", KEYS[1], KEYS[2])
    if not id then break end
    take(id)
  end
else
  for i = 11, #ARGV do take(ARGV[i]) end
end
taken[#taken + 1] = redis.call("LLEN", KEYS[1])
return taken
`,
);

/** Jobs one take script moves at most (it holds Redis for a few µs a job). */
const MAX_JOBS_PER_TAKE = 256;
/** Ids in one SREM at most (a command's arguments are held in Redis's memory while it runs). */
const MAX_IDS_PER_SREM = 1000;

export interface HookedQueue {
  /** The task store's finish removed this job from the queue (its `onJobReleased`): Bee-Queue must not finish it. */
  jobReleased(jobId: string): void;
  /** Whether the last take script left jobs waiting: takes then return at once, none blocks (take-gate.ts). */
  backlog(): boolean;
}

/**
 * Applies the three hooks to a worker queue. With `start`, the take script
 * also starts each job's task, and the job carries the outcome (`started`).
 */
export function hookBeeQueue(queue: BeeQueue<unknown>, options: { start?: StartScriptArgs } = {}): HookedQueue {
  const internal = internalsOf(queue);
  const keys = ["waiting", "active", "jobs", "stalling"].map((name) => internal.toKey(name));
  const [waiting, active, , stalling] = keys as [string, string, string, string];
  const { start } = options;
  /** Taken jobs whose first stall-lock renewal the take script did. */
  const fresh = new Set<string>();

  // ---- the take
  const run = async (mode: "take" | "load", count: number, ids: readonly string[]) => {
    const args = [mode, count, queue.name, Date.now(), start ? 1 : 0];
    if (start) args.push(start.resultKeyPrefix, start.eventsKeyPrefix, start.ttlSeconds, start.streamMaxLen);
    else args.push("", "", 0, 0);
    args.push(start?.channelPrefix ?? "", ...ids);
    const reply = await TAKE.run(internal.client, keys, args);
    const jobs: TakenJob[] = [];
    for (let i = 0; i + 3 < reply.length; i += 4) {
      const id = String(reply[i]);
      const job = BeeQueueJob.fromData(queue, id, String(reply[i + 1])) as TakenJob;
      if (start) job.started = startOutcome(String(reply[i + 2]), Number(reply[i + 3]));
      fresh.add(id);
      jobs.push(job);
    }
    return { jobs, waiting: Number(reply[reply.length - 1]) };
  };

  let failureDelayMs = 0;
  /** Bee-Queue's _waitForJob, with the job loaded (and started) by the take script instead of an HGET. */
  const blockingTake = async (): Promise<Job | null> => {
    let id: string | null;
    try {
      const bclient = await internal._commandable(true);
      id = await bclient.brpoplpush(waiting, active, 0);
      failureDelayMs = 0;
    } catch (error) {
      // Closing: Bee-Queue's close aborts the blocked command.
      if (internal.paused) return null;
      internal.emit("error", error);
      failureDelayMs = failureDelayMs ? failureDelayMs * 2 : internal.settings.initialRedisFailureRetryDelay;
      await Bun.sleep(failureDelayMs);
      return blockingTake();
    }
    if (!id) return null;
    const { jobs, waiting: left } = await run("load", 0, [id]);
    // Jobs behind this one: the next takes go to the take script again, else they block here too.
    emptyAt = left > 0 ? undefined : Date.now();
    lastWaiting = left;
    return jobs[0] ?? null;
  };

  const takers: ((job: Job | null | "none") => void)[] = [];
  let emptyAt: number | undefined;
  let lastWaiting = 0;
  const flush = async () => {
    const batch = takers.splice(0, MAX_JOBS_PER_TAKE);
    if (takers.length > 0) setImmediate(flush);
    if (internal.paused) {
      for (const give of batch) give(null);
      return;
    }
    let jobs: TakenJob[] = [];
    let left = 0;
    try {
      ({ jobs, waiting: left } = await run("take", batch.length, []));
    } catch {
      // The blocking take reports the error and retries with Bee-Queue's delays.
    }
    emptyAt = jobs.length === batch.length && left > 0 ? undefined : Date.now();
    lastWaiting = left;
    for (const [i, give] of batch.entries()) give(jobs[i] ?? "none");
  };

  internal._getNextJob = async () => {
    if (emptyAt !== undefined) return blockingTake();
    const job = await new Promise<Job | null | "none">((resolve) => {
      if (takers.length === 0) setImmediate(flush);
      takers.push(resolve);
    });
    return job === "none" ? blockingTake() : job;
  };

  // ---- stall-lock renewals
  let renewals: { id: string; settle: (error?: unknown) => void }[] = [];
  const renew = () => {
    const batch = renewals;
    renewals = [];
    for (let from = 0; from < batch.length; from += MAX_IDS_PER_SREM) {
      const part = batch.slice(from, from + MAX_IDS_PER_SREM);
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
  internal._preventStall = (jobId) => {
    // The take script removed it from the stalling set in the same step that moved it to active.
    if (fresh.delete(String(jobId))) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      if (renewals.length === 0) setImmediate(renew);
      renewals.push({ id: String(jobId), settle: (error) => (error === undefined ? resolve() : reject(error)) });
    });
  };

  // ---- the finish of a success
  const finish = internal._finishJob.bind(queue);
  const released = new Set<string>();
  internal._finishJob = (error, data, job) => {
    const id = String(job.id);
    fresh.delete(id);
    if (released.delete(id) && !error) {
      job.status = "succeeded";
      return Promise.resolve(["succeeded", data]);
    }
    return finish(error, data, job);
  };

  return {
    jobReleased(jobId) {
      released.add(jobId);
    },
    backlog: () => emptyAt === undefined && lastWaiting > 0,
  };
}
