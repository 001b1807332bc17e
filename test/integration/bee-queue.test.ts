/**
 * Bee-Queue on the project's ioredis client (src/redis/client.ts), against the
 * real Redis: the queue the pipeline is built on.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import BeeQueue from "bee-queue";
import { hookBeeQueue, type TakenJob } from "../../src/queue/bee-queue-hooks";
import { queuedJobs, queueKeys } from "../../src/queue/bee-queue-layout";
import type { RedisClient } from "../../src/redis/client";
import { taskEventsKey } from "../../src/store/task-events";
import { createTaskStore, resultKey, startScriptArgs } from "../../src/store/task-store";
import type { TaskResult } from "../../src/task/contract";
import { collectErrors, deleteByPrefix, requireRedis, uniquePrefix, waitFor } from "../helpers/services";

interface Payload {
  text: string;
  n: number;
}

let redis: RedisClient;
const prefix = uniquePrefix("bq");
const queues: BeeQueue[] = [];
const errors: Error[] = [];

function queue(name: string, settings: BeeQueue.QueueSettings = {}): BeeQueue<Payload> {
  const q = new BeeQueue<Payload>(name, { redis, prefix, quitCommandClient: false, stallInterval: 1000, ...settings });
  errors.push(...collectErrors(q));
  queues.push(q);
  return q;
}

beforeAll(async () => {
  redis = await requireRedis();
});

afterAll(async () => {
  await Promise.all(queues.map((q) => q.close(2000).catch(() => {})));
  await deleteByPrefix(redis, prefix);
  await deleteByPrefix(redis, resultKey(prefix));
  await deleteByPrefix(redis, taskEventsKey(prefix));
  await redis.quit();
});

/** A worker queue with the product's hooks (src/queue/bee-queue-hooks.ts), as the worker runner makes it. */
function hookedWorker(name: string) {
  const worker = queue(name, { getEvents: false });
  const hooks = hookBeeQueue(worker as BeeQueue<unknown>, { start: startScriptArgs(redis) });
  const store = createTaskStore({
    redis,
    resultTtlSeconds: 60,
    queued: queuedJobs([name], prefix),
    runningJobs: (q) => queueKeys(q, prefix),
    onJobReleased: (_queue, taskId) => hooks.jobReleased(taskId),
  });
  return { worker, store };
}

/** Counts the calls of one of a client's commands. */
function countCalls(client: object, command: string): { calls: number } {
  const counter = { calls: 0 };
  const target = client as Record<string, (...args: unknown[]) => unknown>;
  const original = target[command] as (...args: unknown[]) => unknown;
  target[command] = function (this: unknown, ...args: unknown[]) {
    counter.calls++;
    return original.apply(this, args);
  };
  return counter;
}

const answer = (n: number): TaskResult => ({
  response: `answer ${n}`,
  task_type: "general_analysis",
  model: "m",
  processing_time: 0,
  from_cache: false,
  metadata: { tokens_used: 1, prompt_tokens: 1, completion_tokens: 0 },
});

describe("Bee-Queue on ioredis", () => {
  test("a job saved by a producer is processed by a worker and its result reaches the producer", async () => {
    const producer = queue("roundtrip", { isWorker: false });
    const worker = queue("roundtrip", { getEvents: false });
    worker.process(4, async (job) => ({ upper: job.data.text.toUpperCase(), n: job.data.n * 2 }));

    const job = await producer.createJob({ text: "hola", n: 21 }).retries(2).save();
    const result = await new Promise((resolve, reject) => {
      job.on("succeeded", resolve);
      job.on("failed", reject);
    });

    expect(result).toEqual({ upper: "HOLA", n: 42 });
    expect(errors).toEqual([]);
  });

  test("saveAll pipelines a batch of jobs and every one is processed exactly once", async () => {
    const producer = queue("batch", { isWorker: false, getEvents: false });
    const worker = queue("batch", { getEvents: false });
    const seen = new Map<number, number>();
    worker.process(10, async (job) => {
      seen.set(job.data.n, (seen.get(job.data.n) ?? 0) + 1);
      return job.data.n;
    });

    const jobs = Array.from({ length: 500 }, (_, n) => producer.createJob({ text: `event ${n}`, n }));
    const failures = await producer.saveAll(jobs);

    expect(failures.size).toBe(0);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(500);
    await waitFor(() => seen.size === 500, "500 jobs processed", 15_000);
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
    expect(errors).toEqual([]);
  });

  test("a job is durable in Redis before any worker exists, and a later worker runs it", async () => {
    const producer = queue("durable", { isWorker: false, getEvents: false });
    const job = await producer.createJob({ text: "later", n: 7 }).setId("job-with-own-id").save();

    expect(await redis.hexists(`${prefix}:durable:jobs`, "job-with-own-id")).toBe(1);
    expect(await redis.lrange(`${prefix}:durable:waiting`, 0, -1)).toContain(job.id);

    const worker = queue("durable", { getEvents: false });
    const done = new Promise<number>((resolve) => worker.on("succeeded", (_job, result) => resolve(result)));
    worker.process(async (j) => j.data.n + 1);
    expect(await done).toBe(8);
  });

  test("a failing job is retried with its retry budget, then stays visible as failed with its error", async () => {
    const producer = queue("failing", { isWorker: false, getEvents: false });
    const worker = queue("failing", { getEvents: false });
    let attempts = 0;
    // Bee-Queue emits the queue's 'failed' on every failed attempt, retries included;
    // only the job's stored status says it has failed for good.
    const retrying: Error[] = [];
    worker.on("retrying", (_job, error) => retrying.push(error));
    worker.process(async () => {
      attempts++;
      throw new Error("provider said no");
    });

    const job = await producer.createJob({ text: "x", n: 0 }).retries(2).save();

    await waitFor(
      async () => (await redis.sismember(`${prefix}:failing:failed`, job.id)) === 1,
      "the job in the failed set",
    );
    expect(attempts).toBe(3);
    expect(retrying.map((e) => e.message)).toEqual(["provider said no", "provider said no"]);
    const stored = JSON.parse((await redis.hget(`${prefix}:failing:jobs`, job.id)) ?? "{}");
    expect(stored.status).toBe("failed");
    expect(stored.options.stacktraces).toHaveLength(3);
    expect(stored.options.stacktraces[0]).toContain("provider said no");
  });
});

describe("Bee-Queue with the product's hooks (issue 18: fewer round trips per job)", () => {
  test("a backlog is taken by the take script: at most one blocking BRPOPLPUSH per slot, not one per job", async () => {
    const producer = queue("hooked-take", { isWorker: false, getEvents: false });
    const { worker } = hookedWorker("hooked-take");
    await worker.ready();
    const blocking = countCalls((worker as unknown as { bclient: object }).bclient, "brpoplpush");
    const seen = new Map<number, number>();
    const jobs = Array.from({ length: 300 }, (_, n) =>
      producer.createJob({ text: `event ${n}`, n }).setId(`${prefix}-t-${n}`),
    );
    expect((await producer.saveAll(jobs)).size).toBe(0);
    worker.process(20, async (job) => {
      seen.set(job.data.n, (seen.get(job.data.n) ?? 0) + 1);
      await Bun.sleep(2);
      return job.data.n;
    });

    await waitFor(() => seen.size === 300, "300 jobs processed", 15_000);
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
    // Unhooked, each of the 300 jobs costs one BRPOPLPUSH; here only the takes left waiting on the empty queue.
    expect(blocking.calls).toBeLessThanOrEqual(20);
    const keys = queueKeys("hooked-take", prefix);
    await waitFor(async () => (await redis.llen(keys.active)) === 0, "the active list empty");
    expect(await redis.llen(keys.waiting)).toBe(0);
    expect(errors).toEqual([]);
  });

  test("a job saved later reaches a hooked worker waiting on the empty queue", async () => {
    const producer = queue("hooked-idle", { isWorker: false, getEvents: false });
    const { worker } = hookedWorker("hooked-idle");
    const done = new Promise<number>((resolve) => worker.on("succeeded", (_job, result) => resolve(result)));
    worker.process(4, async (job) => job.data.n * 3);
    await Bun.sleep(200);
    await producer.createJob({ text: "late", n: 5 }).setId(`${prefix}-late`).save();
    expect(await done).toBe(15);
  });

  test("a job whose record is gone (cancelled between two commands) leaves active at once and never runs", async () => {
    const name = "hooked-orphan";
    const producer = queue(name, { isWorker: false, getEvents: false });
    const keys = queueKeys(name, prefix);
    await producer.createJob({ text: "cancelled", n: 1 }).setId(`${prefix}-orphan`).save();
    await redis.hdel(keys.jobs, `${prefix}-orphan`);
    await producer.createJob({ text: "kept", n: 2 }).setId(`${prefix}-kept`).save();
    const { worker } = hookedWorker(name);
    const ran: string[] = [];
    const done = new Promise<void>((resolve) => worker.on("succeeded", () => resolve()));
    worker.process(4, async (job) => {
      ran.push(String(job.id));
      return job.data.n;
    });
    await done;
    expect(ran).toEqual([`${prefix}-kept`]);
    await waitFor(async () => (await redis.llen(keys.active)) === 0, "the active list empty");
    expect(await redis.llen(keys.waiting)).toBe(0);
    expect(await redis.exists(resultKey(`${prefix}-orphan`))).toBe(0);
  });

  test("a success the task store records takes its job out of the queue in the same script; Bee-Queue sends no finish of its own", async () => {
    const name = "hooked-finish";
    const producer = queue(name, { isWorker: false, getEvents: false });
    const { worker, store } = hookedWorker(name);
    await worker.ready();
    const multis = countCalls((worker as unknown as { client: object }).client, "multi");
    const succeeded: string[] = [];
    worker.on("succeeded", (job) => succeeded.push(String(job.id)));
    const starts: unknown[] = [];
    worker.process(10, async (job) => {
      starts.push((job as TakenJob).started);
      if (job.data.n < 0) throw new Error("provider said no");
      await store.succeed(String(job.id), answer(job.data.n), Date.now(), undefined, undefined, job.data.text, name);
      return job.data.n;
    });
    const ids = Array.from({ length: 50 }, (_, n) => `${prefix}-ok-${n}`);
    const jobs = ids.map((id, n) => producer.createJob({ text: `event ${n}`, n }).setId(id));
    expect((await producer.saveAll(jobs)).size).toBe(0);

    await waitFor(() => succeeded.length === 50, "50 successes", 15_000);
    const keys = queueKeys(name, prefix);
    expect(await redis.llen(keys.active)).toBe(0);
    expect(await redis.scard(keys.stalling)).toBe(0);
    expect(await redis.hlen(keys.jobs)).toBe(0);
    expect(multis.calls).toBe(0);
    // Each task was started by the script that took its job: the job carries its attempt.
    expect(starts).toHaveLength(50);
    expect(starts.every((s) => JSON.stringify(s) === JSON.stringify({ status: "STARTED", attempt: 1 }))).toBe(true);
    expect(await redis.hget(resultKey(ids[7] as string), "attempts")).toBe("1");
    expect(await redis.hget(resultKey(ids[7] as string), "queue")).toBe(name);
    expect(await redis.hget(resultKey(ids[7] as string), "status")).toBe("SUCCESS");
    expect(await redis.hget(resultKey(ids[7] as string), "input")).toBe("event 7");

    // A failure is Bee-Queue's to record, as before: the job stays, failed, with its error.
    const failing = await producer.createJob({ text: "x", n: -1 }).setId(`${prefix}-fails`).save();
    await waitFor(async () => (await redis.sismember(keys.failed, failing.id)) === 1, "the job in the failed set");
    expect(multis.calls).toBe(1);
    expect(await redis.llen(keys.active)).toBe(0);

    // A job whose task already ended (a worker died between the two finishes) is taken with that status.
    await producer
      .createJob({ text: "again", n: 7 })
      .setId(ids[7] as string)
      .save();
    await waitFor(() => starts.length === 52, "the finished task's job taken again");
    expect(starts[51]).toEqual({ status: "SUCCESS" });
    expect(errors).toEqual([]);
  });

  test("Bee-Queue's own worker and a hooked worker share a queue: each job runs once and the queue ends empty", async () => {
    const name = "hooked-mixed";
    const producer = queue(name, { isWorker: false, getEvents: false });
    const plain = queue(name, { getEvents: false, removeOnSuccess: true });
    const { worker, store } = hookedWorker(name);
    const runs = new Map<string, number>();
    const by = { plain: 0, hooked: 0 };
    const run = (who: "plain" | "hooked") => async (job: BeeQueue.Job<Payload>) => {
      runs.set(String(job.id), (runs.get(String(job.id)) ?? 0) + 1);
      by[who]++;
      await Bun.sleep(1);
      if (who === "hooked")
        await store.succeed(String(job.id), answer(job.data.n), Date.now(), undefined, undefined, job.data.text, name);
      return job.data.n;
    };
    plain.process(8, run("plain"));
    worker.process(8, run("hooked"));
    const jobs = Array.from({ length: 400 }, (_, n) =>
      producer.createJob({ text: `e${n}`, n }).setId(`${prefix}-m-${n}`),
    );
    expect((await producer.saveAll(jobs)).size).toBe(0);

    await waitFor(() => runs.size === 400, "400 jobs run", 20_000);
    expect([...runs.values()].every((count) => count === 1)).toBe(true);
    expect(by.plain).toBeGreaterThan(0);
    expect(by.hooked).toBeGreaterThan(0);
    const keys = queueKeys(name, prefix);
    await waitFor(async () => (await redis.llen(keys.active)) === 0, "the active list empty");
    expect(await redis.hlen(keys.jobs)).toBe(0);
    expect(await redis.llen(keys.waiting)).toBe(0);
    expect(errors).toEqual([]);
  });
});
