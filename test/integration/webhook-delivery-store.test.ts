/**
 * The webhook deliveries' Redis records (issue 15 §4), against the real
 * Redis: created with the task's final record, once; claimed under a lease
 * that a crashed deliverer's claim lapses from; a late record of a lapsed
 * claim does not move the schedule; a claim given back is due at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { queuedJobs } from "../../src/queue/bee-queue-layout";
import type { RedisClient } from "../../src/redis/client";
import { createTaskStore, resultKey } from "../../src/store/task-store";
import type { TaskResult } from "../../src/task/contract";
import { type Claim, createDeliveryStore, type DeliveryAttempt } from "../../src/webhooks/delivery-store";
import { deleteByPrefix, requireRedis, uniquePrefix } from "../helpers/services";

const prefix = uniquePrefix("webhook-store");
const result: TaskResult = {
  response: "fine",
  task_type: "general_analysis",
  model: "m",
  processing_time: 0.1,
  from_cache: false,
  metadata: { tokens_used: 3, prompt_tokens: 1, completion_tokens: 2 },
};
let redis: RedisClient;
const taskIds: string[] = [];

beforeAll(async () => {
  redis = await requireRedis();
});

afterAll(async () => {
  if (taskIds.length > 0) await redis.del(...taskIds.map(resultKey));
  await deleteByPrefix(redis, prefix);
  await redis.quit();
});

const attempt = (n: number, state: DeliveryAttempt["state"]): DeliveryAttempt => ({
  n,
  at: new Date().toISOString(),
  status_code: 500,
  duration_ms: 3,
  state,
});

describe("webhook delivery records", () => {
  test("a finish creates the delivery in its own pipeline, once, with the body of the task's view", async () => {
    const deliveries = createDeliveryStore({ redis, prefix });
    const store = createTaskStore({
      redis,
      resultTtlSeconds: 60,
      queued: queuedJobs([]),
      onFinish: deliveries.onFinish,
    });
    const taskId = `${prefix}-a`;
    const plain = `${prefix}-b`;
    taskIds.push(taskId, plain);
    await store.succeed(taskId, result, 1_700_000_000_000, "acme", "https://example.com/h");
    // A finish recorded again (a retried pipeline) creates nothing more; a task without a callback_url, nothing.
    await store.succeed(taskId, result, 1_700_000_000_500, "acme", "https://example.com/h");
    await store.succeed(plain, result);

    const found = await deliveries.read(taskId);
    expect(found?.delivery).toMatchObject({
      id: `msg_${taskId}`,
      url: "https://example.com/h",
      tenant: "acme",
      type: "task.completed",
      state: "pending",
      attempts: 0,
      created_at: 1_700_000_000_000,
    });
    expect(JSON.parse(found?.delivery.body ?? "{}")).toEqual({
      type: "task.completed",
      timestamp: "2023-11-14T22:13:20.000Z",
      data: { task_id: taskId, status: "SUCCESS", result },
    });
    expect(await deliveries.read(plain)).toBeUndefined();
    expect(await redis.zcard(`${prefix}:due`)).toBe(1);
    await redis.zrem(`${prefix}:due`, taskId);
  });

  test("a claim holds a delivery for its lease; a lapsed claim's late record is listed but moves nothing", async () => {
    const deliveries = createDeliveryStore({ redis, prefix: `${prefix}:lease` });
    const store = createTaskStore({
      redis,
      resultTtlSeconds: 60,
      queued: queuedJobs([]),
      onFinish: deliveries.onFinish,
    });
    const taskId = `${prefix}-c`;
    taskIds.push(taskId);
    const t0 = Date.now();
    await store.fail(taskId, { code: "X", message: "no", retriable: false }, t0, undefined, "https://example.com/f");

    const [first] = await deliveries.claim(t0, 1000, 10);
    expect(first?.delivery.type).toBe("task.failed");
    expect(await deliveries.claim(t0 + 999, 1000, 10)).toEqual([]);
    // The first deliverer died: after its lease the delivery is claimed again.
    const [second] = await deliveries.claim(t0 + 1001, 1000, 10);
    expect(second?.lease).toBe(t0 + 2001);

    expect(await deliveries.record(first as Claim, attempt(1, "retrying"), "retrying", { nextAttemptAt: t0 + 1 })).toBe(
      false,
    );
    expect(
      await deliveries.record(second as Claim, attempt(1, "retrying"), "retrying", { nextAttemptAt: t0 + 5000 }),
    ).toBe(true);
    const read = await deliveries.read(taskId);
    expect(read?.delivery).toMatchObject({ state: "retrying", attempts: 1, next_attempt_at: t0 + 5000 });
    expect(read?.attempts).toHaveLength(2);
    expect(await deliveries.claim(t0 + 4999, 1000, 10)).toEqual([]);

    // Given back at shutdown: due at once, no attempt counted.
    const [third] = await deliveries.claim(t0 + 5000, 1000, 10);
    expect(await deliveries.release(third as Claim, t0 + 5001)).toBe(true);
    const [fourth] = await deliveries.claim(t0 + 5001, 1000, 10);
    expect(fourth?.delivery.attempts).toBe(1);
    expect(await deliveries.record(fourth as Claim, attempt(2, "failed"), "failed")).toBe(true);
    expect((await deliveries.read(taskId))?.delivery).toMatchObject({ state: "failed", attempts: 2 });
    expect(await deliveries.claim(t0 + 10_000_000, 1000, 10)).toEqual([]);
  });
});
