/**
 * The broker stopped for 20 s under load, then started again: the consumer
 * threads reconnect by themselves (kafkajs retries with backoff, a crashed
 * consumer restarts, a dead thread is restarted), /health reports the outage,
 * and every event still ends with exactly one result.
 *
 * It stops the broker of the running setup through the services module (see
 * fixtures/broker-control.ts for how it finds which one).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import type { Admin, Kafka } from "kafkajs";
import { connectRedis } from "../../src/redis/client";
import { generateEvents } from "../../tools/event-generator";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { emptyDatabase } from "../../tools/redis-admin";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { requireKafka, testConfig, uniquePrefix, waitFor } from "../helpers/services";
import { committedAtEnd, countResults, ingestEnv, readTopic, sendEvents } from "../integration/fixtures/kafka-ingest";
import { type BrokerControl, brokerControl } from "./fixtures/broker-control";

const COUNT = 10_000;
const OUTAGE_MS = 20_000;
const prefix = uniquePrefix("kafka-outage").replaceAll("-", "_");
const log = (line: string) => process.stderr.write(`${line}\n`);
let kafka: Kafka;
let admin: Admin;
let redis: Redis;
let mock: MockOpenAiServer;
let app: AppProcess | undefined;
let broker: BrokerControl | undefined;

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  broker = await brokerControl(testConfig.kafka.brokers, log);
  const redisUrl = await isolatedRedisUrl(5);
  redis = await connectRedis(redisUrl);
  mock = createMockOpenAiServer({ port: 0, latencyMs: { min: 5, max: 30 } });
  app = await startApp({
    ...ingestEnv({ prefix, redisUrl, llmUrl: mock.url }),
    // Keeps the consumer mid-topic when the broker goes away.
    KAFKA_QUEUE_HIGH_WATERMARK: "1000",
    KAFKA_QUEUE_LOW_WATERMARK: "500",
  });
});

afterAll(async () => {
  // Whatever happened, the broker runs again for the tests after this one.
  await broker?.start();
  if (app && app.proc.exitCode === null) await app.stop();
  await mock?.stop();
  await admin.deleteGroups([`${prefix}_group`]).catch(() => {});
  await admin.deleteTopics({ topics: [`${prefix}_in`, `${prefix}_out`, `${prefix}_in.dlq`] }).catch(() => {});
  await admin.disconnect();
  if (redis) await emptyDatabase(redis);
  await redis?.quit();
}, 120_000);

describe("the broker stopped for 20 s under load", () => {
  test("consumption resumes by itself when it comes back, and no event is lost or doubled", async () => {
    const running = app as AppProcess;
    await sendEvents(kafka, `${prefix}_in`, [...generateEvents({ count: COUNT, idPrefix: prefix })]);
    await waitFor(async () => (await countResults(redis)).success >= COUNT / 10, "a tenth of the results", 60_000, 50);
    expect(await committedAtEnd(admin, `${prefix}_group`, `${prefix}_in`)).toBe(false);

    await broker?.stop();
    let unhealthySeen = false;
    try {
      const until = Date.now() + OUTAGE_MS;
      // The outage itself lasts OUTAGE_MS; meanwhile /health must say the broker is gone.
      while (Date.now() < until) {
        const health = await fetch(`${running.url}/health`).catch(() => undefined);
        if (health?.status === 503) unhealthySeen = true;
        await Bun.sleep(500);
      }
    } finally {
      await broker?.start();
    }
    expect(unhealthySeen).toBe(true);
    const atRestart = (await countResults(redis)).success;

    await waitFor(async () => (await countResults(redis)).success >= COUNT, `${COUNT} results`, 150_000, 250);
    await waitFor(() => committedAtEnd(admin, `${prefix}_group`, `${prefix}_in`), "offsets at the end", 30_000, 250);
    expect(await countResults(redis)).toEqual({ success: COUNT, other: 0 });
    expect(running.proc.exitCode).toBeNull();
    const out = await readTopic(kafka, `${prefix}_out`, COUNT, 60_000);
    const ids = new Set(out.map((m) => (JSON.parse(m.value?.toString() ?? "{}") as { task_id: string }).task_id));
    expect(ids.size).toBe(COUNT);
    log(
      `broker outage: ${atRestart} results when it came back, then all ${COUNT}; ${out.length - ids.size} produced twice`,
    );
  }, 300_000);
});
