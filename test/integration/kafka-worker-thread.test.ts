/**
 * kafkajs against the real broker from a Bun worker thread: produce, consume
 * with eachBatch and manual commits, and committed offsets that equal the end
 * of the topic.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Worker } from "node:worker_threads";
import type { Admin, Kafka } from "kafkajs";
import { requireKafka, testConfig, uniquePrefix, waitFor } from "../helpers/services";
import type { FromConsumer, ToConsumer } from "./fixtures/kafka-protocol";

let kafka: Kafka;
let admin: Admin;
const topic = uniquePrefix("kafka-thread");
const groupId = `${topic}-group`;
const COUNT = 600;

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
});

afterAll(async () => {
  await admin.deleteGroups([groupId]).catch(() => {});
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
});

describe("kafkajs in a Bun worker thread", () => {
  test("every produced event is consumed once and the committed offsets reach the end of each partition", async () => {
    const producer = kafka.producer();
    await producer.connect();
    const sent = Array.from({ length: COUNT }, (_, i) => ({
      key: `user-${i % 17}`,
      value: JSON.stringify({ event_id: `e-${i}`, text: `event ${i}` }),
    }));
    for (let i = 0; i < sent.length; i += 200) await producer.send({ topic, messages: sent.slice(i, i + 200) });
    await producer.disconnect();

    const worker = new Worker(new URL("./fixtures/kafka-consumer.worker.ts", import.meta.url).pathname, {
      workerData: { brokers: testConfig.kafka.brokers, topic, groupId },
    });
    const received: { partition: number; key: string | null; value: string }[] = [];
    const errors: string[] = [];
    let stopped = false;
    worker.on("message", (message: FromConsumer) => {
      if (message.type === "batch") received.push(...message.messages);
      if (message.type === "error") errors.push(message.message);
      if (message.type === "stopped") stopped = true;
    });
    worker.on("error", (error: Error) => errors.push(error.message));

    try {
      await waitFor(
        () => received.length >= COUNT || errors.length > 0,
        `${COUNT} events in the consumer thread`,
        30_000,
      );
      expect(errors).toEqual([]);
      expect(received).toHaveLength(COUNT);
      expect(new Set(received.map((m) => m.value))).toEqual(new Set(sent.map((m) => m.value)));
      // Keyed events of one user land on one partition.
      const partitionsOfUser = new Map<string | null, Set<number>>();
      for (const m of received)
        partitionsOfUser.set(m.key, (partitionsOfUser.get(m.key) ?? new Set()).add(m.partition));
      expect([...partitionsOfUser.values()].every((partitions) => partitions.size === 1)).toBe(true);

      const ends = await admin.fetchTopicOffsets(topic);
      await waitFor(async () => {
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
        return ends.every(
          (end) => committed?.partitions.find((p) => p.partition === end.partition)?.offset === end.high,
        );
      }, "committed offsets equal to the end offsets");
      expect(ends.reduce((sum, p) => sum + Number(p.high), 0)).toBe(COUNT);
    } finally {
      worker.postMessage({ type: "stop" } satisfies ToConsumer);
      await waitFor(() => stopped, "the consumer thread to leave the group", 15_000).catch(() => {});
      await worker.terminate();
    }
  }, 60_000);
});
