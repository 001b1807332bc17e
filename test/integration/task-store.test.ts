/** Task state in the real Redis: transitions, results with their TTL, PENDING from the queue, tenant scoping, and wake-ups. */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLogger } from "../../src/log";
import { queuedJobs } from "../../src/queue/bee-queue-layout";
import type { RedisClient } from "../../src/redis/client";
import { createTaskStore, resultKey } from "../../src/store/task-store";
import { createTaskWaiter, type TaskWaiter } from "../../src/store/task-waiter";
import type { TaskResult } from "../../src/task/contract";
import { newTaskId, type TaskJob } from "../../src/task/contract";
import { deleteByPrefix, requireRedis, uniquePrefix } from "../helpers/services";

const queuePrefix = uniquePrefix("ts");
let redis: RedisClient;
let waiter: TaskWaiter;
const ids: string[] = [];

function job(overrides: Partial<TaskJob> = {}): TaskJob {
  const task_id = newTaskId();
  ids.push(task_id);
  return {
    task_id,
    text: "hello",
    task_type: "summarization",
    use_cache: true,
    temperature: 0.2,
    max_tokens: 50,
    source: "api",
    accepted_at: Date.now(),
    ...overrides,
  };
}

const result: TaskResult = {
  response: "ok",
  task_type: "summarization",
  model: "simulated",
  processing_time: 0.01,
  from_cache: false,
  metadata: { tokens_used: 3, prompt_tokens: 2, completion_tokens: 1 },
};

beforeAll(async () => {
  redis = await requireRedis();
  waiter = await createTaskWaiter({ redis, logger: createLogger({ level: "silent" }) });
});

afterAll(async () => {
  await waiter.close();
  if (ids.length > 0) await redis.del(...ids.map(resultKey));
  await deleteByPrefix(redis, queuePrefix);
  await redis.quit();
});

const store = () =>
  createTaskStore({ redis, resultTtlSeconds: 120, queued: queuedJobs(["ai_processing"], queuePrefix) });

describe("task store", () => {
  test("a task goes STARTED → SUCCESS with its result, and the result expires after RESULT_TTL_SECONDS", async () => {
    const tasks = store();
    const task = job();
    expect(await tasks.start(task, "ai_processing")).toEqual({ status: "STARTED", attempt: 1 });
    expect((await tasks.get(task.task_id))?.status).toBe("STARTED");

    await tasks.succeed(task.task_id, result);

    const state = await tasks.get(task.task_id);
    expect(state).toMatchObject({ status: "SUCCESS", result, queue: "ai_processing", attempts: 1 });
    const ttl = await redis.ttl(resultKey(task.task_id));
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
  });

  test("a succeeded task keeps its text in its record, unless RESULT_KEEP_INPUT is false", async () => {
    const kept = job();
    await store().start(kept, "ai_processing");
    await store().succeed(kept.task_id, result, Date.now(), undefined, undefined, kept.text);
    expect((await store().get(kept.task_id))?.input).toBe(kept.text);

    const dropping = createTaskStore({
      redis,
      resultTtlSeconds: 120,
      queued: queuedJobs(["ai_processing"], queuePrefix),
      keepInput: false,
    });
    const dropped = job();
    await dropping.start(dropped, "ai_processing");
    await dropping.succeed(dropped.task_id, result, Date.now(), undefined, undefined, dropped.text);
    const state = await dropping.get(dropped.task_id);
    expect(state?.status).toBe("SUCCESS");
    expect(state?.input).toBeUndefined();
  });

  test("a finished task is never started again, so a re-run after a crash cannot undo its result", async () => {
    const tasks = store();
    const task = job();
    await tasks.start(task, "ai_processing");
    await tasks.succeed(task.task_id, result);
    expect(await tasks.start(task, "ai_processing")).toEqual({ status: "SUCCESS" });
    expect((await tasks.get(task.task_id))?.status).toBe("SUCCESS");
  });

  test("a retried attempt shows RETRY with its error, and counts attempts", async () => {
    const tasks = store();
    const task = job();
    await tasks.start(task, "ai_processing");
    await tasks.retry(task.task_id, { code: "LLM_RATE_LIMITED", message: "429", retriable: true });
    expect(await tasks.get(task.task_id)).toMatchObject({ status: "RETRY", error: { code: "LLM_RATE_LIMITED" } });
    expect(await tasks.start(task, "ai_processing")).toEqual({ status: "STARTED", attempt: 2 });
    await tasks.fail(task.task_id, { code: "LLM_BAD_REQUEST", message: "400", retriable: false });
    expect(await tasks.get(task.task_id)).toMatchObject({ status: "FAILURE", attempts: 2 });
  });

  test("a task still in its queue reads as PENDING; an unknown id reads as nothing", async () => {
    const tasks = store();
    const task = job();
    await redis.hset(`${queuePrefix}:ai_processing:jobs`, task.task_id, JSON.stringify({ data: task, options: {} }));
    expect(await tasks.get(task.task_id)).toMatchObject({ status: "PENDING", queue: "ai_processing" });
    expect(await tasks.get(newTaskId())).toBeUndefined();
  });

  test("a job the queue failed before its task recorded anything reads FAILURE with a reason, not PENDING for ever", async () => {
    const tasks = store();
    const task = job();
    await redis.hset(
      `${queuePrefix}:ai_processing:jobs`,
      task.task_id,
      JSON.stringify({ data: task, options: {}, status: "failed" }),
    );
    expect(await tasks.get(task.task_id)).toMatchObject({
      status: "FAILURE",
      error: { code: "JOB_FAILED", retriable: false },
    });
  });

  test("another tenant's task reads as nothing, queued or finished", async () => {
    const tasks = store();
    const queued = job({ tenant: "acme" });
    await redis.hset(
      `${queuePrefix}:ai_processing:jobs`,
      queued.task_id,
      JSON.stringify({ data: queued, options: {} }),
    );
    const done = job({ tenant: "acme" });
    await tasks.start(done, "ai_processing");
    await tasks.succeed(done.task_id, result);

    for (const id of [queued.task_id, done.task_id]) {
      expect(await tasks.get(id, "globex")).toBeUndefined();
      expect(await tasks.get(id, "acme")).toBeDefined();
    }
  });

  test("a waiter wakes when its task ends, and times out when it does not", async () => {
    const tasks = store();
    const task = job();
    await tasks.start(task, "ai_processing");
    const wait = waiter.wait(task.task_id, 5000);
    const started = performance.now();
    setTimeout(() => void tasks.succeed(task.task_id, result), 50);
    expect(await wait.done).toBe(true);
    expect(performance.now() - started).toBeLessThan(1000);

    const silent = waiter.wait(newTaskId(), 100);
    expect(await silent.done).toBe(false);
  });
});
