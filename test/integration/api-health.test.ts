/** GET /health, the error shape and the OpenAPI document, in process through app.handle against the real Redis. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Static } from "@sinclair/typebox";
import { createApp } from "../../src/api/app";
import type { ErrorBody } from "../../src/api/error-responses";
import type { HealthSchema } from "../../src/api/health";
import { type CacheAdmin, createCacheAdmin } from "../../src/cache";
import { createLogger } from "../../src/log";
import { RedisClient, redisProbe } from "../../src/redis/client";
import { json, requireRedis, testConfig, uniquePrefix } from "../helpers/services";

type Health = Static<typeof HealthSchema>;

const logger = createLogger({ level: "silent" });
let redis: RedisClient;
/** A client of a Redis that does not exist: every command fails at once. */
const absent = new RedisClient("redis://127.0.0.1:1", {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  retryStrategy: () => null,
});
absent.on("error", () => {});

const cacheOn = (client: RedisClient): CacheAdmin =>
  createCacheAdmin({
    redis: client,
    config: { ...testConfig.cache, prefix: cachePrefix },
    embedding: { model: "health-test", dim: 8 },
  });
const cachePrefix = uniquePrefix("health");

beforeAll(async () => {
  redis = await requireRedis();
});

afterAll(async () => {
  await cacheOn(redis).index.drop();
  absent.disconnect();
  await redis.quit();
});

const get = (app: ReturnType<typeof createApp>, path: string) => app.handle(new Request(`http://localhost${path}`));

describe("GET /health", () => {
  test("answers 200 with each check when Redis answers, and reports the semantic cache's index as available", async () => {
    const app = createApp({ logger, probes: [redisProbe(redis), cacheOn(redis).probe()], roles: ["api"] });
    const response = await get(app, "/health");
    const body = await json<Health>(response);

    expect(response.status).toBe(200);
    expect(body.status).toBe("ok");
    expect(body.roles).toEqual(["api"]);
    expect(body.checks?.redis).toMatchObject({ ok: true, required: true });
    expect(body.checks?.semantic_cache).toMatchObject({
      ok: true,
      required: false,
      info: { index: `${cachePrefix}-idx:health-test:8`, algorithm: "HNSW", dim: 8, entries: 0 },
    });
  });

  test("answers 503 naming the failed dependency when Redis does not answer", async () => {
    const app = createApp({ logger, probes: [redisProbe(absent), cacheOn(absent).probe()], roles: ["api"] });
    const response = await get(app, "/health");
    const body = await json<Health>(response);

    expect(response.status).toBe(503);
    expect(body.status).toBe("unavailable");
    expect(body.checks?.redis?.ok).toBe(false);
    expect(body.checks?.redis?.error).toBeString();
  });

  test("a failing optional probe is reported without making the process unhealthy", async () => {
    const app = createApp({ logger, probes: [redisProbe(redis), cacheOn(absent).probe()], roles: ["api"] });
    const response = await get(app, "/health");
    expect(response.status).toBe(200);
    const check = (await json<Health>(response)).checks?.semantic_cache;
    expect(check?.ok).toBe(false);
    expect(check?.error).toContain("semantic search unavailable (exact tier only)");
  });
});

describe("errors and docs", () => {
  test("a known path with a method it does not have answers 405 with Allow, before any body check", async () => {
    const app = createApp({ logger, probes: [redisProbe(redis)], roles: ["api"] });
    for (const method of ["PUT", "DELETE", "TRACE"]) {
      const response = await app.handle(new Request("http://localhost/health", { method }));
      expect(response.status, method).toBe(405);
      expect(response.headers.get("allow")).toBe("GET, HEAD");
      expect((await json<ErrorBody>(response)).error.code).toBe("METHOD_NOT_ALLOWED");
    }
  });

  test("an unknown route answers 404 in the one error shape", async () => {
    const app = createApp({ logger, probes: [], roles: ["api"] });
    const response = await get(app, "/no/such/route");
    expect(response.status).toBe(404);
    expect(await json<ErrorBody>(response)).toEqual({
      error: { code: "NOT_FOUND", message: "no route for GET /no/such/route" },
    });
  });

  test("the OpenAPI document at /swagger/json describes /health", async () => {
    const app = createApp({ logger, probes: [], roles: ["api"] });
    const response = await get(app, "/swagger/json");
    const spec = await json<{ info: { title: string }; paths: Record<string, unknown> }>(response);
    expect(response.status).toBe(200);
    expect(spec.info.title).toBe("AI-EventStream");
    expect(Object.keys(spec.paths)).toContain("/health");
    expect((await get(app, "/swagger")).status).toBe(200);
  });
});
