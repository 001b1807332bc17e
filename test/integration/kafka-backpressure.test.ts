/**
 * Backpressure from the kafka_events queue, the app as users run it: with
 * workers slower than the consumer, the waiting queue never grows past the
 * high watermark by more than the chunks already in flight (a fetched batch
 * is not let in whole), consumption pauses and resumes, and every event
 * still ends with one result.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import type { Admin, Kafka } from "kafkajs";
import { QUEUE_KEY_PREFIX } from "../../src/queue/bee-queue-layout";
import { connectRedis } from "../../src/redis/client";
import { generateEvents } from "../../tools/event-generator";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { json, requireKafka, uniquePrefix, waitFor } from "../helpers/services";
import {
  cleanUpIngest,
  committedAtEnd,
  countResults,
  ingestEnv,
  ingestNames,
  sendEvents,
} from "./fixtures/kafka-ingest";

const COUNT = 5000;
const HIGH = 1000;
const LOW = 500;
const CHUNK = 100;
const THREADS = 2;
const PARTITIONS_AT_ONCE = 3;
const prefix = uniquePrefix("kafka-bp").replaceAll("-", "_");

let kafka: Kafka;
let admin: Admin;
let redis: Redis;
let mock: MockOpenAiServer;
let app: AppProcess | undefined;

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  const redisUrl = await isolatedRedisUrl(6);
  redis = await connectRedis(redisUrl);
  mock = createMockOpenAiServer({ port: 0, latencyMs: { min: 10, max: 30 } });
  app = await startApp({
    ...ingestEnv({ prefix, redisUrl, llmUrl: mock.url, topicOut: false }),
    KAFKA_CONSUMER_THREADS: String(THREADS),
    KAFKA_PARTITIONS_AT_ONCE: String(PARTITIONS_AT_ONCE),
    KAFKA_BATCH_SIZE: String(CHUNK),
    KAFKA_QUEUE_HIGH_WATERMARK: String(HIGH),
    KAFKA_QUEUE_LOW_WATERMARK: String(LOW),
    // About 1,000 tasks/s against a consumer that takes tens of thousands of events a second.
    WORKER_JOBS_PER_PROCESS: "20",
  });
}, 60_000);

afterAll(() => cleanUpIngest({ apps: app ? [app] : [], mock, admin, redis, ...ingestNames(prefix) }), 60_000);

describe("Kafka backpressure", () => {
  test("the waiting queue stays within the high watermark plus the chunks in flight, and every event ends with a result", async () => {
    const running = app as AppProcess;
    let maxWaiting = 0;
    let sawPaused = false;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxWaiting = Math.max(maxWaiting, await redis.llen(`${QUEUE_KEY_PREFIX}:kafka_events:waiting`));
        await Bun.sleep(5);
      }
    })();
    const watcher = (async () => {
      while (sampling) {
        const health = await json<{ checks: { kafka_consumer?: { info?: { paused: string | false } } } }>(
          await fetch(`${running.url}/health`),
        );
        if (health.checks.kafka_consumer?.info?.paused === "queue_high_watermark") sawPaused = true;
        await Bun.sleep(50);
      }
    })();

    await sendEvents(kafka, `${prefix}_in`, [...generateEvents({ count: COUNT, idPrefix: prefix })]);
    try {
      await waitFor(async () => (await countResults(redis)).success >= COUNT, `${COUNT} results`, 90_000, 250);
    } finally {
      sampling = false;
      await Promise.all([sampler, watcher]);
    }

    // Every chunk a thread has in flight may land after the count reached the watermark, no more.
    const bound = HIGH + THREADS * PARTITIONS_AT_ONCE * CHUNK;
    process.stderr.write(`backpressure: at most ${maxWaiting} waiting (high watermark ${HIGH}, bound ${bound})\n`);
    expect(maxWaiting).toBeGreaterThanOrEqual(HIGH);
    expect(maxWaiting).toBeLessThanOrEqual(bound);
    expect(sawPaused).toBe(true);
    expect(await countResults(redis)).toEqual({ success: COUNT, other: 0 });
    await waitFor(() => committedAtEnd(admin, `${prefix}_group`, `${prefix}_in`), "offsets committed", 15_000, 200);
  }, 150_000);
});
