/**
 * The kafkajs consume-only ceiling: a topic of its own (prefix bench-) is
 * filled with N small messages, then one consumer reads them all with
 * eachBatch and does nothing else. Topic and group are deleted afterwards.
 */
import { Kafka, logLevel } from "kafkajs";
import type { PartResult } from "../result";
import type { ScenarioContext } from "../scenarios/scenario";

export const KAFKA_MESSAGES = 100_000;

export async function kafkaConsumeBaseline(
  { options, progress, signal }: ScenarioContext,
  count = KAFKA_MESSAGES,
): Promise<PartResult> {
  const id = `bench-${process.pid}-${Date.now().toString(36)}`;
  const kafka = new Kafka({
    clientId: id,
    brokers: options.brokers,
    connectionTimeout: 3000,
    logLevel: logLevel.NOTHING,
    retry: { retries: 3 },
  });
  const admin = kafka.admin();
  await admin.connect().catch((error: unknown) => {
    throw new Error(
      `Kafka at ${options.brokers.join(",")} is not reachable (${String(error)}); start it with \`bun run services:up\``,
    );
  });
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId: id, maxBytes: 10 * 1024 * 1024 });
  try {
    await admin.createTopics({ topics: [{ topic: id, numPartitions: 1 }], waitForLeaders: true });
    progress.note(`kafka baseline: producing ${count} messages to ${id}`);
    await producer.connect();
    const value = JSON.stringify({ text: options.text, task_type: options.taskType });
    for (let sent = 0; sent < count && !signal.aborted; sent += 5000) {
      const messages = Array.from({ length: Math.min(5000, count - sent) }, (_, i) => ({
        key: String(sent + i),
        value,
      }));
      await producer.send({ topic: id, messages });
    }
    await consumer.connect();
    await consumer.subscribe({ topic: id, fromBeginning: true });
    let consumed = 0;
    let firstAt = 0;
    let lastAt = 0;
    const done = new Promise<void>((resolve) => {
      void consumer.run({
        eachBatch: async ({ batch }) => {
          if (firstAt === 0) firstAt = performance.now();
          consumed += batch.messages.length;
          lastAt = performance.now();
          if (consumed >= count) resolve();
        },
      });
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
    const deadline = setTimeout(() => progress.note("kafka baseline: still consuming after 60 s"), 60_000);
    await done;
    clearTimeout(deadline);
    const seconds = (lastAt - firstAt) / 1000;
    return {
      name: "kafkajs consume-only",
      mode: "fixed",
      durationS: Math.round(seconds * 1000) / 1000,
      sent: count,
      completed: consumed,
      errors: consumed < count ? { unfinished: count - consumed } : {},
      throughput: seconds > 0 ? Math.round(consumed / seconds) : 0,
      unit: "messages",
      timeline: [],
      resources: {},
      extra: { message_bytes: value.length, partitions: 1 },
      interrupted: signal.aborted,
    };
  } finally {
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [id] }).catch(() => {});
    await admin.deleteGroups([id]).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}
