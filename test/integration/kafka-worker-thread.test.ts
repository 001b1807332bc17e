/**
 * The product's consumer thread (src/ingest/consumer-thread.ts), started as
 * the consumer pool starts it and spoken to with its message protocol,
 * against the real broker and Redis: every event produced becomes one job in
 * the Bee-Queue queue kafka_events, a malformed one goes to the DLQ topic,
 * and the group's committed offsets reach the end of every partition.
 *
 * Its own topics and group (a unique prefix) and its own Redis database: the
 * thread's queue name and key prefixes are fixed (kafka_events, bq, ingest:seen),
 * so a database of its own is what keeps its keys apart.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { Admin, Kafka } from "kafkajs";
import type { ConsumerThreadData, FromConsumerThread, ToConsumerThread } from "../../src/ingest/consumer-protocol";
import { DLQ_HEADERS } from "../../src/ingest/dead-letters";
import { connectRedis, type RedisClient } from "../../src/redis/client";
import type { TaskJob } from "../../src/task/contract";
import { emptyDatabase } from "../../tools/redis-admin";
import { isolatedRedisUrl } from "../helpers/app-process";
import { requireKafka, testConfig, uniquePrefix, waitFor } from "../helpers/services";
import { committedAtEnd, readTopic } from "./fixtures/kafka-ingest";

/** A database no other test file uses (see the isolatedRedisUrl and DB numbers of the others). */
const DB = 9;
const ENTRY = join(import.meta.dir, "..", "..", "src", "ingest", "consumer-thread.ts");
const prefix = uniquePrefix("kafka-thread").replaceAll("-", "_");
const topicIn = `${prefix}_in`;
const dlqTopic = `${topicIn}.dlq`;
const groupId = `${prefix}_group`;
const VALID = 600;
const MALFORMED = 3;

let kafka: Kafka;
let admin: Admin;
let redisUrl: string;
let redis: RedisClient;

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  await admin.createTopics({
    topics: [
      { topic: topicIn, numPartitions: 3 },
      { topic: dlqTopic, numPartitions: 1 },
    ],
    waitForLeaders: true,
  });
  redisUrl = await isolatedRedisUrl(DB);
  redis = await connectRedis(redisUrl);
});

afterAll(async () => {
  await admin.deleteGroups([groupId]).catch(() => {});
  await admin.deleteTopics({ topics: [topicIn, dlqTopic] }).catch(() => {});
  await admin.disconnect();
  await emptyDatabase(redis);
  await redis.quit();
});

/** The jobs in Bee-Queue's kafka_events queue (its job records), by task id. */
async function jobsInQueue(): Promise<Map<string, TaskJob>> {
  const records = await redis.hgetall("bq:kafka_events:jobs");
  return new Map(Object.entries(records).map(([id, raw]) => [id, (JSON.parse(raw) as { data: TaskJob }).data]));
}

describe("the consumer thread (src/ingest/consumer-thread.ts) against the real Kafka and Redis", () => {
  test("every produced event becomes one queued job, a malformed one a dead letter, and the offsets are committed to the end", async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const valid = Array.from({ length: VALID }, (_, i) => ({
      key: `user-${i % 17}`,
      value: JSON.stringify({ event_id: `${prefix}-e-${i}`, text: `event ${i}` }),
    }));
    const malformed = Array.from({ length: MALFORMED }, (_, i) => ({ key: `bad-${i}`, value: `not json ${i}` }));
    const sent = [...valid, ...malformed];
    for (let i = 0; i < sent.length; i += 200) {
      await producer.send({ topic: topicIn, messages: sent.slice(i, i + 200) });
    }
    await producer.disconnect();

    const worker = new Worker(ENTRY, {
      workerData: {
        threadIndex: 0,
        env: {
          REDIS_URL: redisUrl,
          KAFKA_BROKERS: testConfig.kafka.brokers.join(","),
          KAFKA_TOPIC_IN: topicIn,
          KAFKA_GROUP_ID: groupId,
          KAFKA_SESSION_TIMEOUT_MS: "10000",
          // Several chunks per fetched batch: each is enqueued and committed on its own.
          KAFKA_BATCH_SIZE: "100",
          LOG_LEVEL: "error",
        },
      } satisfies ConsumerThreadData,
    });
    const messages: FromConsumerThread[] = [];
    const errors: string[] = [];
    let exited = false;
    worker.on("message", (message: FromConsumerThread) => {
      messages.push(message);
      if (message.type === "error") errors.push(message.message);
    });
    worker.on("error", (error: Error) => errors.push(error.message));
    worker.on("exit", () => {
      exited = true;
    });
    const stats = () =>
      messages
        .flatMap((m) => (m.type === "stats" ? [m] : []))
        .reduce(
          (sum, m) => ({
            consumed: sum.consumed + m.deltas.consumed,
            enqueued: sum.enqueued + m.deltas.enqueued,
            duplicates: sum.duplicates + m.deltas.duplicates,
            dead_lettered: sum.dead_lettered + m.deltas.dead_lettered,
          }),
          { consumed: 0, enqueued: 0, duplicates: 0, dead_lettered: 0 },
        );

    try {
      await waitFor(() => messages.some((m) => m.type === "ready") || errors.length > 0, "the thread's ready", 30_000);
      expect(errors).toEqual([]);
      await waitFor(
        () => committedAtEnd(admin, groupId, topicIn),
        "the group's committed offsets at the end of every partition",
        30_000,
        100,
      );
      expect(errors).toEqual([]);

      // What a worker would find: one job per valid event, waiting in the queue, carrying the event's text and origin.
      const jobs = await jobsInQueue();
      expect(jobs.size).toBe(VALID);
      expect(await redis.llen("bq:kafka_events:waiting")).toBe(VALID);
      for (const [i, event] of valid.entries()) {
        const job = jobs.get(`${prefix}-e-${i}`);
        expect(job).toMatchObject({ text: `event ${i}`, source: "kafka", event: { topic: topicIn, key: event.key } });
      }
      // No two jobs come from the same event (partition and offset).
      const origins = [...jobs.values()].map((job) => `${job.event?.partition}:${job.event?.offset}`);
      expect(new Set(origins).size).toBe(VALID);

      // Malformed events went to the DLQ topic, saying why and where from, before their offsets were committed.
      const letters = await readTopic(kafka, dlqTopic, MALFORMED, 30_000);
      expect(letters).toHaveLength(MALFORMED);
      expect(new Set(letters.map((l) => l.value?.toString()))).toEqual(new Set(malformed.map((m) => m.value)));
      for (const letter of letters) {
        expect(letter.headers?.[DLQ_HEADERS.reason]?.toString()).toBe("not_json");
        expect(letter.headers?.[DLQ_HEADERS.topic]?.toString()).toBe(topicIn);
      }

      // The thread reports what it did to the main thread.
      await waitFor(() => stats().consumed >= sent.length, "stats covering every event", 10_000);
      expect(stats()).toEqual({ consumed: sent.length, enqueued: VALID, duplicates: 0, dead_lettered: MALFORMED });
      const assigned = messages.flatMap((m) => (m.type === "assigned" ? [m.partitions] : []));
      expect(assigned.at(-1)).toBe(3);
    } finally {
      worker.postMessage({ type: "stop" } satisfies ToConsumerThread);
      await waitFor(() => messages.some((m) => m.type === "stopped"), "the thread to leave the group", 15_000).catch(
        () => {},
      );
      await waitFor(() => exited, "the thread to exit", 5000).catch(() => worker.terminate());
    }
    // A stop is graceful: the thread said so, left the group (no member holds a partition) and ended by itself.
    expect(messages.some((m) => m.type === "stopped")).toBe(true);
    expect(exited).toBe(true);
    const [group] = (await admin.describeGroups([groupId])).groups;
    expect(group?.members ?? []).toEqual([]);
    expect(errors).toEqual([]);
  }, 90_000);
});
