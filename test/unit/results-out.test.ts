/**
 * Outcomes of Kafka events out to their topic, at least once: results and final failures are published before
 * the job is acknowledged, and a re-run publishes the stored outcome.
 */
import { describe, expect, test } from "bun:test";
import type BeeQueue from "bee-queue";
import type { Producer, ProducerRecord } from "kafkajs";
import { AppError } from "../../src/errors";
import { createEventBus } from "../../src/events";
import { withResultsOut } from "../../src/ingest/publish-kafka-results";
import { createResultPublisher } from "../../src/ingest/result-producer";
import { createLogger } from "../../src/log";
import type { TaskState } from "../../src/store/task-store";
import type { TaskError, TaskJob, TaskResult } from "../../src/task/contract";

const result: TaskResult = {
  response: "ok",
  task_type: "general_analysis",
  model: "m",
  processing_time: 0.01,
  from_cache: false,
  metadata: { tokens_used: 2, prompt_tokens: 1, completion_tokens: 1 },
};

function job(source: TaskJob["source"], retries = 0): BeeQueue.Job<TaskJob> {
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
  return { data, options: { retries } } as unknown as BeeQueue.Job<TaskJob>;
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
    logger: createLogger({ level: "silent" }),
  });
  return { processor, published, republished };
}

/** As the task store records the provider's refusal; GET /task/:id shows exactly this. */
const storedError: TaskError = {
  code: "LLM_BAD_REQUEST",
  message: "chat completion: the provider refused the request",
  retriable: false,
};
const failedState = { task_id: "t1", status: "FAILURE", error: storedError } as TaskState;

const thrown = new AppError("SOMETHING_ELSE", "the thrown error, not the recorded one");

/**
 * Processors that end as process-task.ts's do. "final": retryOrFail zeroes the job's retries and throws (the
 * thrown error is not what the store records: the store's is what a client sees); "retried": it throws and
 * leaves the retries; "rerun": the store refused to run a finished task again, so it returns nothing.
 */
const processors = {
  final: async (j: { options: object }) => {
    (j.options as { retries: number }).retries = 0;
    throw thrown;
  },
  retried: async () => {
    throw thrown;
  },
  rerun: async () => undefined,
};

/** withResultsOut over a real result publisher whose producer records each produce request (and fails them on demand). */
function failureHarness(options: {
  ends: keyof typeof processors;
  stored: TaskState | undefined;
  produceFails?: boolean;
}) {
  const sends: ProducerRecord[] = [];
  const unpublished: string[] = [];
  const republished: string[] = [];
  const bus = createEventBus();
  bus.on("ingest.results_unpublished", (e) => unpublished.push(`${e.task_id}:${e.status}`));
  bus.on("ingest.results_republished", (e) => republished.push(e.task_id));
  const logger = createLogger({ level: "silent" });
  const publisher = createResultPublisher({
    producer: {
      send: async (record) => {
        sends.push(record);
        if (options.produceFails) throw new Error("leader not available");
        return [];
      },
      disconnect: async () => {},
    },
    topic: "out",
    lingerMs: 0,
    bus,
    logger,
  });
  const processor = withResultsOut(processors[options.ends], {
    publisher,
    store: { get: async () => options.stored },
    bus,
    logger,
  });
  /** What the processor threw (undefined: it did not). */
  const run = async (j: BeeQueue.Job<TaskJob>, queue = "kafka_events") =>
    processor(j, queue).then(
      () => undefined,
      (error: unknown) => error,
    );
  const messages = () =>
    sends.flatMap((s) => s.messages).map((m) => ({ key: m.key, value: JSON.parse(String(m.value)) }));
  return { run, sends, messages, unpublished, republished };
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

describe("failures out", () => {
  test("a Kafka task's final failure is published with the error the store holds, keyed like its input, and the job still fails", async () => {
    const h = failureHarness({ ends: "final", stored: failedState });
    const failed = job("kafka", 3);
    expect(await h.run(failed)).toBe(thrown);
    expect(h.sends.map((s) => s.topic)).toEqual(["out"]);
    expect(h.messages()).toEqual([
      {
        key: "u",
        value: {
          task_id: "t1",
          status: "FAILURE",
          error: storedError,
          source: { topic: "in", partition: 0, offset: "7" },
        },
      },
    ]);
    // Final: Bee-Queue does not retry it.
    expect(failed.options.retries).toBe(0);
    expect(h.republished).toEqual([]);
  });

  test("a failed attempt that will be retried publishes nothing; the attempt that fails for good publishes once", async () => {
    const retried = failureHarness({ ends: "retried", stored: { task_id: "t1", status: "RETRY" } as TaskState });
    const failed = job("kafka", 2);
    expect(await retried.run(failed)).toBe(thrown);
    expect(retried.sends).toEqual([]);
    expect(failed.options.retries).toBe(2);

    const final = failureHarness({ ends: "final", stored: failedState });
    expect(await final.run(failed)).toBe(thrown);
    expect(final.messages().map((m) => m.value.status)).toEqual(["FAILURE"]);
  });

  test("of an API task's and a Kafka task's final failures, only the Kafka task's is published", async () => {
    const h = failureHarness({ ends: "final", stored: failedState });
    const api = { ...job("api", 3), data: { ...job("api").data, task_id: "api-task" } } as BeeQueue.Job<TaskJob>;
    expect(await h.run(api, "ai_processing")).toBe(thrown);
    expect(await h.run(job("kafka", 3))).toBe(thrown);
    expect(h.messages().map((m) => m.value.task_id)).toEqual(["t1"]);
  });

  test("a re-run of a task an earlier run failed publishes the stored failure, counted as a possible duplicate", async () => {
    const h = failureHarness({ ends: "rerun", stored: failedState });
    expect(await h.run(job("kafka"))).toBeUndefined();
    expect(h.messages().map((m) => [m.key, m.value.status, m.value.error])).toEqual([["u", "FAILURE", storedError]]);
    expect(h.republished).toEqual(["t1"]);
  });

  test("a final failure whose produce fails gets back the retries it had, so that a retry of the job publishes it", async () => {
    const h = failureHarness({ ends: "final", stored: failedState, produceFails: true });
    const failed = job("kafka", 3);
    expect(await h.run(failed)).toBe(thrown);
    expect(h.sends).toHaveLength(1);
    expect(failed.options.retries).toBe(3);
    expect(h.unpublished).toEqual([]);
  });

  test("a final failure whose produce fails with no retry left is counted as unpublished, never silently lost", async () => {
    const h = failureHarness({ ends: "final", stored: failedState, produceFails: true });
    const failed = job("kafka", 0);
    expect(await h.run(failed)).toBe(thrown);
    expect(failed.options.retries).toBe(0);
    expect(h.unpublished).toEqual(["t1:FAILURE"]);
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

const success = { status: "SUCCESS", result } as const;

describe("result producer", () => {
  test("a success message keeps its shape: task_id, event_id, status, result, source, in this order", async () => {
    const { producer, sends } = heldProducer();
    const publisher = publisherOf(producer, 1);
    const published = publisher.publish(
      { ...kafkaJob("t1", "u1"), event: { topic: "in", partition: 2, offset: "9", key: "u1", event_id: "e1" } },
      success,
    );
    sends[0]?.ack.resolve();
    await published;
    expect(String(sends[0]?.record.messages[0]?.value)).toBe(
      JSON.stringify({
        task_id: "t1",
        event_id: "e1",
        status: "SUCCESS",
        result,
        source: { topic: "in", partition: 2, offset: "9" },
      }),
    );
  });

  test("results within the linger window leave in one produce request, and publish resolves only once the broker acknowledges it", async () => {
    const { producer, sends } = heldProducer();
    const publisher = publisherOf(producer);
    const published = [
      publisher.publish(kafkaJob("t1", "u1"), success),
      publisher.publish(kafkaJob("t2", "u2"), success),
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
      publisher.publish(kafkaJob("t1", "u1"), success),
      publisher.publish(kafkaJob("t2", "u2"), success),
    ]);
    expect(sends).toHaveLength(2);
    sends[0]?.ack.reject(new Error("leader not available"));
    sends[1]?.ack.resolve();
    expect((await outcomes).map((o) => o.status)).toEqual(["rejected", "fulfilled"]);
  });

  test("close sends what waits at once and disconnects only after every produce has settled", async () => {
    const { producer, sends, disconnected } = heldProducer();
    const publisher = publisherOf(producer);
    const published = publisher.publish(kafkaJob("t1", "u1"), success);
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
