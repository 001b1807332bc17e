/**
 * The two ends of `bun bench kafka` on the Kafka side, so that the harness
 * measures event → result as a Kafka user sees it, without asking the app
 * over HTTP:
 *
 * - a producer that sends the events handed to it while a send is on the wire
 *   together in the next one (group commit, as a producer's linger does): one
 *   `producer.send` per event had kafkajs fall behind at 1,800 events/s (send lag
 *   P99 3.5–6.5 s, 0.7–1.3 GiB RSS);
 * - a reader of the results topic (KAFKA_TOPIC_OUT) that ends each event's wait
 *   when its outcome arrives. Before, each event polled GET /task/:id until the
 *   consumer had enqueued it (404 until then) and then waited on ?wait=: a
 *   consumer a second behind turned into tens of thousands of 404s a second,
 *   which slowed the app's API and the harness until nothing completed for 20 s.
 */
import type { Consumer, Kafka, Message, Producer } from "kafkajs";
import { createBatcher } from "../src/util/batcher";

/** Events in one send at most. */
const MAX_BATCH = 2000;
/** Sends on the wire at once. */
const MAX_SENDS = 2;

export interface GroupCommitProducer {
  /** Resolves once the broker has the event (acks of the whole batch). */
  send(message: Message): Promise<void>;
}

/** The project's one batcher (src/util/batcher.ts) in front of `producer.send`: the events of a turn go together. */
export function groupCommitProducer(producer: Producer, topic: string): GroupCommitProducer {
  const batcher = createBatcher<Message, undefined>({
    lingerMs: 0,
    maxSize: MAX_BATCH,
    maxInFlight: MAX_SENDS,
    run: async (messages) => {
      await producer.send({ topic, messages });
      return messages.map(() => undefined);
    },
  });
  return { send: (message) => batcher.add(message) };
}

/** An event's outcome on the results topic: its status as the message says it. */
export type ResultStatus = "SUCCESS" | "FAILURE" | string;

export interface ResultsReader {
  /**
   * Resolves with the event's status when its result arrives (call it before producing the event). No timer
   * per event: the open loop's drain counts an event whose result never came as "unfinished", and stop() ends
   * the waits still open.
   */
  expect(taskId: string): Promise<ResultStatus>;
  /** Results that arrived for no waiting event (a duplicate from an at-least-once retry, or an unknown id). */
  readonly unexpected: number;
  stop(): Promise<void>;
}

class ReaderStopped extends Error {
  readonly kind = "no_result";
}

/** Reads `topic` from its start with a group of its own; resolves once the group is joined (at most 30 s). */
export async function readResults(kafka: Kafka, topic: string, groupId: string): Promise<ResultsReader> {
  const waiting = new Map<string, { resolve: (status: ResultStatus) => void; reject: (error: Error) => void }>();
  let unexpected = 0;
  const consumer: Consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const joined = new Promise<void>((resolve) => {
    consumer.on(consumer.events.GROUP_JOIN, () => resolve());
  });
  await consumer.run({
    autoCommit: true,
    eachBatch: async ({ batch }) => {
      for (const message of batch.messages) {
        if (!message.value) continue;
        const { task_id, status } = JSON.parse(message.value.toString()) as { task_id?: string; status?: string };
        const entry = task_id === undefined ? undefined : waiting.get(task_id);
        if (!entry || task_id === undefined) {
          unexpected++;
          continue;
        }
        waiting.delete(task_id);
        entry.resolve(status ?? "UNKNOWN");
      }
    },
  });
  let timer: Timer | undefined;
  const gaveUp = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the results reader did not join its group within 30 s (${topic})`)),
      30_000,
    );
  });
  try {
    await Promise.race([joined, gaveUp]);
  } catch (error) {
    await consumer.disconnect().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    expect: (taskId) =>
      new Promise<ResultStatus>((resolve, reject) => {
        waiting.set(taskId, { resolve, reject });
      }),
    get unexpected() {
      return unexpected;
    },
    stop: async () => {
      for (const { reject } of waiting.values()) reject(new ReaderStopped("the results reader stopped first"));
      waiting.clear();
      await consumer.disconnect();
    },
  };
}
