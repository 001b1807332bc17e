/**
 * Runs jobs of some queues in this process: one Bee-Queue worker per queue,
 * each with `concurrency` jobs in flight, stall detection on (a job whose
 * process died is re-run: acks-late), and retries with exponential backoff and
 * jitter that never wait less than the provider's Retry-After.
 */

import type BeeQueue from "bee-queue";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import type { RedisClient } from "../redis/client";
import { logConnectionErrors } from "../redis/client";
import type { TaskJob } from "../task/contract";
import { retryDelay } from "../util/backoff";
import type { FailedJobRetention } from "./failed-jobs";
import { createWorkerQueue } from "./queues";

export interface WorkerRunnerStats {
  active: number;
  processed: number;
  failed: number;
}

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
}): WorkerRunner {
  const { redis, queues, concurrency, processTask, backoff, stallIntervalMs, logger, onJobDone, failedJobs } = deps;
  const { pauseTimeoutMs = 300_000 } = deps;
  const stats: WorkerRunnerStats = { active: 0, processed: 0, failed: 0 };

  const backoffOf = (job: BeeQueue.Job<TaskJob>) => {
    const options = job.options as { stacktraces: string[]; retryAfterMs?: number };
    // Called before Bee-Queue records this failure: earlier failures + this one.
    const attempt = options.stacktraces.length + 1;
    return retryDelay(attempt, backoff.baseMs, backoff.maxMs, options.retryAfterMs);
  };

  /** The Bee-Queue worker of each queue this process takes jobs from now (a paused queue has none). */
  const running = new Map<string, BeeQueue<TaskJob>>();
  /** Closes in flight, so a resume waits for its queue's pause to finish. */
  const closing = new Map<string, Promise<void>>();
  let stopped = false;

  const startQueue = async (name: string) => {
    const queue = createWorkerQueue(name, { redis, stallIntervalMs, backoff: backoffOf });
    logConnectionErrors(queue, logger.warn.bind(logger), `queue ${name}`);
    queue.process(concurrency, async (job) => {
      stats.active++;
      try {
        return await processTask(job, name);
      } catch (error) {
        stats.failed++;
        throw error;
      } finally {
        stats.active--;
        stats.processed++;
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
    queue.checkStalledJobs(Math.max(250, Math.floor(stallIntervalMs / 2)), (error, stalled) => {
      if (error) logger.warn({ queue: name, error: errorMessage(error) }, "stall check failed");
      else if (stalled > 0) logger.warn({ queue: name, stalled }, "re-queued jobs of a worker that stopped");
    });
  };

  const closeQueue = (name: string, timeoutMs: number): Promise<void> => {
    const queue = running.get(name);
    if (!queue) return closing.get(name) ?? Promise.resolve();
    running.delete(name);
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
  };
}
