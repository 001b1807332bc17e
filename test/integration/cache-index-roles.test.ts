/**
 * Every role derives the cache's vector index from one function of the
 * embedder: with the default simulated provider, and with chat simulated but
 * embeddings from the local model (issue 14), /health reports the index the
 * workers fill (with its entries) and no role creates an empty index of
 * another model's name beside it (issue 13 §13).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import {
  deleteByPrefix,
  dropIndexesByPrefix,
  json,
  requireLocalEmbedder,
  requireRedis,
  testConfig,
  uniquePrefix,
} from "../helpers/services";

const apps: AppProcess[] = [];
const prefixes: string[] = [];

afterAll(async () => {
  for (const app of apps) await app.stop();
  const redis = await requireRedis();
  for (const prefix of prefixes) {
    await dropIndexesByPrefix(redis, prefix);
    await deleteByPrefix(redis, prefix);
  }
  await redis.quit();
});

interface Health {
  checks: { semantic_cache: { ok: boolean; info?: { index: string; entries: number } } };
}

describe.each([
  ["simulated embeddings", { EMBEDDING_DIM: "384" }, "simulated-lexical-384:384", 11],
  ["local-model embeddings", { EMBEDDING_PROVIDER: "local" }, "multilingual-e5-small-q4:384", 12],
] as const)("%s", (_, embeddingEnv, indexModel, database) => {
  const prefix = uniquePrefix("cache-index");
  prefixes.push(prefix);
  let app: AppProcess;

  test("/health reports the index the workers fill, with its entries, and no empty index of another model", async () => {
    if ("EMBEDDING_PROVIDER" in embeddingEnv) await requireLocalEmbedder();
    app = await startApp({
      REDIS_URL: await isolatedRedisUrl(database),
      CACHE_REDIS_URL: testConfig.redisUrl,
      CACHE_PREFIX: prefix,
      LLM_PROVIDER: "simulated",
      SIMULATED_LATENCY_MS: "0",
      ...embeddingEnv,
    });
    apps.push(app);
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
    expect(health.checks.semantic_cache.info?.index).toBe(`${prefix}-idx:${indexModel}`);
    const redis = await requireRedis();
    try {
      const indexes = ((await redis.call("FT._LIST")) as string[]).filter((name) => name.startsWith(prefix));
      expect(indexes).toEqual([`${prefix}-idx:${indexModel}`]);
    } finally {
      await redis.quit();
    }
    const again = await json<Health>(await fetch(`${app.url}/health`));
    expect(again.checks.semantic_cache.info?.entries).toBe(1);
  });
});
