/**
 * Failed jobs are kept for inspection within bounds (issue 13 §7): a real
 * worker runner fails real Bee-Queue jobs, records when each failed for good,
 * and the retention drops the oldest beyond JOB_FAILED_KEEP and those past
 * JOB_FAILED_MAX_AGE_SECONDS, from Bee-Queue's failed set and jobs hash alike.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { AppError } from "../../src/errors";
import { createEventBus } from "../../src/events";
import { createLogger } from "../../src/log";
import { JITTER_BACKOFF, queueKeys } from "../../src/queue/bee-queue-layout";
import { createEnqueuer } from "../../src/queue/enqueuer";
import { createFailedJobRetention, failedAtKey } from "../../src/queue/failed-jobs";
import { createWorkerRunner } from "../../src/queue/worker-runner";
import type { RedisClient } from "../../src/redis/client";
import type { TaskJob } from "../../src/task/contract";
import { deleteByPrefix, requireRedis, uniquePrefix, waitFor } from "../helpers/services";

const queue = uniquePrefix("failed-jobs");
const keys = queueKeys(queue);
const logger = createLogger({ level: "silent" });
let redis: RedisClient;

beforeAll(async () => {
  redis = await requireRedis();
});

afterAll(async () => {
  await deleteByPrefix(redis, `bq:${queue}`);
  await redis.quit();
});

const job = (n: number): TaskJob => ({
  task_id: `${queue}-${n}`,
  text: `failing ${n}`,
  task_type: "general_analysis",
  use_cache: false,
  temperature: 0,
  max_tokens: 10,
  source: "api",
  accepted_at: Date.now(),
});

test("failed jobs beyond the count to keep, and past the age to keep, are dropped, oldest first", async () => {
  const retention = createFailedJobRetention({ redis, queues: [queue], keep: 2, maxAgeMs: 60_000, logger });
  const runner = createWorkerRunner({
    redis,
    queues: [queue],
    concurrency: 1,
    processTask: async () => {
      throw new AppError("LLM_BAD_REQUEST", "refused", { retriable: false });
    },
    backoff: { baseMs: 10, maxMs: 10 },
    stallIntervalMs: 5000,
    logger,
    failedJobs: retention,
  });
  await runner.start();
  // Enqueued as the API does, with no retries: each job fails for good at its first attempt.
  const enqueuer = createEnqueuer({
    redis,
    queues: new Map([[queue, keys]]),
    options: { retries: 0, backoffStrategy: JITTER_BACKOFF, backoffMs: 10 },
    bus: createEventBus(),
    logger,
  });
  try {
    for (let n = 0; n < 5; n++) {
      await enqueuer.enqueue(queue, job(n));
      // One at a time, so that their failure times are in order.
      await waitFor(
        async () => (await redis.zcard(failedAtKey(keys))) === n + 1,
        `job ${n} recorded as failed`,
        10_000,
      );
    }
    expect(await redis.scard(keys.failed)).toBe(5);

    expect(await retention.prune()).toEqual({ [queue]: 3 });
    expect((await redis.smembers(keys.failed)).sort()).toEqual([`${queue}-3`, `${queue}-4`]);
    expect((await redis.hkeys(keys.jobs)).sort()).toEqual([`${queue}-3`, `${queue}-4`]);

    expect(await retention.prune(Date.now() + 61_000)).toEqual({ [queue]: 2 });
    expect(await redis.scard(keys.failed)).toBe(0);
    expect(await redis.hlen(keys.jobs)).toBe(0);
    expect(await redis.zcard(failedAtKey(keys))).toBe(0);
  } finally {
    await runner.drain(1000);
  }
});
