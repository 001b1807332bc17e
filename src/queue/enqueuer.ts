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

interface Pending {
  job: TaskJob;
  resolve: (added: boolean) => void;
  reject: (error: unknown) => void;
}

interface Lane {
  buffer: Pending[];
  inFlight: number;
  scheduled: boolean;
  idle: Promise<void> | undefined;
  resolveIdle: (() => void) | undefined;
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
  const lanes = new Map<string, Lane>();

  /** Fails with 503 (UnavailableError) when Redis has not taken the save within saveTimeoutMs. */
  const bounded = <T>(promise: Promise<T>): Promise<T> =>
    withTimeout(promise, saveTimeoutMs, "enqueue").catch((error: unknown) => {
      throw error instanceof TimeoutError
        ? new UnavailableError("Redis", `the enqueue did not complete within ${saveTimeoutMs} ms`, error)
        : error;
    });

  const laneOf = (name: string): Lane => {
    let lane = lanes.get(name);
    if (!lane) {
      lane = { buffer: [], inFlight: 0, scheduled: false, idle: undefined, resolveIdle: undefined };
      lanes.set(name, lane);
    }
    return lane;
  };

  const send = async (name: string, lane: Lane): Promise<void> => {
    const queue = queues.get(name);
    const batch = lane.buffer.splice(0, maxBatch);
    if (!queue || batch.length === 0) return;
    lane.inFlight++;
    const started = performance.now();
    try {
      const jobs = batch.map(({ job }) =>
        queue
          .createJob(job)
          .setId(job.task_id)
          .retries(options.retries)
          .backoff(options.backoffStrategy, options.backoffMs),
      );
      // Bounded: while Redis restarts, a save can wait on the reconnection; the client gets a 503 to retry (with
      // its Idempotency-Key, which makes the retry safe should the save still land), never a hang.
      const failures = await bounded(queue.saveAll(jobs));
      bus.emit("enqueue.batch", { queue: name, size: batch.length, ms: performance.now() - started });
      batch.forEach((pending, i) => {
        const job = jobs[i];
        const failure = job ? failures.get(job) : undefined;
        if (failure) pending.reject(failure);
        // addJob answers nil, and saveAll leaves the id null, when the id already exists.
        else pending.resolve(job?.id !== null && job?.id !== undefined);
      });
    } catch (error) {
      logger.warn({ queue: name, size: batch.length, error: errorMessage(error) }, "enqueue batch failed");
      for (const pending of batch) pending.reject(error);
    } finally {
      lane.inFlight--;
      pump(name, lane);
    }
  };

  const pump = (name: string, lane: Lane): void => {
    while (lane.buffer.length > 0 && lane.inFlight < maxInFlight) void send(name, lane);
    if (lane.buffer.length === 0 && lane.inFlight === 0 && lane.resolveIdle) {
      lane.resolveIdle();
      lane.idle = undefined;
      lane.resolveIdle = undefined;
    }
  };

  return {
    enqueue(name, job) {
      if (!queues.has(name)) {
        return Promise.reject(new AppError("UNKNOWN_QUEUE", `no queue named '${name}' in this process`));
      }
      const lane = laneOf(name);
      const saved = new Promise<boolean>((resolve, reject) => {
        lane.buffer.push({ job, resolve, reject });
        if (lane.buffer.length >= maxBatch) return pump(name, lane);
        if (lane.scheduled) return;
        lane.scheduled = true;
        // Jobs handed over in the same turn of the event loop leave together.
        setImmediate(() => {
          lane.scheduled = false;
          pump(name, lane);
        });
      });
      // The bound counts from the hand-over: a job queued behind stuck batches must not wait for each in turn.
      return bounded(saved);
    },
    async flush() {
      const waits: Promise<void>[] = [];
      for (const lane of lanes.values()) {
        if (lane.buffer.length === 0 && lane.inFlight === 0) continue;
        lane.idle ??= new Promise<void>((resolve) => {
          lane.resolveIdle = resolve;
        });
        waits.push(lane.idle);
      }
      await Promise.all(waits);
    },
  };
}
