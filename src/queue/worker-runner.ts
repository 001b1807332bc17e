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
  start(): Promise<void>;
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
}): WorkerRunner {
  const { redis, queues, concurrency, processTask, backoff, stallIntervalMs, logger, onJobDone, failedJobs } = deps;
  const workers: BeeQueue<TaskJob>[] = [];
  const stats: WorkerRunnerStats = { active: 0, processed: 0, failed: 0 };

  const backoffOf = (job: BeeQueue.Job<TaskJob>) => {
    const options = job.options as { stacktraces: string[]; retryAfterMs?: number };
    // Called before Bee-Queue records this failure: earlier failures + this one.
    const attempt = options.stacktraces.length + 1;
    return retryDelay(attempt, backoff.baseMs, backoff.maxMs, options.retryAfterMs);
  };

  return {
    async start() {
      for (const name of queues) {
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
        await queue.ready();
        // Half the stall interval, as Bee-Queue advises: a dead worker's jobs come back within 1.5 intervals.
        queue.checkStalledJobs(Math.max(250, Math.floor(stallIntervalMs / 2)), (error, stalled) => {
          if (error) logger.warn({ queue: name, error: errorMessage(error) }, "stall check failed");
          else if (stalled > 0) logger.warn({ queue: name, stalled }, "re-queued jobs of a worker that stopped");
        });
        workers.push(queue);
      }
      failedJobs?.start();
    },
    async drain(timeoutMs) {
      failedJobs?.stop();
      await Promise.all(
        workers.map((queue) =>
          queue.close(timeoutMs).catch((error: unknown) => {
            logger.warn({ error: errorMessage(error) }, "jobs still running at the drain deadline return to the queue");
          }),
        ),
      );
    },
    stats: () => ({ ...stats }),
  };
}
