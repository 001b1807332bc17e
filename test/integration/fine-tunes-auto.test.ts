/**
 * Scheduled fine-tunes (FINETUNE_AUTO_INTERVAL_MS, issue 17 §6) against the
 * real Redis and the mock OpenAI server: a round starts a fine-tune for each
 * task type (and tenant) with FINETUNE_AUTO_NEW_EXAMPLES new positive
 * examples since its last one, none for the others; one process runs a round
 * (its lease); the next fine-tune waits for new examples.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { FINE_TUNE_DEFAULTS } from "../../src/api/fine-tunes";
import { AUTO_LEASE_KEY, startAutoFineTune } from "../../src/finetune/auto-fine-tune";
import { createFineTuneRecords } from "../../src/finetune/fine-tune-records";
import { createFineTuner, type FineTuner } from "../../src/finetune/fine-tuner";
import { createOpenAiFineTuning, FINE_TUNING_PROVIDERS } from "../../src/llm/fine-tuning";
import { parseModel } from "../../src/llm/model-routes";
import { DEFAULT_PROMPTS, promptFor } from "../../src/llm/prompts";
import { createLogger } from "../../src/log";
import { queuedJobs } from "../../src/queue/bee-queue-layout";
import { connectRedis, type RedisClient } from "../../src/redis/client";
import { createTaskStore, type TaskStore } from "../../src/store/task-store";
import { createTrainingExamples, type TrainingExamples } from "../../src/store/training-examples";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { isolatedRedisUrl } from "../helpers/app-process";
import { waitFor } from "../helpers/services";

const logger = createLogger({ level: "silent" });
let redis: RedisClient;
let mock: MockOpenAiServer;
let store: TaskStore;
let examples: TrainingExamples;
let tuner: FineTuner;

beforeAll(async () => {
  redis = await connectRedis(await isolatedRedisUrl(50));
  mock = createMockOpenAiServer({ fineTuning: { validatingMs: 20, queuedMs: 20, runningMs: 50 } });
  store = createTaskStore({ redis, resultTtlSeconds: 600, queued: queuedJobs(["default"]), keepInput: true });
  examples = createTrainingExamples({ redis, ttlSeconds: 3600 });
  tuner = createFineTuner({
    redis,
    records: createFineTuneRecords(redis),
    examples,
    client: createOpenAiFineTuning({ apiKey: "sk-test", baseUrl: mock.url }),
    parseModel: (model) => parseModel(model, "openai"),
    routedModel: () => "mock-model",
    fineTunable: FINE_TUNING_PROVIDERS,
    systemPromptOf: (taskType) => promptFor(DEFAULT_PROMPTS, taskType),
    logger,
    timings: { pollMinMs: 20, pollMaxMs: 50, leaseMs: 1000, scanIntervalMs: 100 },
  });
});

afterAll(async () => {
  await tuner.close();
  await redis.flushdb();
  await redis.quit();
  await mock.stop();
});

let counter = 0;
/** A task answered, then rated 5 by its client: what POST /task/:id/feedback writes. */
async function ratedWell(taskType: string, tenant?: string) {
  const taskId = `auto-${++counter}`;
  const text = `${taskType} text ${counter}`;
  await store.start(
    {
      task_id: taskId,
      text,
      task_type: taskType,
      use_cache: true,
      temperature: 0,
      max_tokens: 50,
      source: "api",
      accepted_at: Date.now(),
      ...(tenant ? { tenant } : {}),
    },
    "default",
  );
  const result = {
    response: `answer ${counter}`,
    task_type: taskType,
    model: "mock-model",
    processing_time: 0.01,
    from_cache: false,
    metadata: { tokens_used: 2, prompt_tokens: 1, completion_tokens: 1 },
  };
  await store.succeed(taskId, result, Date.now(), tenant, undefined, text);
  const state = await store.get(taskId);
  if (!state) throw new Error(`task ${taskId} has no record`);
  const at = Date.now();
  await store.recordFeedback(taskId, { rating: 5, at }, (tx) => examples.queueFeedback(tx, state, { rating: 5 }, at));
}

const scheduler = () =>
  startAutoFineTune({
    redis,
    tuner,
    records: createFineTuneRecords(redis),
    examples,
    // Rounds are run by hand below; the timer would run the first one a minute from now.
    intervalMs: 60_000,
    minNewExamples: 10,
    defaults: FINE_TUNE_DEFAULTS,
    logger,
  });

test("a round fine-tunes the scopes with enough new examples; one process runs it; the next waits for new ones", async () => {
  for (let n = 0; n < 12; n++) await ratedWell("summarization");
  for (let n = 0; n < 10; n++) await ratedWell("classification", "acme");
  for (let n = 0; n < 9; n++) await ratedWell("sentiment_analysis");

  const one = scheduler();
  const other = scheduler();
  try {
    const started = await one.runOnce();
    expect(await other.runOnce()).toEqual([]);
    expect(started).toHaveLength(2);
    const records = await Promise.all(started.map((id) => tuner.get(id)));
    expect(records.map((r) => `${r?.task_type}@${r?.tenant ?? ""}:${r?.origin}:${r?.created_by}`).sort()).toEqual([
      "classification@acme:auto:scheduler",
      "summarization@:auto:scheduler",
    ]);
    for (const id of started) {
      await waitFor(async () => (await tuner.get(id))?.status === "succeeded", `fine-tune ${id} to succeed`);
    }

    // The next interval: nothing new, nothing started.
    await redis.del(AUTO_LEASE_KEY);
    expect(await one.runOnce()).toEqual([]);

    for (let n = 0; n < 10; n++) await ratedWell("summarization");
    await redis.del(AUTO_LEASE_KEY);
    const next = await one.runOnce();
    expect(next).toHaveLength(1);
    // It learns from every example of the scope, not only the new ones.
    expect((await tuner.get(next[0] as string))?.counts.examples).toBe(22);
  } finally {
    one.stop();
    other.stop();
  }
});
