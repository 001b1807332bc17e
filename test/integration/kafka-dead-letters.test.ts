/**
 * The DLQ sink (src/ingest/dead-letters.ts) against the real broker, on a
 * DLQ topic whose max.message.bytes (16 KiB) is far under the sink's own
 * limit: the broker refuses the send, and the sink falls back to sending each
 * letter alone, whole when it fits, else as a `too_large` reference. Before,
 * the send failed for good and took the consumer thread with it (issue 13 §1).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import type { Admin, Kafka, Producer } from "kafkajs";
import { createDeadLetterSink, type DeadLetter, DLQ_HEADERS } from "../../src/ingest/dead-letters";
import { requireKafka, uniquePrefix } from "../helpers/services";
import { readTopic } from "./fixtures/kafka-ingest";

const dlq = `${uniquePrefix("kafka-dlq-sink").replaceAll("-", "_")}_in.dlq`;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;

beforeAll(async () => {
  ({ kafka, admin } = await requireKafka());
  await admin.createTopics({
    topics: [{ topic: dlq, numPartitions: 1, configEntries: [{ name: "max.message.bytes", value: "16384" }] }],
    waitForLeaders: true,
  });
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
});

afterAll(async () => {
  await producer.disconnect();
  await admin.deleteTopics({ topics: [dlq] }).catch(() => {});
  await admin.disconnect();
});

const letter = (offset: string, value: Buffer): DeadLetter => ({
  origin: { topic: "source", partition: 2, offset, key: "user-1" },
  value,
  headers: { trace: "t-1" },
  reason: "not_json",
  detail: "Unexpected token",
});

describe("the DLQ sink on a topic that takes less than the sink's limit", () => {
  test("a letter the broker refuses as too large goes as a too_large reference; the others of its send go whole", async () => {
    const big = Buffer.alloc(40_000, "y");
    const small = Buffer.from("not json at all");
    await createDeadLetterSink({ producer, topic: dlq }).send([letter("7", small), letter("8", big)]);

    const letters = await readTopic(kafka, dlq, 2, 15_000);
    expect(letters.map((l) => l.headers?.[DLQ_HEADERS.offset]?.toString())).toEqual(["7", "8"]);
    const [whole, reference] = letters;
    expect(whole?.value?.toString()).toBe(small.toString());
    expect(whole?.headers?.[DLQ_HEADERS.reason]?.toString()).toBe("not_json");
    expect(reference?.headers?.[DLQ_HEADERS.reason]?.toString()).toBe("too_large");
    expect(reference?.headers?.trace?.toString()).toBe("t-1");
    expect(JSON.parse(reference?.value?.toString() ?? "{}")).toMatchObject({
      topic: "source",
      partition: 2,
      offset: "8",
      size_bytes: big.length,
      sha256: createHash("sha256").update(big).digest("hex"),
      reason: "not_json",
      head_base64: big.subarray(0, 4096).toString("base64"),
    });
  }, 30_000);
});
