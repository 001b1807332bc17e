/**
 * POST /task/:id/feedback against the real app and Redis (issue 14): an
 * answer a client says was wrong leaves the semantic cache, so the next
 * identical request asks the LLM again; feedback is counted in /metrics, and
 * refused for a task that does not exist or has no answer.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import {
  deleteByPrefix,
  dropIndexesByPrefix,
  json,
  requireRedis,
  testConfig,
  uniquePrefix,
  waitFor,
} from "../helpers/services";

const prefix = uniquePrefix("cache-feedback");
let app: AppProcess;

beforeAll(async () => {
  app = await startApp({
    REDIS_URL: await isolatedRedisUrl(11),
    CACHE_REDIS_URL: testConfig.redisUrl,
    CACHE_PREFIX: prefix,
    LLM_PROVIDER: "simulated",
    SIMULATED_LATENCY_MS: "0",
  });
});

afterAll(async () => {
  await app?.stop();
  const redis = await requireRedis();
  await dropIndexesByPrefix(redis, prefix);
  await deleteByPrefix(redis, prefix);
  await redis.quit();
});

interface Task {
  task_id: string;
  status: string;
  result?: { from_cache: boolean; cache_id?: string; cache_tier?: string };
}

async function run(text: string): Promise<Task> {
  const posted = await fetch(`${app.url}/process`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text, task_type: "question_answering" }),
  });
  expect(posted.status).toBe(202);
  const { task_id } = (await posted.json()) as { task_id: string };
  return json<Task>(await fetch(`${app.url}/task/${task_id}?wait=20000`));
}

const feedback = (taskId: string, body: unknown) =>
  fetch(`${app.url}/task/${taskId}/feedback`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

test("an answer said to be wrong leaves the cache: the next identical request asks the LLM again", async () => {
  const text = `How many moons does Mars have? ${prefix}`;
  const first = await run(text);
  const served = await run(text);
  expect(served.result).toMatchObject({ from_cache: true, cache_tier: "exact" });

  const answer = await feedback(served.task_id, { correct: false, rating: 1 });
  expect(answer.status).toBe(200);
  expect(await answer.json()).toEqual({
    task_id: served.task_id,
    invalidated: true,
    cache_id: served.result?.cache_id as string,
  });
  expect(first.result?.cache_id).toBe(served.result?.cache_id as string);

  const asked = await run(text);
  expect(asked.result?.from_cache).toBe(false);
  type Metrics = { cache: { feedback: { received: number; wrong_cached: number; invalidations: number } } };
  // Counted by the API process, whose metrics reach Redis within a second.
  const counted = await waitFor(async () => {
    const metrics = (await (await fetch(`${app.url}/metrics`)).json()) as Metrics;
    return metrics.cache.feedback.received >= 1 ? metrics.cache.feedback : undefined;
  }, "the feedback in /metrics");
  expect(counted).toMatchObject({ received: 1, wrong_cached: 1, invalidations: 1 });
});

test("feedback needs a task with an answer, and correct or rating", async () => {
  expect((await feedback("0190b0c4-0000-7000-8000-000000000000", { correct: true })).status).toBe(404);
  const done = await run(`What is the capital of Peru? ${prefix}`);
  expect((await feedback(done.task_id, {})).status).toBe(422);
  expect((await feedback(done.task_id, { rating: 9 })).status).toBe(422);
  const kept = await feedback(done.task_id, { correct: true, rating: 5 });
  expect(kept.status).toBe(200);
  expect(await kept.json()).toEqual({ task_id: done.task_id, invalidated: false });
});
