/** Batched enqueue against the real Redis: concurrent jobs share pipelined saves, and each is in Redis when its promise resolves. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import { createEventBus, type EventMap } from "../../src/events";
import { createLogger } from "../../src/log";
import { JITTER_BACKOFF, queueKeys } from "../../src/queue/bee-queue-layout";
import { createEnqueuer, NotQueuedError, QueuedUnknownError } from "../../src/queue/enqueuer";
import type { RedisClient } from "../../src/redis/client";
import { newTaskId, type TaskJob } from "../../src/task/contract";
import { deleteByPrefix, requireRedis, uniquePrefix } from "../helpers/services";

const logger = createLogger({ level: "silent" });
const keyPrefix = uniquePrefix("enq");
let redis: RedisClient;
const keys = queueKeys("ai_processing", keyPrefix);

function job(text: string): TaskJob {
  return {
    task_id: newTaskId(),
    text,
    task_type: "general_analysis",
    use_cache: true,
    temperature: 0.7,
    max_tokens: 100,
    source: "api",
    accepted_at: Date.now(),
  };
}

beforeAll(async () => {
  redis = await requireRedis();
});

afterAll(async () => {
  await deleteByPrefix(redis, keyPrefix);
  await redis.quit();
});

function setup(target: RedisClient = redis, limits: { saveTimeoutMs?: number; maxInFlight?: number } = {}) {
  const bus = createEventBus();
  const batches: EventMap["enqueue.batch"][] = [];
  bus.on("enqueue.batch", (batch) => batches.push(batch));
  const enqueuer = createEnqueuer({
    redis: target,
    queues: new Map([["ai_processing", keys]]),
    options: { retries: 3, backoffStrategy: JITTER_BACKOFF, backoffMs: 1000 },
    bus,
    logger,
    ...limits,
  });
  return { enqueuer, batches };
}

describe("enqueuer", () => {
  test("1,000 concurrent jobs are saved in a few pipelined batches, each in Redis when its promise resolves", async () => {
    const { enqueuer, batches } = setup();
    const jobs = Array.from({ length: 1000 }, (_, i) => job(`text ${i}`));

    const added = await Promise.all(jobs.map((j) => enqueuer.enqueue("ai_processing", j)));

    expect(added.every(Boolean)).toBe(true);
    const stored = await redis.hmget(`${keyPrefix}:ai_processing:jobs`, ...jobs.map((j) => j.task_id));
    expect(stored.filter((s) => s !== null)).toHaveLength(1000);
    const first = JSON.parse(stored[0] ?? "{}");
    expect(first.data.text).toBe("text 0");
    expect(first.options.retries).toBe(3);
    expect(first.options.backoff).toEqual({ strategy: JITTER_BACKOFF, delay: 1000 });
    expect(batches.reduce((sum, b) => sum + b.size, 0)).toBe(1000);
    expect(batches.length).toBeLessThanOrEqual(10);
  });

  test("a job whose id already exists is not added twice", async () => {
    const { enqueuer } = setup();
    const once = job("once");
    expect(await enqueuer.enqueue("ai_processing", once)).toBe(true);
    expect(await enqueuer.enqueue("ai_processing", { ...once, text: "again" })).toBe(false);
    const stored = JSON.parse((await redis.hget(`${keyPrefix}:ai_processing:jobs`, once.task_id)) ?? "{}");
    expect(stored.data.text).toBe("once");
  });

  test("an unknown queue is refused without touching Redis", async () => {
    const { enqueuer, batches } = setup();
    await expect(enqueuer.enqueue("nope", job("x"))).rejects.toThrow("no queue named 'nope'");
    expect(batches).toEqual([]);
  });

  test("flush waits until every handed-over job is saved", async () => {
    const { enqueuer } = setup();
    const jobs = Array.from({ length: 50 }, (_, i) => job(`flush ${i}`));
    for (const j of jobs) void enqueuer.enqueue("ai_processing", j);
    await enqueuer.flush();
    const stored = await redis.hmget(`${keyPrefix}:ai_processing:jobs`, ...jobs.map((j) => j.task_id));
    expect(stored.every((s) => s !== null)).toBe(true);
  });

  test("a save Redis does not answer fails with 503 within saveTimeoutMs of each hand-over, and frees its slot for the next jobs", async () => {
    // The real client, whose enqueue script hangs while `stalled` (as during a Redis restart, waiting on the
    // reconnection). Run once first, so that the script is defined on the client.
    await setup().enqueuer.enqueue("ai_processing", job("defines the script"));
    let stalled = true;
    const real = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const stalling = Object.create(redis) as RedisClient;
    (stalling as unknown as typeof real).enqueueBefore = (...args: unknown[]) =>
      stalled
        ? new Promise(() => {})
        : (real.enqueueBefore as (...a: unknown[]) => Promise<unknown>).apply(redis, args);
    const { enqueuer } = setup(stalling, { saveTimeoutMs: 700, maxInFlight: 1 });

    const started = performance.now();
    /** The enqueue's error and how long after its hand-over it came. */
    const failure = (text: string) => {
      const handedOver = performance.now();
      return enqueuer.enqueue("ai_processing", job(text)).then(
        () => ({ error: undefined, ms: performance.now() - handedOver }),
        (error: unknown) => ({ error, ms: performance.now() - handedOver }),
      );
    };
    const first = failure("stuck on the wire");
    await Bun.sleep(100);
    // Waits behind the stuck batch for the one slot: its bound counts from its own hand-over, not the batch's.
    const second = failure("stuck behind it");
    for (const { error, ms } of await Promise.all([first, second])) {
      // No answer: the 503 cannot say "not queued", so it carries the task id.
      expect(error).toBeInstanceOf(QueuedUnknownError);
      expect((error as QueuedUnknownError).status).toBe(503);
      expect(ms).toBeGreaterThanOrEqual(700 - 5);
      expect(ms).toBeLessThan(700 + 150);
    }
    expect(performance.now() - started).toBeLessThan(100 + 700 + 150);

    stalled = false;
    // The stuck batches' own bound frees the slot; a job handed over then is saved.
    await Bun.sleep(700);
    const after = job("after the stall");
    expect(await enqueuer.enqueue("ai_processing", after)).toBe(true);
    expect(await redis.hexists(`${keyPrefix}:ai_processing:jobs`, after.task_id)).toBe(1);
  });

  test("a save that reaches Redis after its deadline writes nothing and is a certain 503 (issue 13 §2)", async () => {
    // Sent once Redis is back, as ioredis does with a save it held while Redis was away: the script's clock
    // check refuses it, so a client that was told 503 and retries never pays for two tasks.
    await setup().enqueuer.enqueue("ai_processing", job("defines the script"));
    const real = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const late = Object.create(redis) as RedisClient;
    (late as unknown as typeof real).enqueueBefore = async (...args: unknown[]) => {
      await Bun.sleep(700);
      return (real.enqueueBefore as (...a: unknown[]) => Promise<unknown>).apply(redis, args);
    };
    const { enqueuer } = setup(late, { saveTimeoutMs: 1000 });
    const refused = job("arrives too late");
    await expect(enqueuer.enqueue("ai_processing", refused)).rejects.toBeInstanceOf(NotQueuedError);
    expect(await redis.hexists(`${keyPrefix}:ai_processing:jobs`, refused.task_id)).toBe(0);
    expect(await redis.lpos(`${keyPrefix}:ai_processing:waiting`, refused.task_id)).toBeNull();
  });
});
