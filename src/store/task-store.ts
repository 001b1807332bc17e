/**
 * Task state and results: `result:{task_id}`, a hash with the status
 * (PENDING, STARTED, RETRY, SUCCESS, FAILURE, the names the Python design
 * used), timestamps, the result or the error, kept RESULT_TTL_SECONDS after
 * the task ends. A task that is still queued has no hash yet: its state is
 * read from the queue's own job record, so accepting a task costs no write
 * besides the job itself.
 *
 * Round trips per job on the worker side: 1 to start (a Lua script that also
 * refuses to restart a finished task; a worker process runs the same Lua in
 * the script that takes the job, queue/bee-queue-hooks.ts), 1 to finish (one script: result,
 * expiry, the notification, the tenant's pending set and, for a success, the
 * queue's own finish: the job leaves Bee-Queue's active list, stalling set
 * and job hash in the same script, issue 18 §2). Each state change is
 * appended to the task's event stream, and each end to the tenant's, inside
 * the same script (task-events.ts): the push channels cost no round trip.
 */
import type Redis from "ioredis";
import type { ChainableCommander } from "ioredis";
import { defineScript, execChecked } from "../redis/script";
import type { TaskError, TaskJob, TaskResult, TaskStatus } from "../task/contract";
import {
  APPEND_EVENT_LUA,
  channelPrefix,
  TASK_EVENTS_KEY_PREFIX,
  TASK_STREAM_MAXLEN,
  taskEventsKey,
  tenantEventsKey,
} from "./task-events";

export interface TaskState {
  task_id: string;
  status: TaskStatus;
  task_type?: string;
  queue?: string;
  attempts?: number;
  accepted_at?: number;
  started_at?: number;
  finished_at?: number;
  result?: TaskResult;
  error?: TaskError;
  /** Internal: the tenant that owns the task; never sent to clients. */
  tenant?: string;
  /** The client's latest feedback on the answer (POST /task/:id/feedback). */
  feedback?: { correct?: boolean; rating?: number; at?: number };
  /**
   * The text: from the task's job record while it exists (queued, running, retrying, or failed for good:
   * failed jobs are kept, queue/failed-jobs.ts); after a success or a cancel, from the task's own record,
   * where the finish keeps it unless RESULT_KEEP_INPUT is false.
   */
  input?: string;
}

const JOB_FAILED_UNRECORDED: TaskError = {
  code: "JOB_FAILED",
  message: "the task's job failed before it could record a result",
  retriable: false,
};

/** Channel on which a finished task's id is published, so waiting requests wake without polling. */
export const DONE_CHANNEL = "tasks:done";
/** How long a started task's record lives if its worker dies and nobody finishes it. */
export const IN_FLIGHT_TTL_SECONDS = 7 * 24 * 3600;

/*
 * Lua shared by START and the queue's take (queue/bee-queue-hooks.ts), which starts the tasks of the jobs it
 * takes in the same script (issue 18 §2):
 * start_task(k_result, k_task_events, started_at, queue, task_type, tenant ("" for none), accepted_at,
 *            ttl of an unfinished record, task_id, entries kept in the task's stream, channel prefix)
 * Returns the status the task had when it is already finished (SUCCESS or FAILURE: the job must not run
 * again) and 0, else "STARTED" and the attempt number.
 */
export const START_TASK_LUA = `${APPEND_EVENT_LUA}
local function start_task(k_result, k_events, started_at, queue, task_type, tenant, accepted_at, ttl, task_id, maxlen, prefix)
  local status = redis.call("HGET", k_result, "status")
  if status == "SUCCESS" or status == "FAILURE" then return {status, 0} end
  local attempts = redis.call("HINCRBY", k_result, "attempts", 1)
  redis.call("HSET", k_result, "status", "STARTED", "started_at", started_at, "queue", queue, "task_type", task_type, "accepted_at", accepted_at)
  if tenant ~= "" then redis.call("HSET", k_result, "tenant", tenant) end
  redis.call("EXPIRE", k_result, ttl)
  append_event(prefix, k_events, maxlen, '{"task_id":' .. cjson.encode(task_id) .. ',"status":"STARTED","at":' .. started_at .. ',"attempt":' .. attempts .. '}', ttl)
  return {"STARTED", attempts}
end
`;

/** What a script that starts tasks with START_TASK_LUA needs besides each task: key prefixes, fixed arguments. */
export interface StartScriptArgs {
  resultKeyPrefix: string;
  eventsKeyPrefix: string;
  ttlSeconds: number;
  streamMaxLen: number;
  channelPrefix: string;
}

/** START's fixed arguments on this client's database, for the queue's take script. */
export function startScriptArgs(redis: Redis): StartScriptArgs {
  return {
    resultKeyPrefix: RESULT_KEY_PREFIX,
    eventsKeyPrefix: TASK_EVENTS_KEY_PREFIX,
    ttlSeconds: IN_FLIGHT_TTL_SECONDS,
    streamMaxLen: TASK_STREAM_MAXLEN,
    channelPrefix: channelPrefix(redis),
  };
}

/*
 * KEYS[1] result:{task_id}   KEYS[2] events:task:{task_id}
 * ARGV[1] started_at (epoch ms)   ARGV[2] queue   ARGV[3] task_type   ARGV[4] tenant ("" for none)
 * ARGV[5] accepted_at             ARGV[6] ttl seconds of an unfinished record
 * ARGV[7] task_id                 ARGV[8] entries kept in the task's stream   ARGV[9] channel prefix
 */
const START = defineScript<[string, number]>(
  "taskStart",
  `${START_TASK_LUA}
return start_task(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
`,
);

/*
 * KEYS[1] result:{task_id}   KEYS[2] events:task:{task_id}
 * ARGV[1] error (JSON)   ARGV[2] now (epoch ms)   ARGV[3] task_id   ARGV[4] entries kept in the task's stream
 * ARGV[5] channel prefix
 */
const RETRY = defineScript<string>(
  "taskRetry",
  `${APPEND_EVENT_LUA}
redis.call("HSET", KEYS[1], "status", "RETRY", "error", ARGV[1])
local attempt = redis.call("HGET", KEYS[1], "attempts") or "null"
return append_event(ARGV[5], KEYS[2], ARGV[4], '{"task_id":' .. cjson.encode(ARGV[3]) .. ',"status":"RETRY","at":' .. ARGV[2] .. ',"attempt":' .. attempt .. ',"error":' .. ARGV[1] .. '}', false)
`,
);

/*
 * Lua shared by the scripts that end a task (FINISH, and CANCEL below):
 * finish(k_result, k_task_events, k_tenant_events, k_pending or nil, status, payload (JSON), finished_at, ttl,
 *        task_id, task stream maxlen, tenant stream maxlen, done channel, channel prefix, the task's text or "")
 * The task's own stream gets the status alone (readers take the result from the task, as GET /task/:id
 * shows it); the tenant's gets the result too, since a dashboard reads nothing else.
 */
const FINISH_LUA = `${APPEND_EVENT_LUA}
local function finish(k_result, k_task, k_tenant, k_pending, status, payload, finished_at, ttl, task_id, task_maxlen, tenant_maxlen, done_channel, prefix, input)
  local field = status == "SUCCESS" and "result" or "error"
  redis.call("HSET", k_result, "status", status, field, payload, "finished_at", finished_at)
  if input and input ~= "" then redis.call("HSET", k_result, "input", input) end
  redis.call("EXPIRE", k_result, ttl)
  redis.call("PUBLISH", done_channel, task_id)
  if k_pending then redis.call("ZREM", k_pending, task_id) end
  local id = cjson.encode(task_id)
  local entry = append_event(prefix, k_task, task_maxlen, '{"task_id":' .. id .. ',"status":"' .. status .. '","at":' .. finished_at .. '}', ttl)
  local meta = redis.call("HMGET", k_result, "task_type", "queue")
  local function str(v) if v then return cjson.encode(v) end return "null" end
  append_event(prefix, k_tenant, tenant_maxlen, '{"task_id":' .. id .. ',"status":"' .. status .. '","task_type":' .. str(meta[1]) .. ',"queue":' .. str(meta[2]) .. ',"finished_at":' .. finished_at .. ',"' .. field .. '":' .. payload .. '}', false)
  return entry
end
`;

/*
 * KEYS[1] result:{task_id}   KEYS[2] events:task:{task_id}   KEYS[3] the tenant's events stream
 * KEYS[4] the tenant's pending set (absent without a tenant)
 * ARGV[1] SUCCESS or FAILURE   ARGV[2] the result or the error (JSON)   ARGV[3] finished_at (epoch ms)
 * ARGV[4] ttl seconds   ARGV[5] task_id   ARGV[6] entries kept in the task's stream
 * ARGV[7] entries kept in the tenant's stream   ARGV[8] the channel that wakes GET /task/:id?wait=
 * ARGV[9] channel prefix of the event streams   ARGV[10] the task's text, kept in its record ("": not kept)
 */
const FINISH = defineScript<string>(
  "taskFinish",
  `${FINISH_LUA}
return finish(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
`,
);

/*
 * FINISH, and the queue's finish of the job that ran it, in one script: the job leaves the queue's active list
 * (from its oldest end, where a job that ran its course usually is: LREM with a count of -1 stops at the first
 * match instead of scanning every job in flight), its stalling set and its job hash, as Bee-Queue's own finish
 * of a succeeded job does with removeOnSuccess (bee-queue 2.0.0 lib/queue.js, Queue#_finishJob). Written with
 * the result, a crash can no longer leave a recorded success whose job stall detection runs again.
 * KEYS[1..4] as FINISH's (KEYS[4] "" without a tenant)   KEYS[5] the queue's active list   KEYS[6] its stalling set
 * KEYS[7] its job hash   ARGV[1..10] as FINISH's
 */
const FINISH_JOB = defineScript<string>(
  "taskFinishJob",
  `${FINISH_LUA}
redis.call("LREM", KEYS[5], -1, ARGV[5])
redis.call("SREM", KEYS[6], ARGV[5])
redis.call("HDEL", KEYS[7], ARGV[5])
local pending = nil
if KEYS[4] ~= "" then pending = KEYS[4] end
return finish(KEYS[1], KEYS[2], KEYS[3], pending, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
`,
);

/*
 * Ends a task that has not started, atomically with taking its job out of the queue, so no worker can
 * start it in between.
 * KEYS[1] the queue's waiting list   KEYS[2] its delayed set   KEYS[3] its job hash
 * KEYS[4..7] as FINISH's KEYS[1..4]   ARGV[1..9] as FINISH's (status FAILURE)   ARGV[10] the queue's name
 * ARGV[11] "1": keep the task's text in its record
 * Returns false when the job is no longer waiting (it started, ended or was never there).
 */
const CANCEL = defineScript<string | null>(
  "taskCancel",
  `${FINISH_LUA}
local removed = redis.call("LREM", KEYS[1], 1, ARGV[5]) + redis.call("ZREM", KEYS[2], ARGV[5])
if removed == 0 then return false end
local record = redis.call("HGET", KEYS[3], ARGV[5])
redis.call("HDEL", KEYS[3], ARGV[5])
local input = nil
if record then
  local job = cjson.decode(record).data
  redis.call("HSET", KEYS[4], "task_type", job.task_type, "accepted_at", job.accepted_at, "queue", ARGV[10])
  if job.tenant then redis.call("HSET", KEYS[4], "tenant", job.tenant) end
  if ARGV[11] == "1" then input = job.text end
end
return finish(KEYS[4], KEYS[5], KEYS[6], KEYS[7], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], input)
`,
);

/** A task as it ends, for a finish hook. */
export interface FinishedTask {
  task_id: string;
  status: "SUCCESS" | "FAILURE";
  result?: TaskResult;
  error?: TaskError;
  finished_at: number;
  tenant?: string;
  callback_url?: string;
  /** The task's text, kept in its record when the store keeps inputs (RESULT_KEEP_INPUT). */
  input?: string;
}

/**
 * Adds commands to the pipeline that records a task's end, so that what must
 * follow it (a webhook delivery, issue 15 §4) is written with it or not at
 * all: written after it, a crash in between would lose it, since the re-run
 * sees the task finished and skips it.
 */
export type FinishHook = (pipeline: ChainableCommander, task: FinishedTask) => void;

/** What a task's start answers: its attempt, or the status it already ended with (it must not run again). */
export type StartOutcome = { status: "STARTED"; attempt: number } | { status: TaskStatus };

/** A start_task reply as a StartOutcome. */
export function startOutcome(status: string, attempt: number): StartOutcome {
  return status === "STARTED" ? { status: "STARTED", attempt } : { status: status as TaskStatus };
}

export interface TaskStore {
  /** Marks the task STARTED; answers the terminal status instead when it already ended (a re-run after a crash). */
  start(job: TaskJob, queue: string, now?: number): Promise<StartOutcome>;
  /**
   * Records the result; with a tenant, the task also leaves the tenant's pending set (API_MAX_PENDING_TASKS).
   * `input`, the task's text, is kept in the record when the store keeps inputs. With the `queue` whose job ran
   * the task (and `runningJobs` given), the job leaves that queue in the same script, and `onJobReleased` says so.
   */
  succeed(
    taskId: string,
    result: TaskResult,
    now?: number,
    tenant?: string,
    callbackUrl?: string,
    input?: string,
    queue?: string,
  ): Promise<void>;
  /** A failed attempt that will be retried. */
  retry(taskId: string, error: TaskError): Promise<void>;
  fail(taskId: string, error: TaskError, now?: number, tenant?: string, callbackUrl?: string): Promise<void>;
  /**
   * Ends a task that has not started (waiting, or delayed before a retry) with `error`, taking its job out
   * of the queue in the same script. False when its job is not waiting any more.
   */
  cancel(task: TaskJob, queue: QueueJobKeys, error: TaskError, now?: number): Promise<boolean>;
  /** The task's state, or undefined when no such task exists (or it belongs to another tenant). */
  get(taskId: string, tenant?: string): Promise<TaskState | undefined>;
  /**
   * Keeps a client's latest feedback on a finished task's answer (`feedback` of its record). `also` adds
   * commands to the same MULTI (the training examples' index, store/training-examples.ts), so that the
   * index and the record never disagree about the latest feedback. Resolves with the feedback it replaced, read
   * in the same MULTI: of two feedbacks at the same instant, the second replaces the first, never both the same.
   */
  recordFeedback(
    taskId: string,
    feedback: Record<string, unknown>,
    also?: (tx: ChainableCommander) => void,
  ): Promise<TaskState["feedback"]>;
}

/** Key prefix of the task records: `result:{task_id}`. */
export const RESULT_KEY_PREFIX = "result:";

export function resultKey(taskId: string): string {
  return `${RESULT_KEY_PREFIX}${taskId}`;
}

/** Sorted set of a tenant's accepted, unfinished task ids, scored by acceptance time. */
export function pendingKey(tenant: string): string {
  return `tenant:${tenant}:pending`;
}

function parse<T>(value: string | undefined): T | undefined {
  return value === undefined ? undefined : (JSON.parse(value) as T);
}

function toNumber(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

/**
 * Where a task that has not started yet is read from: each queue's job hash
 * and how to read a task from its record. The queue layer knows Bee-Queue's
 * layout (queue/bee-queue-layout.ts, queuedJobs) and the wiring passes it in.
 */
export interface QueuedJobs {
  readonly hashes: readonly { readonly queue: string; readonly key: string }[];
  /** The task of a job record, and whether the queue failed the job for good (it never recorded a result). */
  read(record: string): { job: TaskJob; failed: boolean };
}

/** Where a running job sits in its queue: what a success takes it out of (queue/bee-queue-layout.ts has them). */
export interface RunningJobKeys {
  readonly active: string;
  readonly stalling: string;
  readonly jobs: string;
}

/** One queue's keys that hold a job before it starts (queue/bee-queue-layout.ts has them). */
export interface QueueJobKeys {
  readonly name: string;
  readonly waiting: string;
  readonly delayed: string;
  readonly jobs: string;
}

/** Completions kept in a tenant's event stream by default (EVENTS_STREAM_MAXLEN). */
export const DEFAULT_EVENTS_MAXLEN = 50_000;

export function createTaskStore(deps: {
  redis: Redis;
  resultTtlSeconds: number;
  queued: QueuedJobs;
  /** Completions kept in each tenant's event stream: the window a reconnecting dashboard can catch up on. */
  eventsMaxLen?: number;
  /** Runs on the pipeline of every finish (ioredis writes a pipeline in one go). */
  onFinish?: FinishHook;
  /** Keep a finished task's text in its record (RESULT_KEEP_INPUT); absent: true. */
  keepInput?: boolean;
  /** A queue's keys of running jobs, for a success that also ends its job (worker processes). */
  runningJobs?: (queue: string) => RunningJobKeys;
  /** A success ended the job of `taskId` in `queue`: the queue must not finish it again. */
  onJobReleased?: (queue: string, taskId: string) => void;
}): TaskStore {
  const { redis, resultTtlSeconds, queued, eventsMaxLen = DEFAULT_EVENTS_MAXLEN, keepInput = true } = deps;
  const channels = channelPrefix(redis);
  /** The keys a task's end writes: its record, its stream, its tenant's stream and pending set. */
  const endKeys = (taskId: string, tenant: string | undefined) => {
    const keys = [resultKey(taskId), taskEventsKey(taskId), tenantEventsKey(tenant)];
    if (tenant) keys.push(pendingKey(tenant));
    return keys;
  };

  /** FINISH's (and CANCEL's first nine) arguments. */
  const endArgs = (taskId: string, status: string, outcome: string, finishedAt: number) => [
    status,
    outcome,
    finishedAt,
    resultTtlSeconds,
    taskId,
    TASK_STREAM_MAXLEN,
    eventsMaxLen,
    DONE_CHANNEL,
    channels,
  ];
  const finish = async (task: FinishedTask, outcome: string, queue?: string) => {
    const keys = endKeys(task.task_id, task.tenant);
    const args = [
      ...endArgs(task.task_id, task.status, outcome, task.finished_at),
      keepInput ? (task.input ?? "") : "",
    ];
    const job = queue === undefined ? undefined : deps.runningJobs?.(queue);
    const pipeline = redis.pipeline();
    if (job) {
      if (keys.length === 3) keys.push("");
      FINISH_JOB.queue(redis, pipeline, [...keys, job.active, job.stalling, job.jobs], args);
    } else FINISH.queue(redis, pipeline, keys, args);
    deps.onFinish?.(pipeline, task);
    await execChecked(pipeline);
    if (job && queue !== undefined) deps.onJobReleased?.(queue, task.task_id);
  };
  const ended = (task: FinishedTask, tenant?: string, callbackUrl?: string): FinishedTask => ({
    ...task,
    ...(tenant ? { tenant } : {}),
    ...(callbackUrl ? { callback_url: callbackUrl } : {}),
  });

  return {
    async start(job, queue, now = Date.now()) {
      const [status, attempt] = await START.run(
        redis,
        [resultKey(job.task_id), taskEventsKey(job.task_id)],
        [
          now,
          queue,
          job.task_type,
          job.tenant ?? "",
          job.accepted_at,
          IN_FLIGHT_TTL_SECONDS,
          job.task_id,
          TASK_STREAM_MAXLEN,
          channels,
        ],
      );
      return startOutcome(status, attempt);
    },
    succeed(taskId, result, now = Date.now(), tenant = undefined, callbackUrl = undefined, input = undefined, queue) {
      const finished: FinishedTask = { task_id: taskId, status: "SUCCESS", result, finished_at: now };
      const task = ended(input === undefined ? finished : { ...finished, input }, tenant, callbackUrl);
      return finish(task, JSON.stringify(result), queue);
    },
    async cancel(task, queue, error, now = Date.now()) {
      const keys = [queue.waiting, queue.delayed, queue.jobs, ...endKeys(task.task_id, task.tenant)];
      const args = [...endArgs(task.task_id, "FAILURE", JSON.stringify(error), now), queue.name, keepInput ? 1 : 0];
      const ended = await CANCEL.run(redis, keys, args);
      return ended !== null;
    },
    async retry(taskId, error) {
      await RETRY.run(
        redis,
        [resultKey(taskId), taskEventsKey(taskId)],
        [JSON.stringify(error), Date.now(), taskId, TASK_STREAM_MAXLEN, channels],
      );
    },
    fail(taskId, error, now = Date.now(), tenant = undefined, callbackUrl = undefined) {
      const task = ended({ task_id: taskId, status: "FAILURE", error, finished_at: now }, tenant, callbackUrl);
      return finish(task, JSON.stringify(error));
    },
    async recordFeedback(taskId, feedback, also) {
      const tx = redis
        .multi()
        .hget(resultKey(taskId), "feedback")
        .hset(resultKey(taskId), "feedback", JSON.stringify(feedback));
      also?.(tx);
      const [previous] = await execChecked(tx);
      return parse<TaskState["feedback"]>(typeof previous === "string" ? previous : undefined);
    },
    async get(taskId, tenant) {
      // One MULTI: the result and the queued jobs seen at the same instant. Read one after the other, a task
      // answered from the cache in a millisecond could start and leave its queue in between, and read as 404.
      const tx = redis.multi().hgetall(resultKey(taskId));
      for (const { key } of queued.hashes) tx.hget(key, taskId);
      const replies = await execChecked(tx);
      const hash = (replies[0] ?? {}) as Record<string, string>;
      // Read in the same MULTI, so the text costs nothing more.
      const record = replies.slice(1).findIndex((raw) => typeof raw === "string");
      const job = record < 0 ? undefined : queued.read(replies[record + 1] as string);
      if (hash.status) {
        if (tenant !== undefined && hash.tenant !== tenant) return undefined;
        return {
          task_id: taskId,
          status: hash.status as TaskStatus,
          task_type: hash.task_type,
          queue: hash.queue,
          attempts: toNumber(hash.attempts),
          accepted_at: toNumber(hash.accepted_at),
          started_at: toNumber(hash.started_at),
          finished_at: toNumber(hash.finished_at),
          result: parse<TaskResult>(hash.result),
          error: parse<TaskError>(hash.error),
          tenant: hash.tenant,
          ...(hash.feedback === undefined
            ? {}
            : { feedback: parse<NonNullable<TaskState["feedback"]>>(hash.feedback) }),
          ...(job ? { input: job.job.text } : hash.input === undefined ? {} : { input: hash.input }),
        };
      }
      // Not started yet: the job in one of the queues.
      if (!job) return undefined;
      if (tenant !== undefined && job.job.tenant !== tenant) return undefined;
      return {
        task_id: taskId,
        // A job the queue failed before its task could record anything (Redis lost at its start) is over.
        status: job.failed ? "FAILURE" : "PENDING",
        task_type: job.job.task_type,
        queue: queued.hashes[record]?.queue,
        accepted_at: job.job.accepted_at,
        tenant: job.job.tenant,
        input: job.job.text,
        ...(job.failed ? { error: JOB_FAILED_UNRECORDED } : {}),
      };
    },
  };
}
