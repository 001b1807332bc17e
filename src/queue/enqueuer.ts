/**
 * Batched enqueue with group commit. A job is handed over, and the promise
 * resolves once it is in Redis. While a batch is on the wire, new jobs wait
 * and go together in the next one: one pipelined `saveAll`, one round trip,
 * for all of them. At low load a job leaves on the next turn of the event
 * loop (no timer, no added latency); under load batches grow by themselves,
 * up to maxBatch, and the wait is bounded by one batch's round trip.
 *
 * Round trips per accepted request: 1 / batch size (one Lua call per batch
 * that writes the jobs in Bee-Queue's own record format, as its addJob does).
 *
 * A 503 must mean "not queued" (issue 13 §2): while Redis is away, ioredis
 * keeps a timed-out save in its offline queue and sends it when Redis is
 * back, so a client told to retry would have paid for two tasks. The batch's
 * script therefore carries a deadline and Redis refuses it, writing nothing,
 * once its own clock passes it: WRITE_MARGIN_MS before the client is answered.
 * A refused batch is a certain 503 (NOT_QUEUED). A batch with no answer by
 * the bound (the reply lost or late) may still have been written before the
 * deadline: its 503 (QUEUED_UNKNOWN) carries the task id, so the client can
 * look it up, and a retry with the same Idempotency-Key re-enqueues the same
 * id, which the script writes at most once.
 */
import type Redis from "ioredis";
import { AppError, errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import { defineScript } from "../redis/script";
import type { TaskJob } from "../task/contract";
import { createBatcher, ItemFailure } from "../util/batcher";
import { withTimeout } from "../util/timeout";
import { jobRecord, type QueueKeys } from "./bee-queue-layout";

/** How long before the client's bound Redis stops taking a batch: covers the reply's way back and clock skew. */
export const WRITE_MARGIN_MS = 500;

/*
 * KEYS[1] bq:{queue}:jobs   KEYS[2] bq:{queue}:waiting
 * ARGV triples: job id, job record, deadline (epoch ms by Redis's clock)
 * Returns per job: 1 added, 0 the id exists, -1 its deadline passed (not written).
 * HSETNX both checks and writes, as Bee-Queue's addJob does with HEXISTS + HSET.
 */
const ADD_BEFORE = defineScript<number[]>(
  "enqueueBefore",
  `
local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local reply, added = {}, {}
for i = 1, #ARGV, 3 do
  if now > tonumber(ARGV[i + 2]) then
    reply[#reply + 1] = -1
  elseif redis.call("HSETNX", KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    added[#added + 1] = ARGV[i]
    reply[#reply + 1] = 1
  else
    reply[#reply + 1] = 0
  end
end
if #added > 0 then redis.call("LPUSH", KEYS[2], unpack(added)) end
return reply
`,
);

/** Redis refused the batch at its deadline: the job is certainly not queued. A retry is safe. */
export class NotQueuedError extends AppError {
  constructor(ms: number, cause?: unknown) {
    super("NOT_QUEUED", `Redis did not take the task within ${ms} ms; nothing was queued, retry shortly`, {
      status: 503,
      retriable: true,
      cause,
      details: { service: "Redis" },
    });
    this.name = "NotQueuedError";
  }
}

/** No answer from Redis by the bound: the job may have been queued. The answer carries its task id. */
export class QueuedUnknownError extends AppError {
  constructor(taskId: string, ms: number, cause?: unknown) {
    super(
      "QUEUED_UNKNOWN",
      `Redis did not answer within ${ms} ms; the task may have been queued: GET /task/${taskId}, or retry with the same Idempotency-Key`,
      { status: 503, retriable: true, cause, details: { service: "Redis", task_id: taskId } },
    );
    this.name = "QueuedUnknownError";
  }
}

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

/** A job handed over, and the moment (epoch ms) after which Redis must not write it. */
interface Pending {
  job: TaskJob;
  deadline: number;
}

export function createEnqueuer(deps: {
  redis: Redis;
  /** The queues a job may go to, by name, with their keys (bee-queue-layout.ts). */
  queues: ReadonlyMap<string, QueueKeys>;
  options: EnqueueOptions;
  bus: EventBus;
  logger: Logger;
  /** Largest batch in one pipeline. */
  maxBatch?: number;
  /** Batches of one queue on the wire at once; more jobs wait for the next. */
  maxInFlight?: number;
  /** A job not saved within this long (from its hand-over) fails its request with 503. */
  saveTimeoutMs?: number;
}): Enqueuer {
  const { redis, queues, options, bus, logger, maxBatch = 1000, maxInFlight = 2, saveTimeoutMs = 3000 } = deps;
  if (saveTimeoutMs <= WRITE_MARGIN_MS) throw new Error(`saveTimeoutMs must exceed ${WRITE_MARGIN_MS} ms`);

  const save = async (name: string, keys: QueueKeys, batch: Pending[]): Promise<(boolean | ItemFailure)[]> => {
    const started = performance.now();
    const now = Date.now();
    const args: (string | number)[] = [];
    for (const { job, deadline } of batch) args.push(job.task_id, jobRecord(job, { now, ...options }), deadline);
    try {
      // Bounded, so that a save stuck on a reconnection frees its in-flight slot; should ioredis send it once
      // Redis is back, the script's deadline refuses it.
      const reply = await withTimeout(
        ADD_BEFORE.run(redis, [keys.jobs, keys.waiting], args),
        saveTimeoutMs,
        "enqueue batch",
      );
      bus.emit("enqueue.batch", { queue: name, size: batch.length, ms: performance.now() - started });
      return reply.map((outcome) =>
        outcome === -1 ? new ItemFailure(new NotQueuedError(saveTimeoutMs)) : outcome === 1,
      );
    } catch (error) {
      logger.warn({ queue: name, size: batch.length, error: errorMessage(error) }, "enqueue batch failed");
      throw error;
    }
  };

  // One lane per queue. Linger 0: jobs handed over in the same turn of the event loop leave together.
  const lanes = new Map(
    [...queues].map(([name, keys]) => [
      name,
      createBatcher<Pending, boolean>({
        lingerMs: 0,
        maxSize: maxBatch,
        maxInFlight,
        run: (batch) => save(name, keys, batch),
      }),
    ]),
  );

  return {
    async enqueue(name, job) {
      const lane = lanes.get(name);
      if (!lane) throw new AppError("UNKNOWN_QUEUE", `no queue named '${name}' in this process`);
      // The bound counts from the hand-over: a job queued behind stuck batches must not wait for each in turn.
      const deadline = Date.now() + saveTimeoutMs - WRITE_MARGIN_MS;
      try {
        return await withTimeout(lane.add({ job, deadline }), saveTimeoutMs, "enqueue");
      } catch (error) {
        if (error instanceof AppError) throw error;
        // No answer (or a lost connection, logged once per batch by save): the script may have run before its
        // deadline.
        throw new QueuedUnknownError(job.task_id, saveTimeoutMs, error);
      }
    },
    async flush() {
      await Promise.all([...lanes.values()].map((lane) => lane.flush()));
    },
  };
}
