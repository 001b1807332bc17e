/**
 * Runs jobs of some queues in this process: one Bee-Queue worker per queue,
 * each with `concurrency` jobs in flight, stall detection on (a job whose
 * process died is re-run: acks-late), and retries with exponential backoff and
 * jitter that never wait less than the provider's Retry-After.
 *
 * With a `gate` (WORKER_JOBS_PER_PROCESS=auto), Bee-Queue runs at the gate's
 * maximum per queue and every tick asks the gate before it takes a job
 * (take-gate.ts): the process's jobs in flight, over all its queues, follow
 * the gate's limit, which the adaptive controller moves at run time. This
 * wraps Bee-Queue's internal `_getNextJob` (bee-queue 2.0.0, pinned in
 * package.json; test/integration/bee-queue.test.ts and
 * adaptive-concurrency.test.ts fail if its shape changes).
 */

import type BeeQueue from "bee-queue";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import type { RedisClient } from "../redis/client";
import { logConnectionErrors } from "../redis/client";
import type { StartScriptArgs } from "../store/task-store";
import type { TaskJob } from "../task/contract";
import { retryDelay } from "../util/backoff";
import { hookBeeQueue } from "./bee-queue-hooks";
import type { FailedJobRetention } from "./failed-jobs";
import { createWorkerQueue } from "./queues";
import type { Lane, TakeGate } from "./take-gate";

export interface WorkerRunnerStats {
  active: number;
  processed: number;
  failed: number;
}

/** How stall detection kept its timing: checks run, and the largest gap between two (ms) since the last read. */
export interface StallCheckTiming {
  checks: number;
  /** Configured gap between two checks, ms. */
  interval_ms: number;
  /** Largest gap seen since the previous `stallTiming()` (0: none yet). */
  max_gap_ms: number;
  /** Jobs of a stopped worker re-queued, since start. */
  requeued: number;
}

/** Bee-Queue's internal take, batched by bee-queue-hooks.ts (one script for the takes of a loop turn). */
type WithTake = { _getNextJob: () => Promise<BeeQueue.Job<TaskJob> | null>; paused: boolean };

export interface WorkerRunner {
  /** Starts taking jobs of every queue but the `paused` ones (an operator paused them: store/control.ts). */
  start(paused?: readonly string[]): Promise<void>;
  /** Stops taking jobs of one queue; its jobs in flight finish. False when it was not running here. */
  pause(queue: string): Promise<boolean>;
  /** Takes jobs of a paused queue again. False when it was running, or is not one of this process's. */
  resume(queue: string): Promise<boolean>;
  /** This process's queues that it takes no jobs from now. */
  pausedQueues(): string[];
  /** Stops taking jobs and waits up to timeoutMs for the active ones; the rest are re-run elsewhere by stall detection. */
  drain(timeoutMs: number): Promise<void>;
  stats(): WorkerRunnerStats;
  /** Stall checks' timing since the previous call (their largest gap resets). */
  stallTiming(): StallCheckTiming;
  /**
   * The task store's finish removed this job from its queue with the result (store/task-store.ts FINISH_JOB):
   * Bee-Queue must not finish it again. The store's `onJobReleased`.
   */
  jobReleased(queue: string, jobId: string): void;
}

export function createWorkerRunner(deps: {
  redis: RedisClient;
  queues: readonly string[];
  concurrency: number;
  processTask: (job: BeeQueue.Job<TaskJob>, queue: string) => Promise<unknown>;
  backoff: { baseMs: number; maxMs: number };
  stallIntervalMs: number;
  logger: Logger;
  /** Called after each job, for recycling decisions. */
  onJobDone?: (stats: WorkerRunnerStats) => void;
  /** Bounds the failed jobs kept for inspection; absent: kept for ever (tests). */
  failedJobs?: FailedJobRetention;
  /** How long a paused queue's jobs in flight may run before they are given back (default: 5 minutes). */
  pauseTimeoutMs?: number;
  /**
   * Adaptive jobs in flight: `concurrency` is then Bee-Queue's per-queue maximum, and each take waits for the
   * gate. `onJobEnd` gets the ms the job held its slot.
   */
  gate?: TakeGate;
  onJobEnd?: (slotMs: number) => void;
  /**
   * The task store's start, run by the take script for each job it takes (queue/bee-queue-hooks.ts); the job
   * then carries its outcome (`started`) and the pipeline does not start it again. Absent: jobs only taken.
   */
  taskStart?: StartScriptArgs;
}): WorkerRunner {
  const { redis, queues, concurrency, processTask, backoff, stallIntervalMs, logger, onJobDone, failedJobs } = deps;
  const { pauseTimeoutMs = 300_000 } = deps;
  const { gate, onJobEnd, taskStart } = deps;
  const stats: WorkerRunnerStats = { active: 0, processed: 0, failed: 0 };
  const stallCheckIntervalMs = Math.max(250, Math.floor(stallIntervalMs / 2));
  const stall = { checks: 0, maxGapMs: 0, requeued: 0, last: new Map<string, number>() };

  const backoffOf = (job: BeeQueue.Job<TaskJob>) => {
    const options = job.options as { stacktraces: string[]; retryAfterMs?: number };
    // Called before Bee-Queue records this failure: earlier failures + this one.
    const attempt = options.stacktraces.length + 1;
    return retryDelay(attempt, backoff.baseMs, backoff.maxMs, options.retryAfterMs);
  };

  /** The Bee-Queue worker of each queue this process takes jobs from now (a paused queue has none). */
  const running = new Map<string, BeeQueue<TaskJob>>();
  /** Each running queue's way to skip Bee-Queue's finish of a job the store finished. */
  const releasers = new Map<string, (jobId: string) => void>();
  /** Closes in flight, so a resume waits for its queue's pause to finish. */
  const closing = new Map<string, Promise<void>>();
  let stopped = false;

  /** Each running queue's share of the gate. */
  const lanes = new Map<BeeQueue<TaskJob>, Lane>();

  /** A tick takes a job only with a permit; a take that brings none, or a job Bee-Queue will not run, gives it back. */
  const gateTakes = (queue: BeeQueue<TaskJob>, lane: Lane, gate: TakeGate, backlog: () => boolean) => {
    const internal = queue as unknown as WithTake;
    const take = internal._getNextJob.bind(queue);
    if (typeof take !== "function") throw new Error("bee-queue has no _getNextJob: the take gate cannot be applied");
    internal._getNextJob = async () => {
      if (!(await gate.acquire(lane))) return null;
      let job: BeeQueue.Job<TaskJob> | null = null;
      try {
        job = await take();
      } finally {
        // Closing: Bee-Queue drops a job it took now; stall detection gives it back to the queue.
        gate.taken(lane, job && !internal.paused ? String(job.id) : undefined, backlog());
      }
      return job;
    };
  };

  const startQueue = async (name: string) => {
    const queue = createWorkerQueue(name, { redis, stallIntervalMs, backoff: backoffOf });
    // Fewer round trips per job (issue 18): bee-queue-hooks.ts says what each hook changes.
    const hooked = hookBeeQueue(queue as BeeQueue<unknown>, taskStart ? { start: taskStart } : {});
    releasers.set(name, (jobId) => hooked.jobReleased(jobId));
    logConnectionErrors(queue, logger.warn.bind(logger), `queue ${name}`);
    const lane = gate?.openLane(name);
    if (gate && lane) {
      gateTakes(queue, lane, gate, hooked.backlog);
      lanes.set(queue, lane);
    }
    queue.process(concurrency, async (job) => {
      if (gate && lane) gate.started(lane, String(job.id));
      const started = performance.now();
      stats.active++;
      try {
        return await processTask(job, name);
      } catch (error) {
        stats.failed++;
        throw error;
      } finally {
        stats.active--;
        stats.processed++;
        gate?.ended();
        onJobEnd?.(performance.now() - started);
        onJobDone?.(stats);
      }
    });
    if (failedJobs) {
      // Bee-Queue's 'failed' is the final failure ('retrying' precedes a retry).
      queue.on("failed", (job) => {
        failedJobs.failed(name, job.id).catch((error: unknown) => {
          logger.warn({ queue: name, job_id: job.id, err: error }, "could not record a failed job's time");
        });
      });
    }
    running.set(name, queue);
    await queue.ready();
    // Half the stall interval, as Bee-Queue advises: a dead worker's jobs come back within 1.5 intervals.
    queue.checkStalledJobs(stallCheckIntervalMs, (error, stalled) => {
      const now = performance.now();
      const last = stall.last.get(name);
      if (last !== undefined) stall.maxGapMs = Math.max(stall.maxGapMs, now - last);
      stall.last.set(name, now);
      stall.checks++;
      if (error) logger.warn({ queue: name, error: errorMessage(error) }, "stall check failed");
      else if (stalled > 0) {
        stall.requeued += stalled;
        logger.warn({ queue: name, stalled }, "re-queued jobs of a worker that stopped");
      }
    });
  };

  const closeQueue = (name: string, timeoutMs: number): Promise<void> => {
    const queue = running.get(name);
    if (!queue) return closing.get(name) ?? Promise.resolve();
    running.delete(name);
    stall.last.delete(name);
    releasers.delete(name);
    const lane = lanes.get(queue);
    lanes.delete(queue);
    // Ticks waiting for a permit stop now; Bee-Queue's close, below, aborts the takes in flight.
    if (lane) gate?.closeLane(lane);
    const closed = queue
      .close(timeoutMs)
      .catch((error: unknown) => {
        logger.warn(
          { queue: name, error: errorMessage(error) },
          "jobs still running at the close deadline return to the queue",
        );
      })
      .finally(() => closing.delete(name));
    closing.set(name, closed);
    return closed;
  };

  return {
    async start(paused = []) {
      for (const name of queues) if (!paused.includes(name)) await startQueue(name);
      failedJobs?.start();
    },
    async pause(name) {
      if (!queues.includes(name) || !running.has(name)) return false;
      // Stops taking jobs at once; the jobs in flight finish (up to the job timeout) and are not cut.
      await closeQueue(name, pauseTimeoutMs);
      return true;
    },
    async resume(name) {
      if (stopped || !queues.includes(name) || running.has(name)) return false;
      await closing.get(name);
      if (stopped || running.has(name)) return false;
      await startQueue(name);
      return true;
    },
    pausedQueues: () => queues.filter((name) => !running.has(name)),
    async drain(timeoutMs) {
      stopped = true;
      failedJobs?.stop();
      await Promise.all([...queues.map((name) => closeQueue(name, timeoutMs)), ...closing.values()]);
    },
    stats: () => ({ ...stats }),
    jobReleased(queue, jobId) {
      releasers.get(queue)?.(jobId);
    },
    stallTiming() {
      const timing = {
        checks: stall.checks,
        interval_ms: stallCheckIntervalMs,
        max_gap_ms: Math.round(stall.maxGapMs),
        requeued: stall.requeued,
      };
      stall.maxGapMs = 0;
      return timing;
    },
  };
}
