/**
 * Bee-Queue's layout in Redis, in one place: its key names and its job record
 * format. Bee-Queue owns these keys; the product reads them (a task's state
 * before it starts, queue depths for /metrics and backpressure) and, for
 * Kafka ingestion, writes job records itself in one Lua call per chunk. All
 * of that goes through here, so a change of Bee-Queue's layout is one edit.
 * Layers below the queue (store/, metrics/) receive these keys from the
 * wiring instead of importing this module.
 */
import type { TaskJob } from "../task/contract";

/** Bee-Queue's key prefix: keys are `bq:{queue}:{jobs|waiting|active|delayed|failed|...}`. */
export const QUEUE_KEY_PREFIX = "bq";

/** The name of a registered backoff strategy: exponential with equal jitter, at least the provider's Retry-After. */
export const JITTER_BACKOFF = "exponential_jitter";

export interface QueueKeys {
  readonly name: string;
  /** Hash: job id → job record (JSON). */
  readonly jobs: string;
  /** List of job ids not taken yet. */
  readonly waiting: string;
  /** List of job ids taken by a worker and not finished. */
  readonly active: string;
  /** Set of active job ids whose worker has not renewed their stall lock since the last stall check. */
  readonly stalling: string;
  /** Sorted set of jobs waiting for their retry time. */
  readonly delayed: string;
  /** Set of jobs that failed for good. */
  readonly failed: string;
}

export function queueKeys(name: string, prefix: string = QUEUE_KEY_PREFIX): QueueKeys {
  const base = `${prefix}:${name}`;
  return {
    name,
    jobs: `${base}:jobs`,
    waiting: `${base}:waiting`,
    active: `${base}:active`,
    stalling: `${base}:stalling`,
    delayed: `${base}:delayed`,
    failed: `${base}:failed`,
  };
}

/** Bee-Queue's job record (Job#toData): what `bq:{queue}:jobs` holds for each id. */
export interface JobRecord {
  data: TaskJob;
  options: {
    timestamp: number;
    stacktraces: string[];
    retries: number;
    backoff: { strategy: string; delay: number };
  };
  /** Bee-Queue updates it as the job goes: "failed" once it failed for good. */
  status: "created" | "succeeded" | "failed" | "retrying";
  progress: number;
}

/** A new job's record, as Bee-Queue's own Job#save writes it. */
export function jobRecord(
  job: TaskJob,
  options: { now: number; retries: number; backoffMs: number; backoffStrategy?: string },
): string {
  const record: JobRecord = {
    data: job,
    options: {
      timestamp: options.now,
      stacktraces: [],
      retries: options.retries,
      backoff: { strategy: options.backoffStrategy ?? JITTER_BACKOFF, delay: options.backoffMs },
    },
    status: "created",
    progress: 0,
  };
  return JSON.stringify(record);
}

/** The task a job record carries, and whether Bee-Queue failed the job for good. */
export function readRecord(record: string): { job: TaskJob; failed: boolean } {
  const { data, status } = JSON.parse(record) as Pick<JobRecord, "data" | "status">;
  return { job: data, failed: status === "failed" };
}

/**
 * Where the task store finds a task that has not started yet: each queue's
 * job hash, and how to read a task from a record.
 */
export function queuedJobs(queues: readonly string[], prefix: string = QUEUE_KEY_PREFIX) {
  return { hashes: queues.map((queue) => ({ queue, key: queueKeys(queue, prefix).jobs })), read: readRecord };
}
