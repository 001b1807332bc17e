/**
 * Every role derives the cache's vector index from one function of the
 * provider: with the default simulated provider, /health reports the index
 * the workers fill (with its entries) and no role creates an empty index of
 * EMBEDDING_MODEL's name beside it (issue 13 §13).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { deleteByPrefix, dropIndexesByPrefix, json, requireRedis, testConfig, uniquePrefix } from "../helpers/services";

const prefix = uniquePrefix("cache-index");
let app: AppProcess;

beforeAll(async () => {
  app = await startApp({
    REDIS_URL: await isolatedRedisUrl(11),
    CACHE_REDIS_URL: testConfig.redisUrl,
    CACHE_PREFIX: prefix,
    LLM_PROVIDER: "simulated",
    SIMULATED_LATENCY_MS: "0",
    EMBEDDING_DIM: "384",
  });
});

afterAll(async () => {
  await app?.stop();
  const redis = await requireRedis();
  await dropIndexesByPrefix(redis, prefix);
  await deleteByPrefix(redis, prefix);
  await redis.quit();
});

interface Health {
  checks: { semantic_cache: { ok: boolean; info?: { index: string; entries: number } } };
}

test("/health reports the index the workers fill, with its entries, and no empty index of another model", async () => {
  const posted = await fetch(`${app.url}/process`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      text: "The delivery was late but the support was helpful",
      task_type: "sentiment_analysis",
    }),
  });
  expect(posted.status).toBe(202);
  const { task_id } = (await posted.json()) as { task_id: string };
  const done = await json<{ status: string }>(await fetch(`${app.url}/task/${task_id}?wait=20000`));
  expect(done.status).toBe("SUCCESS");

  const health = await json<Health>(await fetch(`${app.url}/health`));
  expect(health.checks.semantic_cache.ok).toBe(true);
  expect(health.checks.semantic_cache.info?.index).toBe(`${prefix}-idx:simulated-lexical-384:384`);
  const redis = await requireRedis();
  try {
    const indexes = ((await redis.call("FT._LIST")) as string[]).filter((name) => name.startsWith(prefix));
    expect(indexes).toEqual([`${prefix}-idx:simulated-lexical-384:384`]);
  } finally {
    await redis.quit();
  }
  const again = await json<Health>(await fetch(`${app.url}/health`));
  expect(again.checks.semantic_cache.info?.entries).toBe(1);
});
