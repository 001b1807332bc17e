/**
 * API keys, tenants and per-client limits, in process (app.handle) against
 * the real Redis: no route but /health without a key, no tenant reading
 * another's task, 429 with Retry-After over the rate or the pending cap, only
 * admins deleting cache entries, and no key ever in the logs.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createApp } from "../../src/api/app";
import { createKeyring } from "../../src/api/auth";
import { createPendingCap } from "../../src/api/client-limits";
import type { ErrorBody } from "../../src/api/error-responses";
import { createCacheAdmin } from "../../src/cache";
import { createEventBus } from "../../src/events";
import { createLogger } from "../../src/log";
import { JITTER_BACKOFF, type QueueKeys, queuedJobs, queueKeys } from "../../src/queue/bee-queue-layout";
import { createEnqueuer } from "../../src/queue/enqueuer";
import { type RedisClient, redisProbe } from "../../src/redis/client";
import { createTaskStore, pendingKey } from "../../src/store/task-store";
import { createTaskWaiter, type TaskWaiter } from "../../src/store/task-waiter";
import { deleteByPrefix, json, requireRedis, testConfig, uniquePrefix } from "../helpers/services";

const prefix = uniquePrefix("access");
const KEYS = {
  acme: `acme-${crypto.randomUUID()}`,
  globex: `globex-${crypto.randomUUID()}`,
  ops: `ops-${crypto.randomUUID()}`,
};
const tenants = Object.keys(KEYS).map((name) => `${prefix}-${name}`);
const QUEUES = ["default", "ai_processing", "kafka_events"];
const lines: string[] = [];
const logger = createLogger({ level: "debug", destination: { write: (line: string) => void lines.push(line) } });
let redis: RedisClient;
let waiter: TaskWaiter;
let queues: Map<string, QueueKeys>;
let store: ReturnType<typeof createTaskStore>;

beforeAll(async () => {
  redis = await requireRedis();
  waiter = await createTaskWaiter({ redis, logger });
  queues = new Map(QUEUES.map((name) => [name, queueKeys(name, prefix)]));
  store = createTaskStore({ redis, resultTtlSeconds: 60, queued: queuedJobs(QUEUES, prefix) });
});

afterAll(async () => {
  await waiter.close();
  await deleteByPrefix(redis, prefix);
  for (const tenant of tenants) await redis.del(pendingKey(tenant), `ratelimit:client:tenant:${tenant}`);
  await redis.quit();
});

function buildApp(options: { rateLimit?: { calls: number; periodMs: number }; maxPending?: number } = {}) {
  const [acme, globex, ops] = tenants as [string, string, string];
  const keyring = createKeyring([
    { name: acme, key: KEYS.acme },
    { name: globex, key: KEYS.globex },
    { name: ops, key: KEYS.ops },
  ]);
  const bus = createEventBus();
  return createApp({
    logger,
    probes: [redisProbe(redis)],
    roles: ["api"],
    tasks: {
      redis,
      enqueuer: createEnqueuer({
        redis,
        queues,
        options: { retries: 0, backoffStrategy: JITTER_BACKOFF, backoffMs: 1000 },
        bus,
        logger,
      }),
      store,
      waiter,
      bus,
      routes: new Map(),
      taskTypes: new Set(["general_analysis"]),
      tenantOf: keyring.tenantOf,
      pendingCap: createPendingCap({ redis, max: options.maxPending ?? 0, resultTtlSeconds: 60 }),
    },
    operations: { redis, queues: QUEUES.map((queue) => queueKeys(queue, prefix)) },
    cache: {
      admin: createCacheAdmin({
        redis,
        config: { ...testConfig.cache, prefix: `${prefix}-cache` },
        embedding: { model: "access-test", dim: 8 },
      }),
      logger,
      mayAdminister: (request) => keyring.tenantOf(request) === ops,
    },
    access: { keyring, isAdmin: (request) => keyring.tenantOf(request) === ops, redis, rateLimit: options.rateLimit },
  });
}

type App = ReturnType<typeof buildApp>;
const call = (app: App, method: string, path: string, key?: string, body?: unknown) =>
  app.handle(
    new Request(`http://localhost${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body ? { "content-type": "application/json" } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    }),
  );

describe("API keys and tenants", () => {
  test("no route but /health answers without a valid key: 401 in the error shape, with WWW-Authenticate", async () => {
    const app = buildApp();
    expect((await call(app, "GET", "/health")).status).toBe(200);
    const routes: [string, string, unknown?][] = [
      ["POST", "/process", { text: "hello" }],
      ["GET", "/task/0190b0c4-0000-7000-8000-000000000000"],
      ["GET", "/metrics"],
      ["GET", "/metrics/prometheus"],
      ["GET", "/workers"],
      ["DELETE", "/cache/clear"],
      ["GET", "/swagger/json"],
    ];
    for (const [method, path, body] of routes) {
      for (const key of [undefined, "not-a-key-at-all", `${KEYS.acme}x`]) {
        const response = await call(app, method, path, key, body);
        expect(response.status, `${method} ${path} with ${key ? "a wrong key" : "no key"}`).toBe(401);
        expect(response.headers.get("www-authenticate")).toContain("Bearer");
        expect((await json<ErrorBody>(response)).error.code).toBe("UNAUTHORIZED");
      }
    }
    expect((await call(app, "GET", "/metrics", KEYS.ops)).status).toBe(200);
  });

  test("what spans tenants (metrics, workers) answers only a key named in API_ADMINS: 403 for another tenant", async () => {
    const app = buildApp();
    for (const path of ["/metrics", "/metrics/prometheus", "/workers"]) {
      const denied = await call(app, "GET", path, KEYS.acme);
      expect(denied.status, path).toBe(403);
      expect((await json<ErrorBody>(denied)).error.code).toBe("FORBIDDEN");
      expect((await call(app, "GET", path, KEYS.ops)).status, path).toBe(200);
    }
  });

  test("/health answers anyone with its status alone; only an admin key sees the checks and roles", async () => {
    const app = buildApp();
    for (const key of [undefined, KEYS.acme]) {
      const response = await call(app, "GET", "/health", key);
      expect(response.status).toBe(200);
      expect(Object.keys(await json<Record<string, unknown>>(response)).sort()).toEqual(["status", "version"]);
    }
    const admin = await json<Record<string, unknown>>(await call(app, "GET", "/health", KEYS.ops));
    expect(admin).toMatchObject({ status: "ok", roles: ["api"], checks: { redis: { ok: true } } });
  });

  test("tenant A cannot read tenant B's task: 404, the same as a task that does not exist", async () => {
    const app = buildApp();
    const accepted = await json<{ task_id: string }>(
      await call(app, "POST", "/process", KEYS.acme, { text: "acme's private text" }),
    );
    const own = await call(app, "GET", `/task/${accepted.task_id}`, KEYS.acme);
    expect(own.status).toBe(200);
    expect((await json<{ status: string }>(own)).status).toBe("PENDING");
    const other = await call(app, "GET", `/task/${accepted.task_id}`, KEYS.globex);
    expect(other.status).toBe(404);
    expect((await json<ErrorBody>(other)).error.code).toBe("TASK_NOT_FOUND");
  });

  test("over API_RATE_LIMIT a client gets 429 with Retry-After; another client is not affected", async () => {
    const app = buildApp({ rateLimit: { calls: 5, periodMs: 60_000 } });
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 7; i++) {
      const response = await call(app, "GET", "/task/0190b0c4-0000-7000-8000-000000000000", KEYS.globex);
      statuses.push(response.status);
      if (response.status === 429) limited = response;
    }
    expect(statuses).toEqual([404, 404, 404, 404, 404, 429, 429]);
    expect(Number(limited?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await json<ErrorBody>(limited as Response)).error.code).toBe("RATE_LIMITED");
    expect((await call(app, "GET", "/workers", KEYS.ops)).status).toBe(200);
    expect((await call(app, "GET", "/health")).status).toBe(200);
  });

  test("API_MAX_PENDING_TASKS caps a tenant's unfinished tasks; a finished task frees its place", async () => {
    const app = buildApp({ maxPending: 2 });
    const submit = () => call(app, "POST", "/process", KEYS.ops, { text: "capped" });
    const first = await json<{ task_id: string }>(await submit());
    expect((await submit()).status).toBe(202);
    const refused = await submit();
    expect(refused.status).toBe(429);
    expect((await json<ErrorBody>(refused)).error.code).toBe("TOO_MANY_PENDING_TASKS");
    expect((await call(app, "POST", "/process", KEYS.globex, { text: "not capped by ops" })).status).toBe(202);

    const [, , ops] = tenants as [string, string, string];
    await store.succeed(
      first.task_id,
      {
        response: "done",
        task_type: "general_analysis",
        model: "m",
        processing_time: 0,
        from_cache: false,
        metadata: { tokens_used: 0, prompt_tokens: 0, completion_tokens: 0 },
      },
      Date.now(),
      ops,
    );
    expect((await submit()).status).toBe(202);
  });

  test("only a key named in API_ADMINS may delete cache entries", async () => {
    const app = buildApp();
    const denied = await call(app, "DELETE", "/cache/clear", KEYS.acme);
    expect(denied.status).toBe(403);
    expect((await json<ErrorBody>(denied)).error.code).toBe("FORBIDDEN");
    const allowed = await call(app, "DELETE", "/cache/clear", KEYS.ops);
    expect(allowed.status).toBe(200);
    expect(await allowed.json()).toEqual({ deleted: 0 });
  });

  test("no API key and no Authorization header ever reaches the logs", async () => {
    expect(lines.length).toBeGreaterThan(5);
    const logs = lines.join("\n");
    for (const key of Object.values(KEYS)) expect(logs).not.toContain(key);
    expect(logs.toLowerCase()).not.toContain("bearer ");
  });
});
