/**
 * The operator's control actions (/admin/*, issue 16 §2) against the app as
 * users run it (api, consumer and worker roles), the real broker and Redis,
 * the LLM behind the project's mock server: each action's effect is checked
 * through the API, and each leaves an audit line naming who did it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import type { Admin, Kafka } from "kafkajs";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { requireKafka, uniquePrefix, waitFor } from "../helpers/services";
import { cleanUpIngest, ingestEnv, ingestNames, sendEvents } from "./fixtures/kafka-ingest";

const prefix = uniquePrefix("admin-control").replaceAll("-", "_");
const ADMIN = "ops-admin-key-1234";
const TENANT = "tenant-key-123456";
/** Where the tests' tasks go (TASK_ROUTES below). */
const QUEUE = "ai_processing";
const admin_ = { authorization: `Bearer ${ADMIN}` };
const tenant_ = { authorization: `Bearer ${TENANT}` };

let kafka: Kafka;
let kafkaAdmin: Admin;
let redis: Redis | undefined;
let mock: MockOpenAiServer;
let app: AppProcess | undefined;
let base = "";

interface Task {
  task_id: string;
  status: string;
  error?: { code: string };
}

const post = async (path: string, headers = admin_, body?: unknown) =>
  fetch(`${base}${path}`, {
    method: body === undefined ? "POST" : "PUT",
    headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

async function submit(text: string, headers = tenant_): Promise<{ task_id: string }> {
  const response = await fetch(`${base}/process`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ text, task_type: "sentiment_analysis", use_cache: false }),
  });
  expect(response.status).toBe(202);
  return (await response.json()) as { task_id: string };
}

const read = async (id: string, headers = tenant_): Promise<Task> =>
  (await (await fetch(`${base}/task/${id}`, { headers })).json()) as Task;

const until = (id: string, status: string, timeoutMs = 20_000) =>
  waitFor(
    async () => {
      const task = await read(id);
      return task.status === status ? task : undefined;
    },
    `task ${id} to be ${status}`,
    timeoutMs,
    100,
  );

/** The audit lines the app logged for an action. */
const audits = (action: string) =>
  (app?.output() ?? "")
    .split("\n")
    .filter((line) => line.includes('"audit":true') && line.includes(`"action":"${action}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

beforeAll(async () => {
  ({ kafka, admin: kafkaAdmin } = await requireKafka());
  const redisUrl = await isolatedRedisUrl(56);
  const { connectRedis } = await import("../../src/redis/client");
  redis = await connectRedis(redisUrl);
  mock = createMockOpenAiServer({ port: 0, latencyMs: 1 });
  app = await startApp({
    ...ingestEnv({ prefix, redisUrl, llmUrl: mock.url, topicOut: false }),
    API_KEYS: `ops:${ADMIN},acme:${TENANT}`,
    API_ADMINS: "ops",
    LOG_LEVEL: "info",
    JOB_BACKOFF_MS: "100",
    JOB_RETRIES: "1",
    KAFKA_TENANT: "acme",
    TASK_ROUTES: `sentiment_analysis=${QUEUE}`,
  });
  base = app.url;
}, 60_000);

afterEach(() => {
  mock.setFault({ kind: "none" });
});

afterAll(async () => {
  await cleanUpIngest({ apps: app ? [app] : [], mock, admin: kafkaAdmin, redis, ...ingestNames(prefix) });
});

describe("admin actions are for admins", () => {
  test("a tenant's key is refused every /admin route (403), and no action is taken", async () => {
    const queue = QUEUE;
    for (const [method, path] of [
      ["GET", "/admin/control"],
      ["POST", `/admin/queues/${queue}/pause`],
      ["POST", `/admin/queues/${queue}/purge-failed`],
      ["POST", "/admin/kafka/pause"],
      ["POST", "/admin/tasks/anything/retry"],
      ["DELETE", "/admin/rate-limit"],
    ] as const) {
      const response = await fetch(`${base}${path}`, { method, headers: tenant_ });
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("FORBIDDEN");
    }
    const state = (await (await fetch(`${base}/admin/control`, { headers: admin_ })).json()) as {
      queues: { name: string; paused: boolean }[];
      kafka: { paused: boolean };
    };
    expect(state.queues.every((q) => !q.paused)).toBe(true);
    expect(state.kafka.paused).toBe(false);
    expect((await fetch(`${base}/admin/control`)).status).toBe(401);
  });
});

describe("tasks", () => {
  test("a task that failed for good is retried by an admin and ends SUCCESS, from its first attempt", async () => {
    mock.setFault({ kind: "400", textIncludes: "RETRY-ME" });
    const { task_id } = await submit("RETRY-ME: the parcel arrived broken");
    const failed = await until(task_id, "FAILURE");
    expect(failed.error?.code).toBeDefined();
    // A task that did not fail cannot be retried; an unknown one is not found.
    const done = await submit("a task that simply succeeds");
    await until(done.task_id, "SUCCESS");
    expect((await post(`/admin/tasks/${done.task_id}/retry`)).status).toBe(409);
    expect((await post("/admin/tasks/no-such-task/retry")).status).toBe(404);

    mock.setFault({ kind: "none" });
    const retried = await post(`/admin/tasks/${task_id}/retry`);
    expect(retried.status).toBe(202);
    expect(await retried.json()).toMatchObject({ task_id, status: "PENDING" });
    await until(task_id, "SUCCESS");
    // The tenant reads its task's new outcome too.
    expect((await read(task_id, tenant_)).status).toBe("SUCCESS");
    // Retried once: a second retry of a task that now succeeded is refused.
    expect((await post(`/admin/tasks/${task_id}/retry`)).status).toBe(409);
    const lines = audits("task.retry");
    expect(lines.some((l) => l.task_id === task_id && l.outcome === "queued" && l.actor === "ops")).toBe(true);
    expect(JSON.stringify(lines)).not.toContain(ADMIN);
  });

  test("a queue's failed tasks are retried together, or purged with their FAILURE records kept", async () => {
    mock.setFault({ kind: "400", textIncludes: "BATCH-FAIL" });
    const first = await Promise.all([1, 2, 3].map((i) => submit(`BATCH-FAIL ${i}: wrong size`)));
    for (const { task_id } of first) await until(task_id, "FAILURE");
    const queue = QUEUE;
    const purge = await post(`/admin/queues/${queue}/purge-failed`);
    expect(purge.status).toBe(200);
    expect(((await purge.json()) as { purged: number }).purged).toBeGreaterThanOrEqual(3);
    for (const { task_id } of first) {
      expect((await read(task_id)).status).toBe("FAILURE");
      // Purged: nothing left to retry.
      const retry = await post(`/admin/tasks/${task_id}/retry`);
      expect(retry.status).toBe(409);
      expect(((await retry.json()) as { error: { code: string } }).error.code).toBe("FAILED_JOB_GONE");
    }

    const second = await Promise.all([1, 2].map((i) => submit(`BATCH-FAIL again ${i}: late`)));
    for (const { task_id } of second) await until(task_id, "FAILURE");
    mock.setFault({ kind: "none" });
    const retry = await post(`/admin/queues/${queue}/retry-failed`);
    expect(retry.status).toBe(200);
    expect(await retry.json()).toMatchObject({ queue, retried: 2, gone: 0 });
    for (const { task_id } of second) await until(task_id, "SUCCESS");
    expect((await post("/admin/queues/no_such_queue/retry-failed")).status).toBe(404);
    expect(audits("queue.purge_failed").length).toBeGreaterThanOrEqual(1);
    expect(audits("queue.retry_failed").some((l) => l.retried === 2)).toBe(true);
  });
});

describe("queues", () => {
  test("a paused queue's tasks wait, a waiting one can be cancelled, and resume runs the rest", async () => {
    const queue = QUEUE;
    const pause = await post(`/admin/queues/${queue}/pause`);
    expect(await pause.json()).toEqual({ queue, paused: true, changed: true });
    expect(await (await post(`/admin/queues/${queue}/pause`)).json()).toMatchObject({ changed: false });
    // Workers read the control state once a second.
    await Bun.sleep(1500);
    const calls = mock.counters().chat_requests;
    const held = await Promise.all([1, 2, 3].map((i) => submit(`held while paused ${i}: good value`)));
    await Bun.sleep(2000);
    for (const { task_id } of held) expect((await read(task_id)).status).toBe("PENDING");
    expect(mock.counters().chat_requests).toBe(calls);
    const state = (await (await fetch(`${base}/admin/control`, { headers: admin_ })).json()) as {
      queues: { name: string; paused: boolean; by?: string }[];
    };
    expect(state.queues.find((q) => q.name === queue)).toMatchObject({ paused: true, by: "ops" });

    const [cancelled, ...rest] = held as unknown as [{ task_id: string }, ...{ task_id: string }[]];
    const cancel = await post(`/admin/tasks/${cancelled.task_id}/cancel`);
    expect(cancel.status).toBe(200);
    const ended = await read(cancelled.task_id, tenant_);
    expect(ended).toMatchObject({ status: "FAILURE", error: { code: "CANCELLED" } });
    expect((await post(`/admin/tasks/${cancelled.task_id}/cancel`)).status).toBe(409);

    expect(await (await post(`/admin/queues/${queue}/resume`)).json()).toEqual({ queue, paused: false, changed: true });
    for (const { task_id } of rest) await until(task_id, "SUCCESS");
    // The cancelled task never ran.
    expect((await read(cancelled.task_id)).status).toBe("FAILURE");
    expect(mock.counters().chat_requests).toBe(calls + rest.length);
    expect(audits("queue.pause").length).toBe(2);
    expect(audits("task.cancel").some((l) => l.outcome === "cancelled")).toBe(true);
    expect(audits("queue.resume").length).toBe(1);
  });

  test("a task that already started or ended cannot be cancelled", async () => {
    const { task_id } = await submit("done before anyone cancels");
    await until(task_id, "SUCCESS");
    const response = await post(`/admin/tasks/${task_id}/cancel`);
    expect(response.status).toBe(409);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("TASK_NOT_WAITING");
  });
});

describe("Kafka, the rate limit and worker processes", () => {
  test("paused Kafka consumption takes no events until it is resumed", async () => {
    const metrics = async () =>
      ((await (await fetch(`${base}/metrics`, { headers: admin_ })).json()) as { kafka: { events_consumed: number } })
        .kafka.events_consumed;
    const topic = ingestNames(prefix).topics[0] as string;
    const event = (id: string) => ({
      key: id,
      value: JSON.stringify({ event_id: id, text: `kafka ${id}: quick delivery`, use_cache: false }),
      eventId: id,
      malformed: undefined,
    });
    await sendEvents(kafka, topic, [event(`${prefix}-before`)]);
    await until(`${prefix}-before`, "SUCCESS", 30_000);
    // Counters reach /metrics within a second of the event.
    const before = await waitFor(
      async () => ((await metrics()) >= 1 ? metrics() : undefined),
      "the first event in /metrics",
      5000,
    );

    expect(await (await post("/admin/kafka/pause")).json()).toEqual({ paused: true, changed: true });
    await Bun.sleep(1000);
    await sendEvents(
      kafka,
      topic,
      [0, 1, 2].map((i) => event(`${prefix}-held-${i}`)),
    );
    await Bun.sleep(3000);
    expect(await metrics()).toBe(before);
    expect((await read(`${prefix}-held-0`)).status).toBeUndefined();

    expect(await (await post("/admin/kafka/resume")).json()).toEqual({ paused: false, changed: true });
    for (const i of [0, 1, 2]) await until(`${prefix}-held-${i}`, "SUCCESS", 30_000);
    await waitFor(async () => (await metrics()) === before + 3, "the three events in /metrics", 5000);
  }, 60_000);

  test("the LLM rate limit set at run time spaces calls out, and DELETE restores LLM_RATE_LIMIT", async () => {
    const set = await post("/admin/rate-limit", admin_, { limit: "2/1s" });
    expect(set.status).toBe(200);
    expect(await set.json()).toMatchObject({ source: "operator", calls: 2, period_ms: 1000, by: "ops" });
    expect((await post("/admin/rate-limit", admin_, { limit: "fast" })).status).toBe(422);
    expect((await post("/admin/rate-limit", admin_, { limit: "0/1s" })).status).toBe(422);
    await Bun.sleep(1500);
    const started = performance.now();
    const tasks = await Promise.all([1, 2, 3, 4, 5].map((i) => submit(`rate limited ${i}: arrived on time`)));
    for (const { task_id } of tasks) await until(task_id, "SUCCESS");
    // 2 calls a second, evenly spaced: the fifth call goes no sooner than 4 intervals (2 s) after the first.
    expect(performance.now() - started).toBeGreaterThan(1900);

    const reset = await fetch(`${base}/admin/rate-limit`, { method: "DELETE", headers: admin_ });
    expect(await reset.json()).toEqual({ source: "none" });
    await Bun.sleep(1500);
    const fast = performance.now();
    const quick = await Promise.all([1, 2, 3, 4, 5].map((i) => submit(`unlimited again ${i}: fine`)));
    for (const { task_id } of quick) await until(task_id, "SUCCESS");
    expect(performance.now() - fast).toBeLessThan(1500);
    expect(audits("llm_rate_limit.set").some((l) => l.calls === 2 && l.period_ms === 1000)).toBe(true);
  });

  test("a worker process recycled by an admin is replaced by a new one", async () => {
    const list = async () =>
      ((await (await fetch(`${base}/workers`, { headers: admin_ })).json()) as { workers: { id: string }[] }).workers;
    const [first] = await list();
    expect(first).toBeDefined();
    const id = first?.id as string;
    expect((await post("/admin/workers/no-such-worker/recycle")).status).toBe(404);
    const response = await post(`/admin/workers/${encodeURIComponent(id)}/recycle`);
    expect(response.status).toBe(202);
    const replaced = await waitFor(
      async () => {
        const now = await list();
        return now.length > 0 && !now.some((w) => w.id === id) ? now : undefined;
      },
      `worker ${id} to be replaced`,
      30_000,
      200,
    );
    expect(replaced.length).toBeGreaterThan(0);
    // The replacement takes work.
    const { task_id } = await submit("after the recycle: all good");
    await until(task_id, "SUCCESS");
    expect(audits("worker.recycle").some((l) => l.worker_id === id && l.outcome === "requested")).toBe(true);
  }, 60_000);
});
