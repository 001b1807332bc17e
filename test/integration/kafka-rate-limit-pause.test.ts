/**
 * Backpressure from the LLM rate limiter, the app as users run it: events
 * arrive faster than LLM_RATE_LIMIT lets tasks call the model, so once the
 * limiter has had no budget for KAFKA_RATE_LIMIT_PAUSE_MS consumption pauses
 * (events wait in Kafka, not in Redis), resumes once the backlog is served,
 * and every event still ends with one result.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import { type Admin, type Kafka, Partitioners } from "kafkajs";
import { connectRedis } from "../../src/redis/client";
import { generateEvents } from "../../tools/event-generator";
import { produceEvents } from "../../tools/event-producer";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { json, requireKafka, uniquePrefix, waitFor } from "../helpers/services";
import { cleanUpIngest, committedAtEnd, countResults, ingestEnv, ingestNames } from "./fixtures/kafka-ingest";

const COUNT = 240;
/** Twice what the limiter lets through. */
const SEND_RATE = 80;
const LLM_CALLS_PER_SECOND = 40;
const prefix = uniquePrefix("kafka-rl").replaceAll("-", "_");

let kafka: Kafka;
let admin: Admin;
let redis: Redis;
let mock: MockOpenAiServer;
let app: AppProcess | undefined;

type Health = { checks: { kafka_consumer?: { info?: { paused: string | false; consumed: number } } } };

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  const redisUrl = await isolatedRedisUrl(8);
  redis = await connectRedis(redisUrl);
  mock = createMockOpenAiServer({ port: 0, latencyMs: 1 });
  app = await startApp({
    ...ingestEnv({ prefix, redisUrl, llmUrl: mock.url, topicOut: false }),
    LLM_RATE_LIMIT: `${LLM_CALLS_PER_SECOND}/1s`,
    KAFKA_RATE_LIMIT_PAUSE_MS: "500",
  });
}, 60_000);

afterAll(() => cleanUpIngest({ apps: app ? [app] : [], mock, admin, redis, ...ingestNames(prefix) }), 60_000);

describe("Kafka backpressure from the LLM rate limiter", () => {
  test("consumption pauses while the limiter has no budget, resumes, and every event ends with a result", async () => {
    const running = app as AppProcess;
    let pausedSamples = 0;
    let consumedWhilePaused = Number.POSITIVE_INFINITY;
    let sampling = true;
    const watcher = (async () => {
      while (sampling) {
        const info = (await json<Health>(await fetch(`${running.url}/health`))).checks.kafka_consumer?.info;
        if (info?.paused === "llm_rate_limited") {
          pausedSamples++;
          consumedWhilePaused = Math.min(consumedWhilePaused, info.consumed);
        }
        await Bun.sleep(50);
      }
    })();

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const started = performance.now();
    try {
      await produceEvents({
        producer,
        topic: `${prefix}_in`,
        events: [...generateEvents({ count: COUNT, idPrefix: prefix })].map((e) => ({ key: e.key, value: e.value })),
        rate: SEND_RATE,
      });
    } finally {
      await producer.disconnect();
    }
    try {
      await waitFor(async () => (await countResults(redis)).success >= COUNT, `${COUNT} results`, 60_000, 200);
    } finally {
      sampling = false;
      await watcher;
    }
    const seconds = (performance.now() - started) / 1000;

    process.stderr.write(
      `rate-limit pause: paused in ${pausedSamples} samples, at most ${consumedWhilePaused} of ${COUNT} consumed while paused; ${COUNT} results in ${seconds.toFixed(1)} s\n`,
    );
    expect(pausedSamples).toBeGreaterThan(0);
    // The pause held events back in Kafka: not everything had been consumed while it lasted.
    expect(consumedWhilePaused).toBeLessThan(COUNT);
    // The limiter was honoured: COUNT calls at LLM_CALLS_PER_SECOND take at least this long.
    expect(seconds).toBeGreaterThanOrEqual((COUNT / LLM_CALLS_PER_SECOND) * 0.9);
    expect(await countResults(redis)).toEqual({ success: COUNT, other: 0 });
    await waitFor(() => committedAtEnd(admin, `${prefix}_group`, `${prefix}_in`), "offsets committed", 15_000, 200);
    // Resumed once the backlog was served (at the controller's next check, every 250 ms).
    await waitFor(
      async () =>
        (await json<Health>(await fetch(`${running.url}/health`))).checks.kafka_consumer?.info?.paused === false,
      "consumption resumed",
      5000,
      100,
    );
  }, 120_000);
});
