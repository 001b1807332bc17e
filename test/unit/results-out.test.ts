import { describe, expect, test } from "bun:test";
import type BeeQueue from "bee-queue";
import { createEventBus } from "../../src/events";
import { withResultsOut } from "../../src/ingest/publish-kafka-results";
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
