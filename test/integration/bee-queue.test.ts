/**
 * Bee-Queue on the project's ioredis client (src/redis/client.ts), against the
 * real Redis: the queue the pipeline is built on.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import BeeQueue from "bee-queue";
import type { RedisClient } from "../../src/redis/client";
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
  await redis.quit();
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
