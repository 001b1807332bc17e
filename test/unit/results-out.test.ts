/** Results of Kafka events out to their topic, at least once: published before the job is acknowledged, and a re-run publishes the stored result. */
import { describe, expect, test } from "bun:test";
import type BeeQueue from "bee-queue";
import type { Producer, ProducerRecord } from "kafkajs";
import { createEventBus } from "../../src/events";
import { withResultsOut } from "../../src/ingest/publish-kafka-results";
import { createResultPublisher } from "../../src/ingest/result-producer";
import { createLogger } from "../../src/log";
import type { TaskState } from "../../src/store/task-store";
import type { TaskJob, TaskResult } from "../../src/task/contract";

const result: TaskResult = {
  response: "ok",
  task_type: "general_analysis",
  model: "m",
  processing_time: 0.01,
  from_cache: false,
  metadata: { tokens_used: 2, prompt_tokens: 1, completion_tokens: 1 },
};

function job(source: TaskJob["source"]): BeeQueue.Job<TaskJob> {
  const data: TaskJob = {
    task_id: "t1",
    text: "hi",
    task_type: "general_analysis",
    use_cache: false,
    temperature: 0,
    max_tokens: 10,
    source,
    accepted_at: 0,
    ...(source === "kafka" ? { event: { topic: "in", partition: 0, offset: "7", key: "u" } } : {}),
  };
  return { data } as BeeQueue.Job<TaskJob>;
}

function harness(run: TaskResult | undefined, stored: TaskState | undefined) {
  const published: string[] = [];
  const republished: string[] = [];
  const bus = createEventBus();
  bus.on("ingest.results_republished", (e) => republished.push(e.task_id));
  const processor = withResultsOut(async () => run, {
    publisher: {
      publish: async (j) => void published.push(j.task_id),
      close: async () => {},
    },
    store: { get: async () => stored },
    bus,
  });
  return { processor, published, republished };
}

describe("results out", () => {
  test("a Kafka task's result is published once, and not counted as republished", async () => {
    const h = harness(result, undefined);
    expect(await h.processor(job("kafka"), "kafka_events")).toEqual(result);
    expect(h.published).toEqual(["t1"]);
    expect(h.republished).toEqual([]);
  });

  test("a re-run of a task an earlier run finished publishes the stored result, counted as a possible duplicate", async () => {
    const h = harness(undefined, { task_id: "t1", status: "SUCCESS", result } as TaskState);
    expect(await h.processor(job("kafka"), "kafka_events")).toBeUndefined();
    expect(h.published).toEqual(["t1"]);
    expect(h.republished).toEqual(["t1"]);
  });

  test("an API task publishes nothing", async () => {
    const h = harness(result, undefined);
    await h.processor(job("api"), "ai_processing");
    expect(h.published).toEqual([]);
  });
});

function kafkaJob(id: string, key: string): TaskJob {
  return {
    task_id: id,
    text: "hi",
    task_type: "general_analysis",
    use_cache: false,
    temperature: 0,
    max_tokens: 10,
    source: "kafka",
    accepted_at: 0,
    event: { topic: "in", partition: 0, offset: "7", key },
  };
}

/** A producer whose produce requests the test acknowledges or fails, one by one. */
function heldProducer() {
  const sends: { record: ProducerRecord; ack: PromiseWithResolvers<void> }[] = [];
  let disconnected = false;
  const producer: Pick<Producer, "send" | "disconnect"> = {
    send: (record) => {
      const ack = Promise.withResolvers<void>();
      sends.push({ record, ack });
      return ack.promise.then(() => []);
    },
    disconnect: async () => {
      disconnected = true;
    },
  };
  return { producer, sends, disconnected: () => disconnected };
}

function publisherOf(producer: Pick<Producer, "send" | "disconnect">, maxBatch = 500) {
  return createResultPublisher({
    producer,
    topic: "out",
    lingerMs: 20,
    bus: createEventBus(),
    logger: createLogger({ level: "silent" }),
    maxBatch,
  });
}

const settledFlag = (promise: Promise<unknown>) => {
  const flag = { settled: false };
  promise.then(
    () => (flag.settled = true),
    () => (flag.settled = true),
  );
  return flag;
};

describe("result producer", () => {
  test("results within the linger window leave in one produce request, and publish resolves only once the broker acknowledges it", async () => {
    const { producer, sends } = heldProducer();
    const publisher = publisherOf(producer);
    const published = [
      publisher.publish(kafkaJob("t1", "u1"), result),
      publisher.publish(kafkaJob("t2", "u2"), result),
    ];
    const flags = published.map(settledFlag);
    while (sends.length === 0) await Bun.sleep(5);

    expect(sends).toHaveLength(1);
    expect(sends[0]?.record.acks).toBe(-1);
    expect(sends[0]?.record.messages.map((m) => m.key)).toEqual(["u1", "u2"]);
    await Bun.sleep(20);
    expect(flags.map((f) => f.settled)).toEqual([false, false]);

    sends[0]?.ack.resolve();
    await Promise.all(published);
  });

  test("a failed produce rejects the publishes of its batch only", async () => {
    const { producer, sends } = heldProducer();
    const publisher = publisherOf(producer, 1);
    const outcomes = Promise.allSettled([
      publisher.publish(kafkaJob("t1", "u1"), result),
      publisher.publish(kafkaJob("t2", "u2"), result),
    ]);
    expect(sends).toHaveLength(2);
    sends[0]?.ack.reject(new Error("leader not available"));
    sends[1]?.ack.resolve();
    expect((await outcomes).map((o) => o.status)).toEqual(["rejected", "fulfilled"]);
  });

  test("close sends what waits at once and disconnects only after every produce has settled", async () => {
    const { producer, sends, disconnected } = heldProducer();
    const publisher = publisherOf(producer);
    const published = publisher.publish(kafkaJob("t1", "u1"), result);
    const closing = publisher.close();
    expect(sends).toHaveLength(1);
    await Bun.sleep(5);
    expect(disconnected()).toBe(false);
    sends[0]?.ack.resolve();
    await closing;
    await published;
    expect(disconnected()).toBe(true);
  });
});
