/** Worker heartbeats in the real Redis: listed while beating, gone at once on stop, gone after the TTL when killed. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { createLogger } from "../../src/log";
import { createWorkerHeartbeat, listWorkers, WorkerSchema } from "../../src/queue/worker-registry";
import type { RedisClient } from "../../src/redis/client";
import { deleteByPrefix, requireRedis, testConfig, uniquePrefix, waitFor } from "../helpers/services";

const ROOT = join(import.meta.dir, "..", "..");
const prefixes: string[] = [];
let redis: RedisClient;

function newPrefix(): string {
  const prefix = uniquePrefix("workers");
  prefixes.push(prefix);
  return prefix;
}

const info = (id: string) => ({
  id,
  host: "test-host",
  pid: 4242,
  queues: ["ai_processing", "kafka_events"],
  concurrency: 8,
  started_at: Date.UTC(2024, 0, 2, 3, 4, 5),
});

beforeAll(async () => {
  redis = await requireRedis();
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteByPrefix(redis, prefix);
  await redis.quit();
});

describe("worker registry", () => {
  test("a beating worker is listed with its current stats, and disappears at once when it stops", async () => {
    const prefix = newPrefix();
    let processed = 0;
    const heartbeat = createWorkerHeartbeat({
      redis,
      prefix,
      intervalMs: 50,
      info: info("w-1"),
      stats: () => ({ active_jobs: 3, processed, failed: 1, rss_mb: 87.5 }),
    });
    heartbeat.start();
    const [first] = await waitFor(async () => {
      const workers = await listWorkers({ redis, prefix });
      return workers.length === 1 ? workers : undefined;
    }, "the worker to be listed");
    expect(first).toMatchObject({
      id: "w-1",
      host: "test-host",
      pid: 4242,
      queues: ["ai_processing", "kafka_events"],
      concurrency: 8,
      active_jobs: 3,
      processed: 0,
      failed: 1,
      rss_mb: 87.5,
      started_at: "2024-01-02T03:04:05.000Z",
    });
    expect(Value.Check(WorkerSchema, first)).toBe(true);

    processed = 17;
    await waitFor(async () => (await listWorkers({ redis, prefix }))[0]?.processed === 17, "a later beat's stats");

    await heartbeat.stop();
    expect(await listWorkers({ redis, prefix })).toEqual([]);
    expect(await redis.exists(`${prefix}:w-1`, `${prefix}:index`)).toBe(0);
  });

  test("several workers are listed sorted by id, each with one expiring key and one index entry", async () => {
    const prefix = newPrefix();
    const beats = ["w-c", "w-a", "w-b"].map((id) =>
      createWorkerHeartbeat({
        redis,
        prefix,
        info: info(id),
        stats: () => ({ active_jobs: 0, processed: 0, failed: 0, rss_mb: 1 }),
      }),
    );
    for (const beat of beats) beat.start();
    const workers = await waitFor(async () => {
      const listed = await listWorkers({ redis, prefix });
      return listed.length === 3 ? listed : undefined;
    }, "three workers");
    expect(workers.map((w) => w.id)).toEqual(["w-a", "w-b", "w-c"]);
    expect(await redis.zcard(`${prefix}:index`)).toBe(3);
    const ttl = await redis.pttl(`${prefix}:w-a`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(6000);
    await Promise.all(beats.map((beat) => beat.stop()));
    expect(await listWorkers({ redis, prefix })).toEqual([]);
  });

  test("a worker stopped while its first beat is in flight is not listed afterwards", async () => {
    const prefix = newPrefix();
    const heartbeat = createWorkerHeartbeat({
      redis,
      prefix,
      info: info("brief"),
      stats: () => ({ active_jobs: 0, processed: 0, failed: 0, rss_mb: 1 }),
    });
    heartbeat.start();
    await heartbeat.stop();
    heartbeat.start();
    expect(await listWorkers({ redis, prefix })).toEqual([]);
    expect(await redis.exists(`${prefix}:brief`)).toBe(0);
  });

  test("a worker killed with -9 stays listed until its TTL runs out, then drops out and leaves no index entry", async () => {
    const prefix = newPrefix();
    const intervalMs = 200;
    const ttlMs = 1500;
    const module = join(ROOT, "src", "queue", "worker-registry.ts");
    const script = `
      import { connectRedis } from ${JSON.stringify(join(ROOT, "src", "redis", "client.ts"))};
      import { createWorkerHeartbeat } from ${JSON.stringify(module)};
      const redis = await connectRedis(${JSON.stringify(testConfig.redisUrl)});
      createWorkerHeartbeat({
        redis, prefix: ${JSON.stringify(prefix)}, intervalMs: ${intervalMs}, ttlMs: ${ttlMs},
        info: { id: "doomed", host: "h", pid: process.pid, queues: ["q"], concurrency: 1, started_at: Date.now() },
        stats: () => ({ active_jobs: 1, processed: 0, failed: 0, rss_mb: 1 }),
      }).start();
      setInterval(() => {}, 1000);
    `;
    const child = Bun.spawn(["bun", "-e", script], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
    try {
      const [worker] = await waitFor(async () => {
        const workers = await listWorkers({ redis, prefix });
        return workers.length === 1 ? workers : undefined;
      }, "the child worker to be listed");
      expect(worker?.pid).toBe(child.pid);
      // Let a few beats pass so the entry is fresh when the process dies.
      await waitFor(async () => (await redis.pttl(`${prefix}:doomed`)) > ttlMs - intervalMs, "a fresh beat");
    } finally {
      child.kill(9);
      await child.exited;
    }
    const killedAt = Date.now();
    expect((await listWorkers({ redis, prefix })).map((w) => w.id)).toEqual(["doomed"]);
    await waitFor(async () => (await listWorkers({ redis, prefix })).length === 0, "the dead worker to expire", 5000);
    // Its last beat was at most one interval before the kill, so it stayed listed for at least TTL - interval.
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(ttlMs - 2 * intervalMs);
    expect(await redis.zcard(`${prefix}:index`)).toBe(0);
  });

  test("a beat that cannot reach Redis throws nothing, and the next beat after reconnecting lists the worker again", async () => {
    const prefix = newPrefix();
    const client = await requireRedis();
    client.disconnect();
    const lines: string[] = [];
    const heartbeat = createWorkerHeartbeat({
      redis: client,
      prefix,
      logger: createLogger({ destination: { write: (line: string) => void lines.push(line) } }),
      intervalMs: 50,
      info: info("flaky"),
      stats: () => ({ active_jobs: 0, processed: 0, failed: 0, rss_mb: 1 }),
    });
    heartbeat.start();
    await waitFor(() => lines.some((line) => line.includes("heartbeat failed")), "a failed beat to be logged");
    expect(await listWorkers({ redis, prefix })).toEqual([]);
    await client.connect();
    await waitFor(async () => (await listWorkers({ redis, prefix })).length === 1, "the worker after reconnecting");
    await heartbeat.stop();
    expect(await listWorkers({ redis, prefix })).toEqual([]);
    await client.quit();
  });
});
