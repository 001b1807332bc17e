/**
 * The semantic cache through the whole product: the real app (API and worker
 * processes) on its own Redis database for queues and results, the cache on
 * database 0 (the only one the Query Engine indexes) under a prefix of its
 * own, and the LLM behind the project's mock OpenAI server.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Static } from "@sinclair/typebox";
import type { MetricsSnapshot } from "../../src/metrics/snapshot";
import type { TaskSchema } from "../../src/task/contract";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
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

type Task = Static<typeof TaskSchema>;
const prefix = uniquePrefix("cache-e2e");
let mock: MockOpenAiServer;
let app: AppProcess;

beforeAll(async () => {
  mock = createMockOpenAiServer({ port: 0, latencyMs: 5, embeddingDim: 256 });
  app = await startApp({
    REDIS_URL: await isolatedRedisUrl(10),
    CACHE_REDIS_URL: testConfig.redisUrl,
    CACHE_PREFIX: prefix,
    OPENAI_API_KEY: "sk-test-not-a-real-key",
    OPENAI_BASE_URL: mock.url,
    LLM_MODEL: "mock-model",
    EMBEDDING_DIM: "256",
    WORKER_CONCURRENCY: "2",
  });
});

afterAll(async () => {
  await app?.stop();
  mock.stop();
  const redis = await requireRedis();
  await dropIndexesByPrefix(redis, prefix);
  await deleteByPrefix(redis, prefix);
  await redis.quit();
});

async function run(body: Record<string, unknown>): Promise<Task> {
  const response = await fetch(`${app.url}/process`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ task_type: "question_answering", ...body }),
  });
  expect(response.status).toBe(202);
  const { task_id } = (await response.json()) as { task_id: string };
  return waitFor(
    async () => {
      const task = await json<Task>(await fetch(`${app.url}/task/${task_id}?wait=5000`));
      return task.status === "SUCCESS" || task.status === "FAILURE" ? task : undefined;
    },
    `task ${task_id} to end`,
    20_000,
  );
}

describe("semantic cache end to end", () => {
  test("a repeat is answered from the exact tier, a near-duplicate from the semantic tier, and /metrics counts both", async () => {
    const first = await run({ text: "How many bones does an adult human have?" });
    expect(first.result).toMatchObject({ from_cache: false, cache_id: expect.any(String) });

    const repeat = await run({ text: "how many bones does an adult human have?" });
    expect(repeat.result).toMatchObject({
      from_cache: true,
      cache_tier: "exact",
      cache_id: first.result?.cache_id,
      response: first.result?.response,
    });
    const near = await run({ text: "How many bones does an adult human have" });
    expect(near.result).toMatchObject({ from_cache: true, cache_tier: "semantic" });
    expect(near.result?.similarity).toBeGreaterThanOrEqual(testConfig.cache.similarityThreshold);

    const opted = await run({ text: "How many bones does an adult human have?", use_cache: false });
    expect(opted.result?.from_cache).toBe(false);
    expect(mock.counters().chat_requests).toBe(2);

    const metrics = await waitFor(async () => {
      const m = await json<MetricsSnapshot>(await fetch(`${app.url}/metrics`));
      return m.completed_tasks === 4 ? m : undefined;
    }, "metrics to count 4 tasks");
    expect(metrics.cache).toMatchObject({ exact_hits: 1, semantic_hits: 1, misses: 1, bypassed: 1, hit_rate: 0.6667 });
    expect(metrics.cache.embedding_calls).toBeGreaterThanOrEqual(1);
    expect(metrics.cache.estimated_cost_saved_usd).toBeGreaterThan(0);
  }, 60_000);

  test("/health reports the semantic tier's index; DELETE /cache/clear and /cache/:id really delete", async () => {
    const health = await json<{ checks: Record<string, { ok: boolean; info?: { entries: number } }> }>(
      await fetch(`${app.url}/health`),
    );
    expect(health.checks.semantic_cache?.ok).toBe(true);

    const a = await run({ text: "Summarise the plot of Hamlet", task_type: "summarization" });
    await run({ text: "Summarise the plot of Macbeth", task_type: "summarization" });
    const c = await run({ text: "Classify: the parcel arrived broken", task_type: "classification" });

    const del = (path: string) => fetch(`${app.url}${path}`, { method: "DELETE" });
    const one = await del(`/cache/${c.result?.cache_id}`);
    expect(await one.json()).toEqual({ deleted: 1, id: c.result?.cache_id });
    expect((await del(`/cache/${c.result?.cache_id}`)).status).toBe(404);
    expect((await del("/cache/not-an-id")).status).toBe(422);

    const cleared = await del("/cache/clear?task_type=summarization");
    expect(await cleared.json()).toEqual({ deleted: 2, task_type: "summarization" });
    expect((await del("/cache/clear?task_type=Bad*")).status).toBe(422);
    const again = await run({ text: "Summarise the plot of Hamlet", task_type: "summarization" });
    expect(again.result?.from_cache).toBe(false);
    expect(again.result?.response).toBe(a.result?.response as string);
    const all = await del("/cache/clear");
    expect(((await all.json()) as { deleted: number }).deleted).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
