/**
 * callback_url at POST /process, in process against the real Redis (issue 15
 * §4): what is refused and how (422 naming the field and why), what is
 * accepted and carried by the job, and the webhook routes when webhooks are
 * off.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createApp } from "../../src/api/app";
import type { ErrorBody } from "../../src/api/error-responses";
import { createEventBus } from "../../src/events";
import { createLogger } from "../../src/log";
import { JITTER_BACKOFF, queuedJobs, queueKeys } from "../../src/queue/bee-queue-layout";
import { createEnqueuer } from "../../src/queue/enqueuer";
import type { RedisClient } from "../../src/redis/client";
import { createTaskStore } from "../../src/store/task-store";
import { createTaskWaiter, type TaskWaiter } from "../../src/store/task-waiter";
import { resolveCallback } from "../../src/webhooks/callback-url";
import { createDeliveryStore } from "../../src/webhooks/delivery-store";
import { deleteByPrefix, json, requireRedis, uniquePrefix } from "../helpers/services";

const logger = createLogger({ level: "silent" });
const keyPrefix = uniquePrefix("api-webhooks");
const QUEUES = ["default", "ai_processing", "kafka_events"];
/** Names this test's resolver answers, standing in for DNS: one public, one pointing inside. */
const ZONE: Record<string, string[]> = {
  "hooks.example.test": ["93.184.216.34", "2606:2800:220:1::248"],
  "rebind.example.test": ["93.184.216.34", "127.0.0.1"],
};
let redis: RedisClient;
let waiter: TaskWaiter;
let strict: ReturnType<typeof createApp>;
let disabled: ReturnType<typeof createApp>;

beforeAll(async () => {
  redis = await requireRedis();
  waiter = await createTaskWaiter({ redis, logger });
  const bus = createEventBus();
  const queues = new Map(QUEUES.map((name) => [name, queueKeys(name, keyPrefix)]));
  const store = createTaskStore({ redis, resultTtlSeconds: 60, queued: queuedJobs(QUEUES, keyPrefix) });
  const tasks = {
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
    routes: new Map<string, string>(),
    taskTypes: new Set(["general_analysis"]),
  };
  const lookup = async (host: string) => {
    if (ZONE[host]) return ZONE[host];
    throw new Error(`getaddrinfo ENOTFOUND ${host}`);
  };
  const deliveries = createDeliveryStore({ redis, prefix: `${keyPrefix}:webhook` });
  strict = createApp({
    logger,
    probes: [],
    roles: ["api"],
    tasks: {
      ...tasks,
      checkCallback: async (url) => (await resolveCallback(url, { allowPrivate: false }, lookup)).url.href,
    },
    webhooks: { secretOf: (tenant) => `whsec_for_${tenant}`, deliveries, store },
  });
  disabled = createApp({ logger, probes: [], roles: ["api"], tasks, webhooks: { deliveries, store } });
});

afterAll(async () => {
  await waiter.close();
  await deleteByPrefix(redis, keyPrefix);
  await redis.quit();
});

function post(body: unknown, target = strict) {
  const text = JSON.stringify(body);
  return target.handle(
    new Request("http://localhost/process", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) },
      body: text,
    }),
  );
}

describe("callback_url at POST /process", () => {
  test("a public https URL is accepted; the job carries it, normalised", async () => {
    const response = await post({ text: "hello", callback_url: "HTTPS://Hooks.Example.TEST/cb?token=abc" });
    expect(response.status).toBe(202);
    const { task_id } = await json<{ task_id: string }>(response);
    const stored = JSON.parse((await redis.hget(`${keyPrefix}:ai_processing:jobs`, task_id)) ?? "null");
    expect(stored.data.callback_url).toBe("https://hooks.example.test/cb?token=abc");
    // Until the task ends there is nothing delivered, and GET /task/:id/deliveries says so.
    const deliveries = await strict.handle(new Request(`http://localhost/task/${task_id}/deliveries`));
    expect(await deliveries.json()).toEqual({ task_id, deliveries: [] });
  });

  test.each([
    ["http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"],
    ["http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"],
    ["http://localhost:8080/hook", "localhost is a loopback name"],
    ["http://[::ffff:127.0.0.1]/hook", "carries the IPv4 address 127.0.0.1"],
    ["http://2130706433/hook", "127.0.0.1 is a loopback address"],
    ["http://10.1.2.3/hook", "private address"],
    ["http://100.64.0.9/hook", "shared address"],
    ["http://[fd00::9]/hook", "unique-local address"],
    ["https://rebind.example.test/hook", "resolves to 127.0.0.1 is a loopback address"],
    ["https://nowhere.example.test/hook", "does not resolve"],
    ["ftp://hooks.example.test/hook", "scheme ftp is not allowed"],
    ["https://user:pass@hooks.example.test/hook", "credentials"],
  ])("%s is refused with 422 CALLBACK_URL_REFUSED: %s", async (url, reason) => {
    const response = await post({ text: "hello", callback_url: url });
    expect(response.status).toBe(422);
    const body = await json<ErrorBody>(response);
    expect(body.error.code).toBe("CALLBACK_URL_REFUSED");
    expect(body.error.message).toStartWith("callback_url: ");
    expect(body.error.details).toEqual({ field: "callback_url", reason: expect.stringContaining(reason) });
  });

  test("a callback_url over 2048 characters fails validation, naming the field", async () => {
    const response = await post({ text: "hello", callback_url: `https://hooks.example.test/${"a".repeat(2048)}` });
    expect(response.status).toBe(422);
    const body = await json<ErrorBody>(response);
    expect(body.error.code).toBe("VALIDATION_FAILED");
    expect(body.error.message).toStartWith("callback_url: ");
  });

  test("without WEBHOOK_SECRET a callback_url is refused with 422 WEBHOOKS_DISABLED, saying what to set", async () => {
    const response = await post({ text: "hello", callback_url: "https://hooks.example.test/cb" }, disabled);
    expect(response.status).toBe(422);
    const body = await json<ErrorBody>(response);
    expect(body.error).toMatchObject({ code: "WEBHOOKS_DISABLED", details: { field: "callback_url" } });
    expect(body.error.message).toContain("WEBHOOK_SECRET");
    // A task without one is still accepted.
    expect((await post({ text: "hello" }, disabled)).status).toBe(202);
  });

  test("GET /webhooks/secret: the caller's secret, or 404 WEBHOOKS_DISABLED; unknown tasks' deliveries are 404", async () => {
    const on = await strict.handle(new Request("http://localhost/webhooks/secret"));
    expect(await on.json()).toMatchObject({ secret: "whsec_for_", tenant: null });
    const off = await disabled.handle(new Request("http://localhost/webhooks/secret"));
    expect(off.status).toBe(404);
    expect(await off.json()).toMatchObject({ error: { code: "WEBHOOKS_DISABLED" } });
    const unknown = await strict.handle(new Request("http://localhost/task/no-such-task/deliveries"));
    expect(unknown.status).toBe(404);
  });
});
