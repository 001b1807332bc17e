/**
 * A poison job: a task whose runs keep dying (each start is recorded, none
 * finishes) is re-run by stall detection, which Bee-Queue does not count as
 * a retry. Past JOB_RETRIES + 4 starts the task fails for good with
 * TOO_MANY_ATTEMPTS instead of looping for ever; a task with a couple of
 * dead runs behind it still runs. The earlier starts are recorded through
 * the task store, as a dying worker would have left them.
 */

import { afterAll, beforeAll, expect, test } from "bun:test";
import { QUEUE_KEY_PREFIX, queuedJobs } from "../../src/queue/bee-queue-layout";
import { connectRedis, type RedisClient } from "../../src/redis/client";
import { createTaskStore } from "../../src/store/task-store";
import type { TaskJob } from "../../src/task/contract";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import type { AppProcess } from "../helpers/app-process";
import { json, testConfig } from "../helpers/services";
import { launchWithMock, outcomes } from "./fault-helpers";

const DB = 11;
let mock: MockOpenAiServer;
let redis: RedisClient;
let app: AppProcess | undefined;

beforeAll(async () => {
  mock = createMockOpenAiServer({ port: 0, latencyMs: 5 });
  const url = new URL(testConfig.redisUrl);
  url.pathname = `/${DB}`;
  redis = await connectRedis(url.toString());
});

afterAll(async () => {
  if (app) await app.stop();
  await redis.quit();
  mock.stop();
});

test("a task started JOB_RETRIES + 4 times without finishing fails with TOO_MANY_ATTEMPTS; one with 2 dead runs still succeeds", async () => {
  // The API alone: the jobs wait in Redis while the earlier, dead starts are recorded.
  app = await launchWithMock(mock, DB, { ROLES: "api", JOB_RETRIES: "3" });
  const submit = async (text: string) => {
    const response = await fetch(`${app?.url}/process`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text, use_cache: false }),
    });
    return (await json<{ task_id: string }>(response)).task_id;
  };
  const poison = await submit("the poison one");
  const survivor = await submit("the one that survives two crashes");
  await app.stop();
  app = undefined;

  const store = createTaskStore({ redis, resultTtlSeconds: 60, queued: queuedJobs(["ai_processing"]) });
  const jobOf = async (id: string) =>
    (JSON.parse((await redis.hget(`${QUEUE_KEY_PREFIX}:ai_processing:jobs`, id)) ?? "{}") as { data: TaskJob }).data;
  for (let i = 0; i < 7; i++) await store.start(await jobOf(poison), "ai_processing");
  for (let i = 0; i < 2; i++) await store.start(await jobOf(survivor), "ai_processing");

  app = await launchWithMock(mock, DB, { JOB_RETRIES: "3", WORKER_CONCURRENCY: "1" }, { keepDatabase: true });
  const tasks = await outcomes(app.url, [poison, survivor], 30_000);
  const failed = tasks.get(poison);
  expect(failed?.status).toBe("FAILURE");
  expect(failed?.error?.code).toBe("TOO_MANY_ATTEMPTS");
  expect(tasks.get(survivor)?.status).toBe("SUCCESS");
  // The poison task never reached the LLM again; the survivor did, once.
  expect(mock.counters().chat_requests).toBe(1);
  console.log("[fault] poison job: failed with TOO_MANY_ATTEMPTS after 8 starts; a task with 3 starts succeeded");
}, 120_000);
