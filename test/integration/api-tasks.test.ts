/**
 * POST /process and GET /task/:id in process (app.handle) against the real
 * Redis: what is accepted, what is refused and how, idempotent retries, and
 * waiting for a result.
 * Past ~300 lines on purpose: the table of refused inputs and the
 * Idempotency-Key cases share one app and queue set up once against Redis.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createApp } from "../../src/api/app";
import type { ErrorBody } from "../../src/api/error-responses";
import { createEventBus } from "../../src/events";
import { createLogger } from "../../src/log";
import { JITTER_BACKOFF, type QueueKeys, queuedJobs, queueKeys } from "../../src/queue/bee-queue-layout";
import { createEnqueuer, type Enqueuer, QueuedUnknownError } from "../../src/queue/enqueuer";
import type { RedisClient } from "../../src/redis/client";
import { createTaskStore, resultKey } from "../../src/store/task-store";
import { createTaskWaiter, type TaskWaiter } from "../../src/store/task-waiter";
import type { TaskResult } from "../../src/task/contract";
import { deleteByPrefix, json, requireRedis, uniquePrefix } from "../helpers/services";

const logger = createLogger({ level: "silent" });
const keyPrefix = uniquePrefix("api");
const QUEUES = ["default", "ai_processing", "kafka_events", "heavy"];
let redis: RedisClient;
let waiter: TaskWaiter;
let queues: Map<string, QueueKeys>;
let app: ReturnType<typeof createApp>;
let slowApp: ReturnType<typeof createApp>;
/** An app whose next enqueue gets no answer from Redis: after the job landed, or before it was written. */
let flakyApp: ReturnType<typeof createApp>;
let nextReply: "lost after the write" | "lost before the write" | "answered" = "answered";
const createdIds: string[] = [];

type Accepted = { task_id: string; status: string; message: string };
type Task = { task_id: string; status: string; result?: TaskResult; error?: unknown };

beforeAll(async () => {
  redis = await requireRedis();
  waiter = await createTaskWaiter({ redis, logger });
  queues = new Map(QUEUES.map((name) => [name, queueKeys(name, keyPrefix)]));
  const bus = createEventBus();
  const enqueuer = createEnqueuer({
    redis,
    queues,
    options: { retries: 3, backoffStrategy: JITTER_BACKOFF, backoffMs: 1000 },
    bus,
    logger,
  });
  const appWith = (saver: Enqueuer) =>
    createApp({
      logger,
      probes: [],
      roles: ["api"],
      tasks: {
        redis,
        enqueuer: saver,
        store: createTaskStore({ redis, resultTtlSeconds: 60, queued: queuedJobs(QUEUES, keyPrefix) }),
        waiter,
        bus,
        routes: new Map([["summarization", "heavy"]]),
        taskTypes: new Set(["general_analysis", "summarization", "sentiment_analysis"]),
      },
    });
  app = appWith(enqueuer);
  // A Redis that takes 100 ms to save a job: concurrent requests overtake the first one's save.
  slowApp = appWith({
    enqueue: async (queue, job) => {
      await Bun.sleep(100);
      return enqueuer.enqueue(queue, job);
    },
    flush: () => enqueuer.flush(),
  });
  flakyApp = appWith({
    enqueue: async (queue, job) => {
      const reply = nextReply;
      nextReply = "answered";
      if (reply === "lost before the write") throw new QueuedUnknownError(job.task_id, 3000);
      const added = await enqueuer.enqueue(queue, job);
      if (reply === "lost after the write") throw new QueuedUnknownError(job.task_id, 3000);
      return added;
    },
    flush: () => enqueuer.flush(),
  });
});

afterAll(async () => {
  await waiter.close();
  if (createdIds.length > 0) await redis.del(...createdIds.map(resultKey));
  await deleteByPrefix(redis, keyPrefix);
  await redis.quit();
});

/** As an HTTP client sends it: with a content-length. */
function post(body: unknown, headers: Record<string, string> = {}, target = app) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return target.handle(
    new Request("http://localhost/process", {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers },
      body: text,
    }),
  );
}

const waitingCount = async () => {
  let total = 0;
  for (const name of QUEUES) total += await redis.llen(`${keyPrefix}:${name}:waiting`);
  return total;
};

describe("POST /process", () => {
  test("a valid text is accepted with 202 and a task id, its job is already in Redis, and it reads as PENDING", async () => {
    const response = await post({ text: "The product works well", task_type: "sentiment_analysis", temperature: 0.1 });
    const body = await json<Accepted>(response);
    createdIds.push(body.task_id);

    expect(response.status).toBe(202);
    expect(body.status).toBe("PENDING");
    const stored = JSON.parse((await redis.hget(`${keyPrefix}:ai_processing:jobs`, body.task_id)) ?? "null");
    expect(stored.data).toMatchObject({
      task_id: body.task_id,
      text: "The product works well",
      task_type: "sentiment_analysis",
      use_cache: true,
      temperature: 0.1,
      max_tokens: 1000,
      source: "api",
    });
    const task = await json<Task>(await app.handle(new Request(`http://localhost/task/${body.task_id}`)));
    expect(task).toEqual({ task_id: body.task_id, status: "PENDING" });
  });

  test("any Unicode is accepted and queued exactly: emoji, right-to-left, NUL, a lone surrogate, combining marks", async () => {
    const texts = [
      "Great product 👍🏽👨‍👩‍👧 — 10/10",
      "المنتج ممتاز جدا ‏(right-to-left)‏ עברית",
      "before\u0000after NUL",
      "lone surrogate \ud800 here",
      "Zalgo c̷̢̛o̵̗͠m̸̡̛b̴i̷n̶i̸n̷g̵ ﷽",
    ];
    for (const text of texts) {
      // As a client's JSON encoder sends it: JSON.stringify escapes the lone surrogate.
      const response = await post({ text });
      expect(response.status, JSON.stringify(text)).toBe(202);
      const { task_id } = await json<Accepted>(response);
      createdIds.push(task_id);
      const stored = JSON.parse((await redis.hget(`${keyPrefix}:ai_processing:jobs`, task_id)) ?? "null");
      expect(stored.data.text).toBe(text);
    }
  });

  test("defaults apply, and a routed task type goes to its own queue", async () => {
    const body = await json<Accepted>(await post({ text: "Long report ...", task_type: "summarization" }));
    expect(await redis.hexists(`${keyPrefix}:heavy:jobs`, body.task_id)).toBe(1);
    const general = await json<Accepted>(await post({ text: "no type given" }));
    const stored = JSON.parse((await redis.hget(`${keyPrefix}:ai_processing:jobs`, general.task_id)) ?? "null");
    expect(stored.data.task_type).toBe("general_analysis");
  });

  test("task ids sort in acceptance order", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await json<Accepted>(await post({ text: `n${i}` }))).task_id);
    expect([...ids].sort()).toEqual(ids);
  });

  test.each([
    ["an empty text", { text: "" }, 422, "text"],
    ["a text of 10,001 characters", { text: "x".repeat(10_001) }, 422, "text"],
    ["a task_type with capitals and a dash", { text: "hi", task_type: "Bad-Type" }, 422, "task_type"],
    ["an unknown task_type", { text: "hi", task_type: "translation" }, 422, "task_type"],
    ["a number as text", { text: 5 }, 422, "text"],
    ["a string as temperature", { text: "hi", temperature: "hot" }, 422, "temperature"],
    ["a temperature above 2", { text: "hi", temperature: 2.5 }, 422, "temperature"],
    ["max_tokens of 0", { text: "hi", max_tokens: 0 }, 422, "max_tokens"],
    // One coercion rule for HTTP and Kafka: numbers are JSON numbers (issue 13 §6; "50" used to pass here only).
    ["a numeric string as max_tokens", { text: "hi", max_tokens: "50" }, 422, "max_tokens"],
    ["a numeric string as temperature", { text: "hi", temperature: "0.5" }, 422, "temperature"],
    ["no text at all", { task_type: "summarization" }, 422, "text"],
  ])("%s is refused with a 422 naming the field, and nothing is enqueued", async (_name, body, status, field) => {
    const before = await waitingCount();
    const response = await post(body);
    const error = await json<ErrorBody>(response);
    expect(response.status).toBe(status);
    expect(error.error.message).toStartWith(`${field}:`);
    expect(await waitingCount()).toBe(before);
  });

  test("invalid JSON is refused with 400", async () => {
    const response = await post('{"text": "unterminated');
    expect(response.status).toBe(400);
    expect((await json<ErrorBody>(response)).error.code).toBe("INVALID_BODY");
  });

  test("a body over the limit is refused with 413 before it is read", async () => {
    const response = await post({ text: "x".repeat(2 * 1024 * 1024) });
    expect(response.status).toBe(413);
    expect((await json<ErrorBody>(response)).error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  test("a chunked body (no content-length) over the limit is refused with 413 too", async () => {
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 32; i++) controller.enqueue(chunk);
        controller.close();
      },
    });
    const before = await waitingCount();
    const response = await app.handle(
      new Request("http://localhost/process", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      }),
    );
    expect(response.status).toBe(413);
    expect((await json<ErrorBody>(response)).error.code).toBe("PAYLOAD_TOO_LARGE");
    expect(await waitingCount()).toBe(before);
  });

  test.each([
    ["APPLICATION/JSON", 202],
    ["application/JSON; charset=utf-8", 202],
    ["application/json-seq", 415],
    ["application/json-patch+json", 415],
  ])(
    "content-type %s answers %d: media types are case-insensitive, other JSON types are not ours",
    async (type, status) => {
      const response = await post({ text: "hi" }, { "content-type": type });
      expect(response.status).toBe(status);
      if (status === 202) createdIds.push((await json<{ task_id: string }>(response)).task_id);
      else expect((await json<ErrorBody>(response)).error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    },
  );

  test("over a real socket, a body far over the limit (declared or chunked) still gets the JSON 413, never a bare one", async () => {
    const server = app.listen({ port: 0, hostname: "127.0.0.1" });
    try {
      const url = `http://127.0.0.1:${server.server?.port}/process`;
      const big = "x".repeat(5 * 1024 * 1024); // over 4 × the 1 MiB default, where Bun's own limit used to answer
      const declared = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: big });
      expect(declared.status).toBe(413);
      expect((await json<ErrorBody>(declared)).error.code).toBe("PAYLOAD_TOO_LARGE");
      const chunk = new TextEncoder().encode("x".repeat(256 * 1024));
      const chunked = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            for (let i = 0; i < 20; i++) controller.enqueue(chunk);
            controller.close();
          },
        }),
      });
      expect(chunked.status).toBe(413);
      expect((await json<ErrorBody>(chunked)).error.code).toBe("PAYLOAD_TOO_LARGE");
    } finally {
      await app.stop();
    }
  });

  test("a body that is not JSON is refused with 415", async () => {
    const response = await app.handle(
      new Request("http://localhost/process", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "hi",
      }),
    );
    expect(response.status).toBe(415);
    expect((await json<ErrorBody>(response)).error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
  });

  test("the same Idempotency-Key posted twice gives one task id and one job", async () => {
    const key = uniquePrefix("idem");
    const before = await waitingCount();
    const first = await json<Accepted>(await post({ text: "pay invoice 42" }, { "idempotency-key": key }));
    const again = await post({ text: "pay invoice 42" }, { "idempotency-key": key });
    const second = await json<Accepted>(again);
    expect(second.task_id).toBe(first.task_id);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await waitingCount()).toBe(before + 1);
  });

  test("concurrent requests with one Idempotency-Key: one job, and every answered task id already exists", async () => {
    const key = uniquePrefix("idem-race");
    const before = await waitingCount();
    // Each client reads its task the moment it is answered, as a client that polls would.
    const reads: number[] = [];
    const responses: Response[] = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const response = await post({ text: "refund order 7" }, { "idempotency-key": key }, slowApp);
        if (response.status === 202) {
          const { task_id } = (await response.clone().json()) as Accepted;
          reads.push((await app.handle(new Request(`http://localhost/task/${task_id}`))).status);
        }
        return response;
      }),
    );
    const accepted = responses.filter((r) => r.status === 202);
    const busy = responses.filter((r) => r.status === 409);
    expect(accepted.length + busy.length).toBe(20);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    for (const response of busy) {
      expect(response.headers.get("retry-after")).toBe("1");
      expect((await json<ErrorBody>(response)).error.code).toBe("IDEMPOTENCY_IN_PROGRESS");
    }
    const ids = new Set((await Promise.all(accepted.map((r) => json<Accepted>(r)))).map((a) => a.task_id));
    expect(ids.size).toBe(1);
    const [taskId] = [...ids];
    // Never a 404 for an id a client was given.
    expect(reads).toEqual(accepted.map(() => 200));
    expect(await waitingCount()).toBe(before + 1);
    // A retry after the burst gets the same task.
    const retry = await json<Accepted>(await post({ text: "refund order 7" }, { "idempotency-key": key }));
    expect(retry.task_id).toBe(taskId as string);
  });

  test.each(["lost after the write", "lost before the write"] as const)(
    "an enqueue with no answer (%s) is a 503 carrying the task id, and a retry with the key resumes it: one task",
    async (reply) => {
      const key = uniquePrefix("idem-unknown");
      const before = await waitingCount();
      nextReply = reply;
      const unknown = await post({ text: `charge card ${key}` }, { "idempotency-key": key }, flakyApp);
      expect(unknown.status).toBe(503);
      const error = (await json<ErrorBody>(unknown)).error;
      expect(error.code).toBe("QUEUED_UNKNOWN");
      const { task_id: firstId } = error.details as { task_id: string };
      const retry = await post({ text: `charge card ${key}` }, { "idempotency-key": key }, flakyApp);
      expect(retry.status).toBe(202);
      expect((await json<Accepted>(retry)).task_id).toBe(firstId);
      expect(await waitingCount()).toBe(before + 1);
      const again = await json<Accepted>(await post({ text: `charge card ${key}` }, { "idempotency-key": key }));
      expect(again.task_id).toBe(firstId);
      createdIds.push(firstId);
    },
  );

  test("an Idempotency-Key reused with another body is refused with 422, and creates nothing", async () => {
    const key = uniquePrefix("idem-reuse");
    await post({ text: "ship parcel 1" }, { "idempotency-key": key });
    const before = await waitingCount();
    const reused = await post({ text: "ship parcel 2" }, { "idempotency-key": key });
    expect(reused.status).toBe(422);
    expect((await json<ErrorBody>(reused)).error.code).toBe("IDEMPOTENCY_KEY_REUSED");
    // Defaults count as the body: the same text with another task type is another request.
    const otherType = await post({ text: "ship parcel 1", task_type: "summarization" }, { "idempotency-key": key });
    expect(otherType.status).toBe(422);
    expect(await waitingCount()).toBe(before);
  });
});

describe("GET /task/:id", () => {
  test("an unknown id answers 404 in the error shape", async () => {
    const response = await app.handle(new Request("http://localhost/task/0190-unknown"));
    expect(response.status).toBe(404);
    expect((await json<ErrorBody>(response)).error.code).toBe("TASK_NOT_FOUND");
  });

  test("?wait= holds the request until the task ends, and answers with its result", async () => {
    const { task_id } = await json<Accepted>(await post({ text: "wait for me" }));
    createdIds.push(task_id);
    const store = createTaskStore({ redis, resultTtlSeconds: 60, queued: queuedJobs(QUEUES, keyPrefix) });
    const result: TaskResult = {
      response: "done",
      task_type: "general_analysis",
      model: "simulated",
      processing_time: 0.2,
      from_cache: false,
      metadata: { tokens_used: 2, prompt_tokens: 1, completion_tokens: 1 },
    };
    setTimeout(() => void store.succeed(task_id, result), 200);

    const started = performance.now();
    const task = await json<Task>(await app.handle(new Request(`http://localhost/task/${task_id}?wait=5000`)));
    expect(task).toEqual({ task_id, status: "SUCCESS", result });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  test("?wait= answers the current state when the wait runs out", async () => {
    const { task_id } = await json<Accepted>(await post({ text: "nobody processes me" }));
    const started = performance.now();
    const task = await json<Task>(await app.handle(new Request(`http://localhost/task/${task_id}?wait=150`)));
    expect(task.status).toBe("PENDING");
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  test("a malformed id or wait is refused with 422", async () => {
    expect((await app.handle(new Request("http://localhost/task/bad%20id"))).status).toBe(422);
    expect((await app.handle(new Request("http://localhost/task/abc?wait=soon"))).status).toBe(422);
  });

  test("a query parameter out of range is named, with its location and the allowed bound", async () => {
    const response = await app.handle(new Request("http://localhost/task/abc?wait=-1"));
    expect(response.status).toBe(422);
    expect((await json<ErrorBody>(response)).error).toMatchObject({
      message: "wait: Expected integer to be greater or equal to 0",
      details: { field: "wait", location: "query" },
    });
  });
});
