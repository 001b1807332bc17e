/**
 * The consumer role (src/roles/consumer.ts and its pool) with stand-in
 * consumer threads (fixtures/consumer-thread-stand-in.ts) and the real Redis:
 * a thread that dies on its first batch after every start is restarted with
 * a growing backoff and shows as degraded in /health and in /metrics (issue
 * 13 §1); the lag timers stop when the threads fail to start, and /metrics
 * lag holds only the partitions the threads hold now, stale entries aged out
 * (issue 13 §10).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { healthRoutes } from "../../src/api/health";
import { createEventBus, type EventMap } from "../../src/events";
import { createLogger } from "../../src/log";
import { metricsKeys } from "../../src/metrics/keys";
import { createMetricsRecorder } from "../../src/metrics/recorder";
import { readMetrics } from "../../src/metrics/snapshot";
import { connectRedis, type RedisClient } from "../../src/redis/client";
import { startConsumerRole } from "../../src/roles/consumer";
import { emptyDatabase } from "../../tools/redis-admin";
import { isolatedRedisUrl } from "../helpers/app-process";
import { testConfig, uniquePrefix, waitFor } from "../helpers/services";

/** A database no other test file uses. */
const DB = 14;
const ENTRY = join(import.meta.dir, "fixtures", "consumer-thread-stand-in.ts");
const logger = createLogger({ level: "silent" });
const config = { ...testConfig.kafka, consumerThreads: 1 };
let redis: RedisClient;

beforeAll(async () => {
  redis = await connectRedis(await isolatedRedisUrl(DB));
});

afterAll(async () => {
  await emptyDatabase(redis);
  await redis.quit();
});

interface HealthBody {
  status: string;
  checks: Record<string, { ok: boolean; degraded?: string; info?: Record<string, unknown> }>;
}

describe("the consumer role", () => {
  test("a thread that dies after every start is restarted with a growing backoff, and shows as degraded in /health and /metrics", async () => {
    const bus = createEventBus();
    const events: (EventMap["ingest.thread"] & { at: number })[] = [];
    bus.on("ingest.thread", (e) => events.push({ ...e, at: performance.now() }));
    const prefix = uniquePrefix("consumer-restarts");
    const recorder = createMetricsRecorder({ redis, bus, processId: prefix, logger, prefix, flushIntervalMs: 100 });
    const role = await startConsumerRole({
      config,
      redis,
      bus,
      logger,
      entry: ENTRY,
      env: { FIXTURE_MODE: "crash_after_ready" },
    });
    try {
      const died = () => events.filter((e) => e.state === "died");
      await waitFor(() => died().length >= 4, "four deaths of the thread", 20_000, 20);
      // From each death to the next start: at least 0.4 s, 0.8, 1.6, 3.2 (less 10% for timer slack), though
      // every one of those starts succeeded ("ready") before the thread died again.
      const delays = died()
        .slice(0, 3)
        .map((death) => (events.find((e) => e.state === "ready" && e.at > death.at)?.at ?? 0) - death.at);
      for (const [i, delay] of delays.entries()) expect(delay).toBeGreaterThanOrEqual(0.9 * 400 * 2 ** i);

      const app = healthRoutes({ probes: [role.probe], roles: ["consumer"], startedAt: Date.now() });
      const response = await app.handle(new Request("http://localhost/health"));
      const body = (await response.json()) as HealthBody;
      // Degraded, not down: the process works and its pool restarts the thread by itself.
      expect(response.status).toBe(200);
      expect(body.status).toBe("degraded");
      expect(body.checks.kafka_consumer?.ok).toBe(true);
      expect(body.checks.kafka_consumer?.degraded).toContain("restart");
      expect(body.checks.kafka_consumer?.info).toMatchObject({ restarts: died().length });

      await recorder.flush();
      const snapshot = await readMetrics({ redis, queues: [], prefix });
      expect(snapshot.kafka.consumer_restarts).toBe(died().length);
    } finally {
      await role.stop(5000);
      await recorder.close();
    }
  }, 40_000);

  test("when the threads fail to start, the role stops them and its lag timers", async () => {
    const aliveFile = join(tmpdir(), `consumer-role-alive-${process.pid}-${Date.now()}`);
    const lagKey = metricsKeys().kafkaLag;
    try {
      await expect(
        startConsumerRole({
          config,
          redis,
          bus: createEventBus(),
          logger,
          entry: ENTRY,
          env: { FIXTURE_MODE: "never_ready", ALIVE_FILE: aliveFile },
          startTimeoutMs: 1500,
        }),
      ).rejects.toThrow("did not join");
      // The failed start wrote nothing more after it gave up: no lag, no thread left running.
      await Bun.sleep(300);
      await redis.del(lagKey);
      const lastAlive = existsSync(aliveFile) ? readFileSync(aliveFile, "utf8") : "";
      await Bun.sleep(2500);
      expect(await redis.exists(lagKey)).toBe(0);
      expect(existsSync(aliveFile) ? readFileSync(aliveFile, "utf8") : "").toBe(lastAlive);
    } finally {
      rmSync(aliveFile, { force: true });
    }
  }, 20_000);

  test("/metrics lag holds only the partitions the threads hold now; entries of topics no longer consumed age out", async () => {
    const lagKey = metricsKeys().kafkaLag;
    // What an earlier deployment on another topic left 7.5 minutes ago.
    await redis.hset(lagKey, "gone_topic:3", JSON.stringify({ lag: 5, committed: "1", at: Date.now() - 450_000 }));
    const role = await startConsumerRole({
      config,
      redis,
      bus: createEventBus(),
      logger,
      entry: ENTRY,
      env: { FIXTURE_MODE: "assigned" },
    });
    try {
      await waitFor(() => role.pool.status().assigned[0] === 1, "the thread's assignment");
      // The thread holds t:0; it once reported t:1, which a rebalance has since taken away.
      await waitFor(() => role.pool.status().lags.length > 0, "the thread's lag report");
      expect(role.pool.status().lags.map((l) => `${l.topic}:${l.partition}`)).toEqual(["t:0"]);
      await waitFor(
        async () => Object.keys((await readMetrics({ redis, queues: [] })).kafka.lag).join(",") === "t:0",
        "/metrics lag to hold t:0 alone",
        5000,
        100,
      );
      expect((await readMetrics({ redis, queues: [] })).kafka.total_lag).toBe(5);
    } finally {
      await role.stop(5000);
      await redis.del(lagKey);
    }
  }, 20_000);
});
