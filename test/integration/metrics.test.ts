/**
 * Metrics aggregated across processes in the real Redis: exact counter sums,
 * percentiles of the merged histograms, a closed process's data kept,
 * nothing lost to a failed flush, queue depths from Bee-Queue's keys, and the
 * Prometheus text.
 * Past ~300 lines on purpose: each test is a promise of the /metrics
 * contract, on the shared prefix and bus helpers at the top.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { createEventBus, type EventBus } from "../../src/events";
import { createLogger } from "../../src/log";
import { EXTERNAL_COUNTERS, metricsKeys } from "../../src/metrics/keys";
import { renderPrometheus } from "../../src/metrics/prometheus";
import { createMetricsRecorder } from "../../src/metrics/recorder";
import { MetricsSnapshotSchema, readMetrics, readMetricsWithExtras } from "../../src/metrics/snapshot";
import { QUEUE_KEY_PREFIX, queueKeys } from "../../src/queue/bee-queue-layout";
import { RedisClient } from "../../src/redis/client";
import { succeed } from "../helpers/metrics";
import { deleteByPrefix, requireRedis, uniquePrefix, waitFor } from "../helpers/services";

const prefixes: string[] = [];
let redis: RedisClient;

function newPrefix(name: string): string {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  return prefix;
}

/** A logger whose lines the test can read. */
function captureLogger() {
  const lines: string[] = [];
  return { lines, logger: createLogger({ destination: { write: (line: string) => void lines.push(line) } }) };
}

const subscriptions = new WeakMap<EventBus, { count: number }>();

/** An EventBus that knows how many listeners are subscribed, to check that a closed recorder lets go. */
function countingBus(): EventBus {
  const inner = createEventBus();
  const state = { count: 0 };
  const bus: EventBus = {
    on(name, listener) {
      state.count += 1;
      const off = inner.on(name, listener);
      return () => {
        state.count -= 1;
        return off();
      };
    },
    emit: (name, payload) => inner.emit(name, payload),
  };
  subscriptions.set(bus, state);
  return bus;
}

const listeners = (bus: EventBus) => subscriptions.get(bus)?.count ?? -1;

beforeAll(async () => {
  redis = await requireRedis();
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteByPrefix(redis, prefix);
  await redis.quit();
});

describe("metrics across processes", () => {
  test("two processes' counters sum exactly and percentiles come from their merged histograms", async () => {
    const prefix = newPrefix("metrics-sum");
    const { logger } = captureLogger();
    const busA = createEventBus();
    const busB = createEventBus();
    const a = createMetricsRecorder({ redis, bus: busA, processId: "proc-a", logger, prefix, flushIntervalMs: 60_000 });
    const b = createMetricsRecorder({ redis, bus: busB, processId: "proc-b", logger, prefix, flushIntervalMs: 60_000 });

    // A: 600 tasks at 1..100 ms (each value 6 times), 10 ms of work; B: 400 tasks at 1000 ms, 30 ms of work.
    for (let i = 0; i < 600; i++) succeed(busA, (i % 100) + 1, 10, i < 150, 10);
    for (let i = 0; i < 400; i++) succeed(busB, 1000, 30, i < 50, 5);
    for (let i = 0; i < 7; i++) busA.emit("task.failed", { task_id: "f", queue: "ai_processing", code: "X" });
    for (let i = 0; i < 3; i++) busB.emit("task.failed", { task_id: "f", queue: "ai_processing", code: "X" });
    busA.emit("task.retried", { task_id: "r", queue: "ai_processing", code: "X", delay_ms: 5 });
    for (let i = 0; i < 1010; i++) {
      const bus = i % 2 ? busA : busB;
      bus.emit("task.accepted", { task_id: "a", queue: "ai_processing", task_type: "s", source: "api" });
      bus.emit("task.started", { task_id: "a", queue: "ai_processing", attempt: 1 });
    }
    for (let i = 0; i < 20; i++) {
      busA.emit("llm.call", { provider: "p", model: "m", ms: 100, ok: true, prompt_tokens: 7, completion_tokens: 3 });
    }
    for (let i = 0; i < 5; i++) {
      busB.emit("llm.call", { provider: "p", model: "m", ms: 300, ok: false, prompt_tokens: 0, completion_tokens: 0 });
    }
    for (let i = 0; i < 150; i++) busA.emit("cache.lookup", { tier: "exact", ms: 1, round_trips: 1 });
    for (let i = 0; i < 50; i++)
      busB.emit("cache.lookup", { tier: "semantic", ms: 3, round_trips: 1.25, similarity: 0.95 });
    for (let i = 0; i < 800; i++) (i % 2 ? busA : busB).emit("cache.lookup", { tier: "miss", ms: 3, round_trips: 2 });
    busA.emit("llm.embed", { provider: "p", model: "e", ms: 4, inputs: 16, tokens: 160, cost_nano_usd: 3200 });
    busB.emit("llm.embed", { provider: "p", model: "e", ms: 4, inputs: 8, tokens: 80, cost_nano_usd: 1600 });
    busB.emit("llm.rate_limited", { wait_ms: 250 });
    busB.emit("llm.rate_limited", { wait_ms: 150.4 });
    busA.emit("enqueue.batch", { queue: "ai_processing", size: 600, ms: 3 });
    busB.emit("enqueue.batch", { queue: "ai_processing", size: 410, ms: 3 });

    await Promise.all([a.flush(), b.flush()]);
    const m = await readMetrics({ redis, prefix, queues: [] });

    expect(m.completed_tasks).toBe(1000);
    expect(m.failed_tasks).toBe(10);
    expect(m.retried_tasks).toBe(1);
    expect(m.total_tasks).toBe(1010);
    expect(m.started_tasks).toBe(1010);
    expect(m.failure_rate).toBeCloseTo(10 / 1010, 4);
    expect(m.cache).toMatchObject({ hits: 200, misses: 800, hit_rate: 0.2, tokens_saved: 150 * 10 + 50 * 5 });
    expect(m.cache_hit_rate).toBe(0.2);
    expect(m.llm).toMatchObject({
      calls: 20,
      errors: 5,
      prompt_tokens: 140,
      completion_tokens: 60,
      embedding_calls: 2,
      embedding_inputs: 24,
      rate_limited_waits: 2,
      rate_limited_wait_ms: 400,
    });
    expect(m.enqueue).toEqual({ batches: 2, jobs: 1010, avg_batch_size: 505 });

    // 500th of 1000 samples is A's 84 ms; the 950th and 990th are B's 1000 ms. HDR: 3 significant digits.
    expect(m.latency_ms.count).toBe(1000);
    expect(m.latency_ms.p50).toBeGreaterThanOrEqual(84);
    expect(m.latency_ms.p50).toBeLessThanOrEqual(84 * 1.001);
    for (const p of [m.latency_ms.p95, m.latency_ms.p99, m.latency_ms.max]) {
      expect(p).toBeGreaterThanOrEqual(1000);
      expect(p).toBeLessThanOrEqual(1001);
    }
    expect(m.processing_ms.p50).toBeCloseTo(10, 1);
    expect(m.processing_ms.p99).toBeCloseTo(30, 1);
    expect(m.avg_processing_time).toBeCloseTo((600 * 0.01 + 400 * 0.03) / 1000, 4);
    expect(m.llm.avg_ms).toBeCloseTo((20 * 100 + 5 * 300) / 25, 0);
    expect(m.llm.p95_ms).toBeCloseTo(300, 0);
    expect(Value.Check(MetricsSnapshotSchema, m)).toBe(true);

    await Promise.all([a.close(), b.close()]);
  });

  test("closing a process keeps its data in the totals, and Redis keeps no field of its own for it", async () => {
    const prefix = newPrefix("metrics-close");
    const { logger } = captureLogger();
    const busA = countingBus();
    const busB = countingBus();
    const a = createMetricsRecorder({ redis, bus: busA, processId: "proc-a", logger, prefix, flushIntervalMs: 60_000 });
    const b = createMetricsRecorder({ redis, bus: busB, processId: "proc-b", logger, prefix, flushIntervalMs: 60_000 });
    for (let i = 1; i <= 100; i++) succeed(busA, i, 1);
    await a.flush();
    // Recorded after the last flush: close() must still carry them.
    for (let i = 0; i < 50; i++) succeed(busA, 2000, 1);
    for (let i = 0; i < 50; i++) succeed(busB, 3000, 1);
    await b.flush();
    // Rate keys aside (one comes with each second a task ended in), and flush receipts, which expire on their own.
    const receipts = async () => redis.keys(`${prefix}:flushed:*`);
    const keysNow = async () =>
      (await redis.keys(`${prefix}:*`)).filter((key) => !key.includes(":rate:") && !key.includes(":flushed:")).sort();
    const keys = await keysNow();

    await a.close();
    await a.close();
    let m = await readMetrics({ redis, prefix, queues: [] });
    expect(m.completed_tasks).toBe(200);
    expect(m.latency_ms.count).toBe(200);
    expect(m.latency_ms.p50).toBeCloseTo(100, 0);
    expect(m.latency_ms.p95).toBeGreaterThanOrEqual(3000);
    expect(m.latency_ms.p95).toBeLessThanOrEqual(3003);
    expect(listeners(busA)).toBe(0);
    expect(listeners(busB)).toBeGreaterThan(0);

    await b.close();
    m = await readMetrics({ redis, prefix, queues: [] });
    expect(m.completed_tasks).toBe(200);
    expect(m.latency_ms.count).toBe(200);
    // Closing added counts and nothing else: no key per process, nothing left to fold.
    expect(await keysNow()).toEqual(keys);
    expect(keys).toEqual(
      [metricsKeys(prefix).counters, ...(["latency", "processing"] as const).map(metricsKeys(prefix).histogram)].sort(),
    );
    for (const receipt of await receipts()) expect(await redis.ttl(receipt)).toBeLessThanOrEqual(600);
  });

  test("the timer flushes without being asked, and tasks/s counts the 10 full seconds before the last one", async () => {
    const prefix = newPrefix("metrics-rate");
    const { logger } = captureLogger();
    const bus = createEventBus();
    const t0 = Math.floor(Date.now() / 1000) * 1000 + 500;
    const recorder = createMetricsRecorder({
      redis,
      bus,
      processId: "p",
      logger,
      prefix,
      flushIntervalMs: 30,
      now: () => t0,
    });
    for (let i = 0; i < 40; i++) succeed(bus, 5, 5);
    for (let i = 0; i < 10; i++) bus.emit("task.failed", { task_id: "f", queue: "q", code: "X" });
    await waitFor(async () => (await readMetrics({ redis, prefix, queues: [] })).failed_tasks === 10, "a timed flush");

    const at = (ms: number) => readMetrics({ redis, prefix, queues: [], now: t0 + ms });
    expect((await at(0)).tasks_per_second).toBe(0);
    expect((await at(2000)).tasks_per_second).toBe(5);
    expect((await at(11_000)).tasks_per_second).toBe(5);
    expect((await at(12_000)).tasks_per_second).toBe(0);
    const ttl = await redis.ttl(metricsKeys(prefix).rate(Math.floor(t0 / 1000)));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(120);
    await recorder.close();
  });

  test("a flush that fails loses no counts: they go out with the next flush after Redis is back", async () => {
    const prefix = newPrefix("metrics-fail");
    const { logger } = captureLogger();
    const client = await requireRedis();
    const bus = createEventBus();
    const recorder = createMetricsRecorder({
      redis: client,
      bus,
      processId: "p",
      logger,
      prefix,
      flushIntervalMs: 60_000,
    });
    const read = () => readMetrics({ redis, prefix, queues: [], now: Date.now() + 2000 });

    client.disconnect();
    for (let i = 0; i < 50; i++) succeed(bus, 10, 10);
    await expect(recorder.flush()).rejects.toThrow();
    // Nothing new for the histograms after the failure: the next flush must still send them.
    bus.emit("enqueue.batch", { queue: "q", size: 50, ms: 1 });
    await client.connect();
    await recorder.flush();
    let m = await read();
    expect(m.completed_tasks).toBe(50);
    expect(m.latency_ms.count).toBe(50);
    expect(m.enqueue.jobs).toBe(50);

    client.disconnect();
    for (let i = 0; i < 25; i++) succeed(bus, 10, 10);
    await expect(recorder.flush()).rejects.toThrow();
    // Recorded while the failed deltas were out: both sets must add up.
    for (let i = 0; i < 10; i++) succeed(bus, 10, 10);
    await client.connect();
    await recorder.flush();
    m = await read();
    expect(m.completed_tasks).toBe(85);
    expect(m.latency_ms.count).toBe(85);
    expect(m.tasks_per_second).toBe(8.5);
    await recorder.close();
    await client.quit();
  });

  test("a flush whose reply is lost after Redis applied it is not counted twice (issue 13 §11)", async () => {
    const prefix = newPrefix("metrics-lost-reply");
    const { logger } = captureLogger();
    const client = await requireRedis();
    // EXEC runs in Redis, then the reply is lost with the connection: what a client sees as a failed flush.
    const multi = client.multi.bind(client);
    let loseNextReply = true;
    client.multi = ((...args: Parameters<typeof client.multi>) => {
      const tx = multi(...args);
      const exec = tx.exec.bind(tx);
      tx.exec = (async () => {
        const replies = await exec();
        if (loseNextReply) {
          loseNextReply = false;
          throw new Error("Connection is closed.");
        }
        return replies;
      }) as typeof tx.exec;
      return tx;
    }) as typeof client.multi;
    const bus = createEventBus();
    const recorder = createMetricsRecorder({
      redis: client,
      bus,
      processId: "p",
      logger,
      prefix,
      flushIntervalMs: 60_000,
    });
    for (let i = 0; i < 40; i++) succeed(bus, 10, 10);
    await expect(recorder.flush()).rejects.toThrow("Connection is closed");
    for (let i = 0; i < 2; i++) succeed(bus, 10, 10);
    await recorder.flush();
    const m = await readMetrics({ redis, prefix, queues: [], now: Date.now() + 2000 });
    expect(m.completed_tasks).toBe(42);
    expect(m.latency_ms.count).toBe(42);
    await recorder.close();
    await client.quit();
  });

  test("close() with Redis unreachable resolves and logs a warning naming the process", async () => {
    const prefix = newPrefix("metrics-gone");
    const { lines, logger } = captureLogger();
    const unreachable = new RedisClient("redis://127.0.0.1:1", {
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    unreachable.on("error", () => {});
    const bus = createEventBus();
    const recorder = createMetricsRecorder({ redis: unreachable, bus, processId: "lonely", logger, prefix });
    succeed(bus, 10, 10);
    await recorder.close();
    await recorder.close();
    const warnings = lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === "warn");
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings[0]).toMatchObject({ process_id: "lonely", prefix });
    unreachable.disconnect();
  });

  test("queue depths are read from Bee-Queue's keys, and active tasks default to the active lists", async () => {
    const prefix = newPrefix("metrics-queues");
    const queue = newPrefix("q");
    const other = newPrefix("q2");
    const key = (q: string, state: string) => `${QUEUE_KEY_PREFIX}:${q}:${state}`;
    await redis
      .multi()
      .rpush(key(queue, "waiting"), "1", "2", "3")
      .rpush(key(queue, "active"), "4", "5")
      .zadd(key(queue, "delayed"), 1, "6", 2, "7", 3, "8", 4, "9")
      .sadd(key(queue, "failed"), "10")
      .rpush(key(other, "active"), "11")
      .exec();
    prefixes.push(`${QUEUE_KEY_PREFIX}:${queue}`, `${QUEUE_KEY_PREFIX}:${other}`);
    await redis.hset(
      metricsKeys(prefix).counters,
      `tasks_accepted:${queue}`,
      9,
      EXTERNAL_COUNTERS.kafkaEventsConsumed,
      12,
    );

    const m = await readMetrics({ redis, prefix, queues: [queueKeys(queue), queueKeys(other)] });
    expect(m.queues[queue]).toEqual({ waiting: 3, active: 2, delayed: 4, failed: 1, accepted: 9 });
    expect(m.queues[other]).toEqual({ waiting: 0, active: 1, delayed: 0, failed: 0, accepted: 0 });
    expect(m.active_tasks).toBe(3);
    expect(m.kafka.events_consumed).toBe(12);
    expect((await readMetrics({ redis, prefix, queues: [queueKeys(queue)], activeTasks: 42 })).active_tasks).toBe(42);
  });

  test("cache events give hits by tier, average similarity, round trips per lookup and cost saved net of embeddings", async () => {
    const prefix = newPrefix("metrics-cache");
    expect((await readMetrics({ redis, prefix, queues: [] })).cache).toMatchObject({
      hits: 0,
      hit_rate: 0,
      avg_similarity: 0,
      estimated_cost_saved_usd: 0,
    });
    const { logger } = captureLogger();
    const bus = createEventBus();
    const recorder = createMetricsRecorder({ redis, bus, processId: "p", logger, prefix, flushIntervalMs: 60_000 });
    // 2 exact hits saving 0.5 USD each, 3 semantic hits, 1 single-flight, 3 misses, 1 error, 2 bypassed.
    for (let i = 0; i < 2; i++) bus.emit("cache.lookup", { tier: "exact", ms: 1, round_trips: 1, saved_nano_usd: 5e8 });
    for (const similarity of [0.9, 0.95, 0.97]) {
      bus.emit("cache.lookup", { tier: "semantic", ms: 4, round_trips: 1.5, similarity });
    }
    bus.emit("cache.lookup", { tier: "single_flight", ms: 30, round_trips: 1 });
    for (let i = 0; i < 3; i++) bus.emit("cache.lookup", { tier: "miss", ms: 4, round_trips: 2.5 });
    bus.emit("cache.lookup", { tier: "error", ms: 1, round_trips: 1 });
    bus.emit("cache.error", { stage: "lookup" });
    for (let i = 0; i < 2; i++) bus.emit("cache.lookup", { tier: "bypass", ms: 0, round_trips: 0 });
    bus.emit("cache.guard_refused", { reason: "negation", similarity: 0.95 });
    bus.emit("cache.knn_batch", { queries: 4, ms: 1 });
    bus.emit("cache.knn_batch", { queries: 2, ms: 1 });
    bus.emit("cache.store", { stored: true, reason: "exact and semantic" });
    bus.emit("cache.store", { stored: false, reason: "finish_reason length" });
    bus.emit("llm.embed", { provider: "p", model: "e", ms: 4, inputs: 6, tokens: 60, cost_nano_usd: 25e7 });
    await recorder.close();

    const { cache, cache_hit_rate } = await readMetrics({ redis, prefix, queues: [] });
    expect(cache).toMatchObject({
      hits: 6,
      misses: 4,
      hit_rate: 0.6,
      exact_hits: 2,
      semantic_hits: 3,
      single_flight_hits: 1,
      bypassed: 2,
      errors: 1,
      guard_refusals: 1,
      stored: 1,
      not_admitted: 1,
      embedding_calls: 1,
      embedding_inputs: 6,
      knn_batches: 2,
      knn_queries: 6,
      avg_knn_batch_size: 3,
      saved_usd: 1,
      embedding_cost_usd: 0.25,
      estimated_cost_saved_usd: 0.75,
    });
    expect(cache_hit_rate).toBe(0.6);
    expect(cache.avg_similarity).toBeCloseTo(0.94, 4);
    // (2·1 + 3·1.5 + 1 + 3·2.5 + 1) / 10 lookups, bypasses excluded.
    expect(cache.round_trips_per_lookup).toBeCloseTo(1.6, 3);
    expect(cache.lookup_ms.p99).toBeGreaterThanOrEqual(29);
  });

  test("the Prometheus text declares every metric's type, carries the queue depth with its labels, and keeps the deprecated names", async () => {
    const prefix = newPrefix("metrics-prom");
    const queue = newPrefix("q");
    prefixes.push(`${QUEUE_KEY_PREFIX}:${queue}`);
    await redis.rpush(`${QUEUE_KEY_PREFIX}:${queue}:waiting`, "a", "b", "c", "d", "e");
    const { logger } = captureLogger();
    const bus = createEventBus();
    const recorder = createMetricsRecorder({ redis, bus, processId: "p", logger, prefix, flushIntervalMs: 60_000 });
    for (let i = 0; i < 4; i++) succeed(bus, 40, 4);
    succeed(bus, 3000, 4);
    bus.emit("llm.call", { provider: "p", model: "m", ms: 9, ok: true, prompt_tokens: 11, completion_tokens: 2 });
    await recorder.close();
    await redis.hset(metricsKeys(prefix).kafkaLag, "datos_crudos:2", JSON.stringify({ lag: 7, committed: "3", at: 1 }));

    const { snapshot, extras } = await readMetricsWithExtras({ redis, prefix, queues: [queueKeys(queue)] });
    const text = await renderPrometheus(snapshot, extras, { input: 1, output: 2 });
    expect(await renderPrometheus(snapshot, extras, { input: 1, output: 2 })).toBe(text);
    expect(text).toContain(`aies_queue_depth{queue="${queue}",state="waiting"} 5`);
    expect(text).toContain(`aies_queue_depth{queue="${queue}",state="active"} 0`);
    expect(text).toContain("aies_tasks_completed_total 5");
    expect(text).toContain('aies_llm_tokens_total{kind="prompt"} 11');
    // (11 · 1 + 2 · 2) / 1e6 USD at the given prices per million tokens.
    expect(text).toContain("aies_llm_cost_usd_total 0.000015");
    // Cumulative buckets: four tasks at 40 ms, one at 3 s.
    expect(text).toContain('aies_task_latency_seconds_bucket{le="0.025"} 0');
    expect(text).toContain('aies_task_latency_seconds_bucket{le="0.05"} 4');
    expect(text).toContain('aies_task_latency_seconds_bucket{le="2.5"} 4');
    expect(text).toContain('aies_task_latency_seconds_bucket{le="5"} 5');
    expect(text).toContain('aies_task_latency_seconds_bucket{le="+Inf"} 5');
    expect(text).toContain("aies_task_latency_seconds_count 5");
    const sum = Number(/^aies_task_latency_seconds_sum (\S+)$/m.exec(text)?.[1]);
    expect(sum).toBeCloseTo(3.16, 2);
    expect(text).toContain('aies_task_processing_seconds_bucket{le="0.005"} 5');
    expect(text).toContain('aies_llm_request_duration_seconds_bucket{le="0.01"} 1');
    expect(text).toContain('aies_kafka_consumer_lag_messages{topic="datos_crudos",partition="2"} 7');
    // The names these replace, for one release, flagged in their HELP.
    expect(text).toMatch(/aies_task_latency_ms\{quantile="0\.5"\} 40\.0\d*/);
    expect(text).toContain('aies_kafka_consumer_lag{partition="datos_crudos:2"} 7');
    expect(text).toMatch(/^# HELP aies_task_latency_ms DEPRECATED.*aies_task_latency_seconds/m);
    expect(text).toMatch(/^# HELP aies_kafka_consumer_lag DEPRECATED.*aies_kafka_consumer_lag_messages/m);

    const types = new Map<string, string>();
    const suffixes: Record<string, string[]> = {
      counter: [""],
      gauge: [""],
      histogram: ["_bucket", "_sum", "_count"],
      summary: ["", "_sum", "_count"],
    };
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("# HELP ")) continue;
      const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary)$/.exec(line);
      if (type?.[1] && type[2]) {
        expect(types.has(type[1]), `${type[1]} declared twice`).toBe(false);
        types.set(type[1], type[2]);
        continue;
      }
      const sample =
        /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (-?[0-9.e+-]+|NaN|\+Inf)$/.exec(
          line,
        );
      expect(sample, `not a Prometheus sample line: ${line}`).not.toBeNull();
      const name = sample?.[1] ?? "";
      const family = [...types].find(([base, kind]) => suffixes[kind]?.some((suffix) => `${base}${suffix}` === name));
      expect(family, `no # TYPE before ${line}`).toBeDefined();
    }
    for (const [name, kind] of types) {
      if (kind === "counter") expect(name).toEndWith("_total");
    }
    expect(types.get("aies_task_latency_seconds")).toBe("histogram");
    expect(types.get("aies_queue_depth")).toBe("gauge");
    expect(types.get("aies_tasks_accepted_total")).toBe("counter");
    for (const name of [
      "aies_kafka_events_consumed_total",
      "aies_tasks_active",
      "aies_tasks_per_second",
      "aies_uptime_seconds",
    ]) {
      expect(types.has(name)).toBe(true);
    }
  });
});
