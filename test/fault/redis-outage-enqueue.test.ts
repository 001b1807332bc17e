/**
 * 2,000 POSTs at 200/s, each with its own Idempotency-Key, through a 4 s
 * Redis stop (SIGSTOP, then SIGCONT: connections stay open and every command
 * sent meanwhile runs when it resumes) (issue 13 §2). Clients honour
 * Retry-After and retry a 503 with the same key. Afterwards: every task id
 * that exists in Redis was returned to a client (in a 202, or in a
 * QUEUED_UNKNOWN 503), every 202 ends SUCCESS, and no key gave two tasks.
 * Before the enqueue's deadline, a save that timed out ran when Redis
 * resumed: tasks whose ids no client ever received ran to SUCCESS, and a
 * retry with the same key created a second task.
 *
 * It stops the suite's own Redis (found by its INFO process_id), and
 * resumes it whatever happens.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connectRedis } from "../../src/redis/client";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import type { AppProcess } from "../helpers/app-process";
import { requireRedis, testConfig } from "../helpers/services";
import { launchWithMock, outcomes, report } from "./fault-helpers";

const DB = 13;
let mock: MockOpenAiServer;
let app: AppProcess | undefined;
let redisPid: number;

beforeAll(async () => {
  const redis = await requireRedis();
  const info = await redis.info("server");
  await redis.quit();
  redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  try {
    process.kill(redisPid, 0);
  } catch {
    throw new Error(
      `this test stops the local Redis (pid ${redisPid}); it must run on this machine: bun run services:up`,
    );
  }
  mock = createMockOpenAiServer({ port: 0, latencyMs: 10 });
});

afterAll(async () => {
  process.kill(redisPid, "SIGCONT");
  await app?.stop();
  mock?.stop();
});

interface Answer {
  status: number;
  taskId?: string;
  code?: string;
}

test("a 4 s Redis stop under 200 POST/s: every task in Redis was returned to a client, every 202 ends SUCCESS, one task per client and Idempotency-Key", async () => {
  app = await launchWithMock(mock, DB, { WORKER_CONCURRENCY: "1" });
  const base = app.url;
  const COUNT = 2000;
  /** Every answer each key got, in order. */
  const answers = new Map<string, Answer[]>();
  const post = async (key: string | undefined, text: string): Promise<Answer> => {
    const response = await fetch(`${base}/process`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key ? { "idempotency-key": key } : {}) },
      body: JSON.stringify({ text, use_cache: false }),
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
    if (!response) return { status: 0 };
    const body = (await response.json().catch(() => ({}))) as {
      task_id?: string;
      error?: { code: string; details?: { task_id?: string } };
    };
    const taskId = body.task_id ?? body.error?.details?.task_id;
    return { status: response.status, ...(taskId ? { taskId } : {}), ...(body.error ? { code: body.error.code } : {}) };
  };
  /**
   * One client: posts, and retries 503s and 409s after Retry-After (1 s), up to 30 s. Half send an
   * Idempotency-Key (the same on each retry); the other half send none, as many clients do.
   */
  const client = async (i: number) => {
    const key = `outage-${i}-${crypto.randomUUID()}`;
    const list: Answer[] = [];
    answers.set(key, list);
    const deadline = Date.now() + 30_000;
    const text = `outage ${i}: ${key}`;
    for (;;) {
      const answer = await post(i % 2 === 0 ? key : undefined, text);
      list.push(answer);
      if (answer.status === 202 || Date.now() > deadline) return;
      await Bun.sleep(1000);
    }
  };

  const started = performance.now();
  const clients: Promise<void>[] = [];
  const outage = (async () => {
    await Bun.sleep(3000);
    process.kill(redisPid, "SIGSTOP");
    try {
      await Bun.sleep(4000);
    } finally {
      process.kill(redisPid, "SIGCONT");
    }
  })();
  for (let i = 0; i < COUNT; i++) {
    const due = started + i * 5;
    const wait = due - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    clients.push(client(i));
  }
  await outage;
  await Promise.all(clients);

  const all = [...answers.values()].flat();
  const statuses: Record<number, number> = {};
  for (const a of all) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
  const acceptedByKey = new Map<string, string>();
  for (const [key, list] of answers) {
    const accepted = list.find((a) => a.status === 202);
    if (accepted?.taskId) acceptedByKey.set(key, accepted.taskId);
  }
  const returned = new Set(all.flatMap((a) => (a.taskId ? [a.taskId] : [])));
  const accepted = [...acceptedByKey.values()];

  const tasks = await outcomes(base, accepted, 120_000);
  const succeeded = [...tasks.values()].filter((t) => t.status === "SUCCESS").length;
  const failed = [...tasks.values()].filter((t) => t.status === "FAILURE").length;

  // What exists in Redis: every task that started (its record) and every job still queued.
  const url = new URL(testConfig.redisUrl);
  url.pathname = `/${DB}`;
  const redis = await connectRedis(url.toString());
  const existing = new Set<string>();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", "result:*", "COUNT", 1000);
      cursor = next;
      for (const key of keys) existing.add(key.slice("result:".length));
    } while (cursor !== "0");
    for (const queue of ["ai_processing", "default", "kafka_events"]) {
      for (const id of await redis.hkeys(`bq:${queue}:jobs`)) existing.add(id);
    }
  } finally {
    await redis.quit();
  }
  const unreturned = [...existing].filter((id) => !returned.has(id));

  report("redis outage enqueue", {
    accepted: accepted.length,
    succeeded,
    failed,
    reRuns: Math.max(0, mock.counters().chat_requests - succeeded),
    extra: { statuses, keys: answers.size, existing: existing.size, unreturned: unreturned.length },
  });
  // The outage was seen: some requests were refused while Redis was away.
  expect((statuses[503] ?? 0) + (statuses[409] ?? 0)).toBeGreaterThan(0);
  expect(unreturned).toEqual([]);
  // One task per client: the tasks in Redis are exactly the ids the clients were accepted with (a 503'd attempt
  // never ran behind their back), and a key never gave two.
  expect(existing.size).toBe(acceptedByKey.size);
  expect(new Set(accepted).size).toBe(accepted.length);
  expect(acceptedByKey.size).toBe(COUNT);
  expect(succeeded).toBe(accepted.length);
}, 240_000);
