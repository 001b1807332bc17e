/**
 * Metrics of processes that come and go, in the real Redis: a process killed
 * with -9 loses only what it recorded since its last flush and nothing it
 * flushed counts twice; a process restarted under the same id adds to its
 * predecessor's totals; percentiles merged from several processes are those
 * of one histogram of every raw sample, within 3 significant digits of the
 * exact ones.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createEventBus } from "../../src/events";
import { createLogger } from "../../src/log";
import { createDurationHistogram, recordMs, summarize } from "../../src/metrics/histogram";
import { createMetricsRecorder } from "../../src/metrics/recorder";
import { readMetrics } from "../../src/metrics/snapshot";
import type { RedisClient } from "../../src/redis/client";
import { succeed } from "../helpers/metrics";
import { deleteByPrefix, requireRedis, testConfig, uniquePrefix, waitFor } from "../helpers/services";

const prefixes: string[] = [];
let redis: RedisClient;

function newPrefix(name: string): string {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  return prefix;
}

function recorderOn(prefix: string, processId: string) {
  const bus = createEventBus();
  const logger = createLogger({ level: "error" });
  const recorder = createMetricsRecorder({ redis, bus, processId, logger, prefix, flushIntervalMs: 3_600_000 });
  return { recorder, succeed: (latency_ms: number) => succeed(bus, latency_ms) };
}

const snapshot = (prefix: string) => readMetrics({ redis, prefix, queues: [] });

beforeAll(async () => {
  redis = await requireRedis();
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteByPrefix(redis, prefix);
  await redis.quit();
});

describe("metrics of processes that die, restart and merge", () => {
  test("a process killed with -9 loses at most what it recorded since its last flush, and nothing counts twice", async () => {
    const prefix = newPrefix("metrics-kill");
    const batch = 100;
    const writer = Bun.spawn(
      ["bun", "test/integration/fixtures/metrics-writer.ts", testConfig.redisUrl, prefix, "1-w0-1", String(batch)],
      { stdout: "pipe", stderr: "inherit" },
    );
    await waitFor(async () => (await snapshot(prefix)).latency_ms.count >= 20 * batch, "the writer's flushes", 20_000);
    writer.kill("SIGKILL");
    expect(await writer.exited).not.toBe(0);
    const lines = (await new Response(writer.stdout).text()).trim().split("\n");
    // What the writer saw acknowledged; the flush it had sent when killed may have gone in too.
    const acknowledged = Number(lines.at(-1)?.replace("flushed ", ""));
    expect(acknowledged).toBeGreaterThanOrEqual(20 * batch);

    const killed = await snapshot(prefix);
    expect([acknowledged, acknowledged + batch]).toContain(killed.latency_ms.count);
    // Counters and buckets go out in one MULTI: the histogram never counts a task the counters do not.
    expect(killed.completed_tasks).toBe(killed.latency_ms.count);
    // Latencies cycle through 1..100 ms and every flush carries whole cycles: the median is 50 or 51 ms.
    expect(killed.latency_ms.p50).toBeGreaterThanOrEqual(50);
    expect(killed.latency_ms.p50).toBeLessThanOrEqual(51 * 1.001);
    expect(killed.latency_ms.max).toBeCloseTo(100, 0);

    // Restarted under the same id (a container's PID 1): its samples add to the killed one's, which stay.
    const restarted = recorderOn(prefix, "1-w0-1");
    for (let i = 0; i < 50; i++) restarted.succeed(2000);
    await restarted.recorder.close();
    const after = await snapshot(prefix);
    expect(after.latency_ms.count).toBe(killed.latency_ms.count + 50);
    expect(after.completed_tasks).toBe(after.latency_ms.count);
    expect(after.latency_ms.max).toBeGreaterThanOrEqual(2000);
    expect(after.latency_ms.max).toBeLessThanOrEqual(2002);
  }, 30_000);

  test("percentiles merged from several processes are those of one histogram of every sample, within 0.1 % of the exact ones", async () => {
    const prefix = newPrefix("metrics-precision");
    const writers = ["api", "w0", "w1"].map((id) => recorderOn(prefix, id));
    const whole = createDurationHistogram();
    const exactUs: number[] = [];
    let seed = 11;
    const random = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let flush = 0; flush < 5; flush++) {
      for (const [p, { succeed, recorder }] of writers.entries()) {
        for (let i = 0; i < 2000; i++) {
          // Whole µs from 1 ms to 60 s, log-uniform, each process its own range so the merge matters.
          const ms = Math.round(1000 * (1 + p) * 20_000 ** random()) / 1000;
          succeed(ms);
          recordMs(whole, ms);
          exactUs.push(Math.ceil(ms * 1000));
        }
        await recorder.flush();
      }
    }
    const m = await snapshot(prefix);
    const expected = summarize(whole);
    expect(m.latency_ms).toEqual({
      p50: expected.p50,
      p95: expected.p95,
      p99: expected.p99,
      max: m.latency_ms.max,
      count: 30_000,
    });
    expect(m.avg_processing_time).toBeCloseTo(expected.mean / 1000, 5);

    exactUs.sort((a, b) => a - b);
    const exact = (p: number) => (exactUs[Math.ceil((p / 100) * exactUs.length) - 1] ?? 0) / 1000;
    for (const [p, value] of [
      [50, m.latency_ms.p50],
      [95, m.latency_ms.p95],
      [99, m.latency_ms.p99],
      [100, m.latency_ms.max],
    ] as const) {
      expect(value).toBeGreaterThanOrEqual(exact(p));
      expect(value).toBeLessThanOrEqual(exact(p) * 1.001);
    }
    await Promise.all(writers.map(({ recorder }) => recorder.close()));
  });
});
