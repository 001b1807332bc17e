/** GET /health, the error shape and the OpenAPI document, in process through app.handle against the real Redis. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Static } from "@sinclair/typebox";
import { createApp } from "../../src/api/app";
import type { ErrorBody } from "../../src/api/errors";
import type { HealthSchema } from "../../src/api/health";
import { createLogger } from "../../src/log";
import { RedisClient, redisProbe, vectorSearchProbe } from "../../src/store/redis";
import { json, requireRedis } from "../helpers/services";

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

beforeAll(async () => {
  redis = await requireRedis();
});

afterAll(async () => {
  absent.disconnect();
  await redis.quit();
});

const get = (app: ReturnType<typeof createApp>, path: string) => app.handle(new Request(`http://localhost${path}`));

describe("GET /health", () => {
  test("answers 200 with each check when Redis answers, and reports vector search as available", async () => {
    const app = createApp({ logger, probes: [redisProbe(redis), vectorSearchProbe(redis)], roles: ["api"] });
    const response = await get(app, "/health");
    const body = await json<Health>(response);

    expect(response.status).toBe(200);
    expect(body.status).toBe("ok");
    expect(body.roles).toEqual(["api"]);
    expect(body.checks.redis).toMatchObject({ ok: true, required: true });
    expect(body.checks.vector_search).toMatchObject({ ok: true, required: false, info: { available: true } });
  });

  test("answers 503 naming the failed dependency when Redis does not answer", async () => {
    const app = createApp({ logger, probes: [redisProbe(absent), vectorSearchProbe(absent)], roles: ["api"] });
    const response = await get(app, "/health");
    const body = await json<Health>(response);

    expect(response.status).toBe(503);
    expect(body.status).toBe("unavailable");
    expect(body.checks.redis?.ok).toBe(false);
    expect(body.checks.redis?.error).toBeString();
  });

  test("a failing optional probe is reported without making the process unhealthy", async () => {
    const app = createApp({ logger, probes: [redisProbe(redis), vectorSearchProbe(absent)], roles: ["api"] });
    const response = await get(app, "/health");
    expect(response.status).toBe(200);
    expect((await json<Health>(response)).checks.vector_search?.ok).toBe(false);
  });
});

describe("errors and docs", () => {
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
