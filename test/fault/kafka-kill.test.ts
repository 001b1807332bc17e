/**
 * kill -9 of the whole app (consumer threads, and the supervisor of the
 * worker processes) in the middle of the stream, then a restart: every event
 * still ends with exactly one result, because offsets are committed only
 * after the jobs are in Redis, and the idempotent enqueue skips what a
 * redelivery brings again.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import type { Admin, Kafka } from "kafkajs";
import { connectRedis } from "../../src/redis/client";
import { generateEvents } from "../../tools/event-generator";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { requireKafka, uniquePrefix, waitFor } from "../helpers/services";
import {
  cleanUpIngest,
  committedAtEnd,
  countMarkers,
  countResults,
  ingestEnv,
  readTopic,
  sendEvents,
} from "../integration/fixtures/kafka-ingest";

const COUNT = 10_000;
const prefix = uniquePrefix("kafka-kill").replaceAll("-", "_");
let kafka: Kafka;
let admin: Admin;
let redis: Redis;
let mock: MockOpenAiServer;
let redisUrl: string;
const apps: AppProcess[] = [];

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  redisUrl = await isolatedRedisUrl(4);
  redis = await connectRedis(redisUrl);
  // Slow enough answers that the kill lands while events are still being consumed and processed.
  mock = createMockOpenAiServer({ port: 0, latencyMs: { min: 5, max: 30 } });
});

afterAll(
  () =>
    cleanUpIngest({
      apps,
      mock,
      admin,
      redis,
      groupId: `${prefix}_group`,
      topics: [`${prefix}_in`, `${prefix}_out`, `${prefix}_in.dlq`],
    }),
  60_000,
);

describe("the app killed with SIGKILL mid-stream", () => {
  test("after a restart every event has exactly one result and none is lost", async () => {
    // Low watermarks: backpressure keeps the consumer mid-stream (paused and resumed) while workers catch up,
    // so the kill lands with events consumed but not committed, and others not consumed at all.
    const env = {
      ...ingestEnv({ prefix, redisUrl, llmUrl: mock.url }),
      KAFKA_QUEUE_HIGH_WATERMARK: "1000",
      KAFKA_QUEUE_LOW_WATERMARK: "500",
    };
    const first = await startApp(env);
    apps.push(first);
    const events = [...generateEvents({ count: COUNT, idPrefix: prefix })];
    await sendEvents(kafka, `${prefix}_in`, events);

    await waitFor(async () => (await countResults(redis)).success >= COUNT / 5, "a fifth of the results", 60_000, 50);
    expect(await committedAtEnd(admin, `${prefix}_group`, `${prefix}_in`)).toBe(false);
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    const before = (await countResults(redis)).success;
    expect(before).toBeLessThan(COUNT);

    const second = await startApp(env);
    apps.push(second);
    await waitFor(async () => (await countResults(redis)).success >= COUNT, `${COUNT} results`, 120_000, 250);
    await waitFor(
      () => committedAtEnd(admin, `${prefix}_group`, `${prefix}_in`),
      "offsets committed to the end",
      30_000,
      250,
    );

    expect(await countResults(redis)).toEqual({ success: COUNT, other: 0 });
    // One idempotency marker per event: no event was enqueued as a second job.
    expect(await countMarkers(redis)).toBe(COUNT);
    const failed = await redis.scard("bq:kafka_events:failed");
    expect(failed).toBe(0);
    // Results out are at-least-once: every event is there; a result produced just before the kill may be there twice.
    const out = await readTopic(kafka, `${prefix}_out`, COUNT, 60_000);
    const ids = new Set(out.map((m) => (JSON.parse(m.value?.toString() ?? "{}") as { task_id: string }).task_id));
    expect(ids.size).toBe(COUNT);
    const { kafka: counted } = (await (await fetch(`${second.url}/metrics`)).json()) as {
      kafka: { results_republished: number };
    };
    process.stderr.write(
      `kill -9 after ${before} results: ${COUNT} results, ${out.length - ids.size} results produced twice to the out topic, ${counted.results_republished} republished by re-runs (counted)\n`,
    );
  }, 240_000);
});
