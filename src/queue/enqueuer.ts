/**
 * Batched enqueue with group commit. A job is handed over, and the promise
 * resolves once it is in Redis. While a batch is on the wire, new jobs wait
 * and go together in the next one: one pipelined `saveAll`, one round trip,
 * for all of them. At low load a job leaves on the next turn of the event
 * loop (no timer, no added latency); under load batches grow by themselves,
 * up to maxBatch, and the wait is bounded by one batch's round trip.
 *
 * Round trips per accepted request: 1 / batch size (Bee-Queue's addJob Lua
 * script for each job, all in one pipeline).
 */
import type BeeQueue from "bee-queue";
import { AppError, errorMessage, UnavailableError } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import type { TaskJob } from "../task/contract";
import { createBatcher, ItemFailure } from "../util/batcher";
import { TimeoutError, withTimeout } from "../util/timeout";

export interface EnqueueOptions {
  retries: number;
  backoffStrategy: string;
  backoffMs: number;
}

export interface Enqueuer {
  /**
   * Saves the job; resolves true when it was added, false when a job with
   * the same id already exists in the queue (Bee-Queue's addJob keeps the first).
   */
  enqueue(queue: string, job: TaskJob): Promise<boolean>;
  /** Waits for every handed-over job to be saved. */
  flush(): Promise<void>;
}

export function createEnqueuer(deps: {
  queues: ReadonlyMap<string, BeeQueue<TaskJob>>;
  options: EnqueueOptions;
  bus: EventBus;
  logger: Logger;
  /** Largest batch in one pipeline. */
  maxBatch?: number;
  /** Batches of one queue on the wire at once; more jobs wait for the next. */
  maxInFlight?: number;
  /** A batch not saved within this long fails its requests with 503. */
  saveTimeoutMs?: number;
}): Enqueuer {
  const { queues, options, bus, logger, maxBatch = 1000, maxInFlight = 2, saveTimeoutMs = 3000 } = deps;

  /** Fails with 503 (UnavailableError) when Redis has not taken the save within saveTimeoutMs. */
  const bounded = <T>(promise: Promise<T>): Promise<T> =>
    withTimeout(promise, saveTimeoutMs, "enqueue").catch((error: unknown) => {
      throw error instanceof TimeoutError
        ? new UnavailableError("Redis", `the enqueue did not complete within ${saveTimeoutMs} ms`, error)
        : error;
    });

  const save = async (name: string, queue: BeeQueue<TaskJob>, batch: TaskJob[]): Promise<(boolean | ItemFailure)[]> => {
    const started = performance.now();
    try {
      const jobs = batch.map((job) =>
        queue
          .createJob(job)
          .setId(job.task_id)
          .retries(options.retries)
          .backoff(options.backoffStrategy, options.backoffMs),
      );
      // Bounded: while Redis restarts, a save can wait on the reconnection; the client gets a 503 to retry (with
      // its Idempotency-Key, which makes the retry safe should the save still land), never a hang. The bound
      // also frees the batch's in-flight slot.
      const failures = await bounded(queue.saveAll(jobs));
      bus.emit("enqueue.batch", { queue: name, size: batch.length, ms: performance.now() - started });
      return jobs.map((job) => {
        const failure = failures.get(job);
        // addJob answers nil, and saveAll leaves the id null, when the id already exists.
        return failure ? new ItemFailure(failure) : job.id !== null && job.id !== undefined;
      });
    } catch (error) {
      logger.warn({ queue: name, size: batch.length, error: errorMessage(error) }, "enqueue batch failed");
      throw error;
    }
  };

  // One lane per queue. Linger 0: jobs handed over in the same turn of the event loop leave together.
  const lanes = new Map(
    [...queues].map(([name, queue]) => [
      name,
      createBatcher<TaskJob, boolean>({
        lingerMs: 0,
        maxSize: maxBatch,
        maxInFlight,
        run: (batch) => save(name, queue, batch),
      }),
    ]),
  );

  return {
    enqueue(name, job) {
      const lane = lanes.get(name);
      if (!lane) return Promise.reject(new AppError("UNKNOWN_QUEUE", `no queue named '${name}' in this process`));
      // The bound counts from the hand-over: a job queued behind stuck batches must not wait for each in turn.
      return bounded(lane.add(job));
    },
    async flush() {
      await Promise.all([...lanes.values()].map((lane) => lane.flush()));
    },
  };
}
