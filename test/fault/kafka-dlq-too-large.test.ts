/**
 * A Kafka event the DLQ cannot take whole (issue 13 §1): a non-JSON value of
 * about 1,048,400 bytes is accepted by the broker (default message.max.bytes
 * ≈ 1 MiB), but the same value with the DLQ's reason headers is not. The app
 * used to crash its consumer thread on that batch every ~0.4 s for ever: the
 * partition never moved, the valid event behind it (same key, so same
 * partition) was never processed, and /health still said ok.
 *
 * Now the letter goes to the DLQ as a reference (`too_large`: source offset,
 * size, sha256 of the value) and the partition moves on. Run against the real
 * broker and Redis, the app as users run it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import type Redis from "ioredis";
import type { Admin, Kafka } from "kafkajs";
import { DLQ_HEADERS } from "../../src/ingest/dead-letters";
import type { MetricsSnapshot } from "../../src/metrics/snapshot";
import { connectRedis } from "../../src/redis/client";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { json, requireKafka, uniquePrefix, waitFor } from "../helpers/services";
import { cleanUpIngest, ingestEnv, ingestNames, readTopic } from "../integration/fixtures/kafka-ingest";

/** A database no other test file uses. */
const DB = 12;
/** Just under the broker's default message.max.bytes (1,048,588) once the record batch's overhead is added. */
const HUGE_BYTES = 1_048_400;
const prefix = uniquePrefix("kafka-too-large").replaceAll("-", "_");
const topicIn = `${prefix}_in`;
const dlq = `${topicIn}.dlq`;
let kafka: Kafka;
let admin: Admin;
let redis: Redis;
let mock: MockOpenAiServer;
const apps: AppProcess[] = [];

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  const redisUrl = await isolatedRedisUrl(DB);
  redis = await connectRedis(redisUrl);
  mock = createMockOpenAiServer({ port: 0, latencyMs: 1 });
  apps.push(await startApp({ ...ingestEnv({ prefix, redisUrl, llmUrl: mock.url, topicOut: false }) }));
}, 60_000);

afterAll(() => cleanUpIngest({ apps, mock, admin, redis, ...ingestNames(prefix) }), 60_000);

describe("a Kafka event too large for the DLQ", () => {
  test("goes to the DLQ as a too_large reference, and the valid event behind it (same key) is processed", async () => {
    const app = apps[0] as AppProcess;
    // Not JSON: a rejected event, so it must become a dead letter.
    const huge = Buffer.alloc(HUGE_BYTES, "x");
    const sha256 = createHash("sha256").update(huge).digest("hex");
    const eventId = `${prefix}-valid-after-huge`;
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const [sent] = await producer.send({ topic: topicIn, messages: [{ key: "same-user", value: huge }] });
    await producer.send({
      topic: topicIn,
      messages: [{ key: "same-user", value: JSON.stringify({ event_id: eventId, text: "after the huge one" }) }],
    });
    await producer.disconnect();

    // The valid event behind it is processed: its partition moved on.
    await waitFor(
      async () => {
        const response = await fetch(`${app.url}/task/${eventId}`);
        return response.status === 200 && (await json<{ status: string }>(response)).status === "SUCCESS";
      },
      "the valid event after the huge one to end SUCCESS",
      30_000,
      200,
    );

    // The DLQ holds a reference to the huge event: where it was, how big, its digest, and why it was rejected.
    const [letter] = await readTopic(kafka, dlq, 1, 15_000);
    expect(letter?.headers?.[DLQ_HEADERS.reason]?.toString()).toBe("too_large");
    expect(letter?.headers?.[DLQ_HEADERS.offset]?.toString()).toBe(sent?.baseOffset);
    expect(letter?.value?.length ?? Number.POSITIVE_INFINITY).toBeLessThan(64 * 1024);
    const reference = JSON.parse(letter?.value?.toString() ?? "{}");
    expect(reference).toMatchObject({
      topic: topicIn,
      partition: sent?.partition,
      offset: sent?.baseOffset,
      size_bytes: HUGE_BYTES,
      sha256,
      reason: "not_json",
    });

    // Offsets committed to the end, lag 0, every Kafka counter counted, and the app healthy: no thread restarts.
    const committedAtEnd = async () => {
      const [committed] = await admin.fetchOffsets({ groupId: `${prefix}_group`, topics: [topicIn] });
      const offset = committed?.partitions.find((p) => p.partition === sent?.partition)?.offset;
      return offset === String(BigInt(sent?.baseOffset ?? "0") + 2n);
    };
    await waitFor(committedAtEnd, "the partition's offset committed past both events", 15_000, 200);
    const metrics = await waitFor(
      async () => {
        const snapshot = await json<MetricsSnapshot>(await fetch(`${app.url}/metrics`));
        return snapshot.kafka.events_consumed >= 2 && snapshot.kafka.total_lag === 0 ? snapshot : undefined;
      },
      "the metrics to count both events and a total lag of 0",
      15_000,
      250,
    );
    expect(metrics.kafka).toMatchObject({ events_consumed: 2, events_enqueued: 1, dead_lettered: 1 });
    const health = await fetch(`${app.url}/health`);
    const report = await json<{ status: string; checks: Record<string, { info?: Record<string, unknown> }> }>(health);
    expect(health.status).toBe(200);
    expect(report.status).toBe("ok");
    expect(report.checks.kafka_consumer?.info).toMatchObject({ restarts: 0 });
  }, 90_000);
});
