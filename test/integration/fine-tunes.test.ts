/**
 * The feedback → fine-tuning loop (issue 17 §6) against the real Redis and
 * the project's mock OpenAI server through the real `openai` SDK: feedback
 * through POST /task/:id/feedback indexes the positively rated results, POST
 * /fine-tunes uploads them in OpenAI's chat JSONL with the system prompt and
 * a validation split (never an example with negative feedback), the job is
 * followed to its end, and the fine-tuned model is registered as a variant.
 * A failed job ends failed with the provider's reason; a follower that stops
 * (or never recorded its job) is taken over by another process without a
 * second job. The routes run in process (app.handle); the tasks' records are
 * written by the real task store, as a worker writes them.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import OpenAI from "openai";
import { errorHandler } from "../../src/api/error-responses";
import { feedbackRoutes } from "../../src/api/feedback";
import { FINE_TUNE_DEFAULTS, type FineTuneView, fineTuneRoutes } from "../../src/api/fine-tunes";
import { createEventBus } from "../../src/events";
import { createFineTuneRecords } from "../../src/finetune/fine-tune-records";
import {
  createFineTuner,
  type FineTuner,
  JOB_METADATA_KEY,
  type VariantRegistrar,
} from "../../src/finetune/fine-tuner";
import { createOpenAiFineTuning, FINE_TUNING_PROVIDERS } from "../../src/llm/fine-tuning";
import { parseModel } from "../../src/llm/model-routes";
import { DEFAULT_PROMPTS, promptFor } from "../../src/llm/prompts";
import { createLogger } from "../../src/log";
import { queuedJobs } from "../../src/queue/bee-queue-layout";
import { connectRedis, type RedisClient } from "../../src/redis/client";
import { createTaskStore, type TaskStore } from "../../src/store/task-store";
import { createTrainingExamples } from "../../src/store/training-examples";
import type { TaskJob } from "../../src/task/contract";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { isolatedRedisUrl } from "../helpers/app-process";
import { json, waitFor } from "../helpers/services";

const logger = createLogger({ level: "silent" });
const TASK_TYPE = "question_answering";
const SYSTEM = promptFor(DEFAULT_PROMPTS, TASK_TYPE);

let redis: RedisClient;
let mock: MockOpenAiServer;
let store: TaskStore;
/** The same store, keeping no text (RESULT_KEEP_INPUT=false). */
let textless: TaskStore;
const tuners: FineTuner[] = [];
const registered: Parameters<VariantRegistrar["register"]>[0][] = [];
const registrar: VariantRegistrar = {
  async register(input) {
    registered.push(input);
    return { experiment_id: input.experimentId ?? "exp-1", variant: `ft-${registered.length}` };
  },
};

function tuner(
  options: {
    leaseMs?: number;
    withRegistrar?: boolean;
    noProvider?: boolean;
    routed?: string;
    maxExamples?: number;
  } = {},
) {
  const created = createFineTuner({
    redis,
    records: createFineTuneRecords(redis),
    examples: createTrainingExamples({ redis, ttlSeconds: 3600 }),
    ...(options.maxExamples === undefined ? {} : { maxExamples: options.maxExamples }),
    client: options.noProvider ? undefined : createOpenAiFineTuning({ apiKey: "sk-test", baseUrl: mock.url }),
    parseModel: (model) => parseModel(model, "openai"),
    routedModel: () => options.routed ?? "mock-model",
    fineTunable: FINE_TUNING_PROVIDERS,
    systemPromptOf: (taskType) => promptFor(DEFAULT_PROMPTS, taskType),
    ...(options.withRegistrar === false ? {} : { registrar }),
    logger,
    timings: { pollMinMs: 20, pollMaxMs: 100, leaseMs: options.leaseMs ?? 1000, scanIntervalMs: 100 },
  });
  tuners.push(created);
  return created;
}

function appOf(fineTuner: FineTuner) {
  return new Elysia()
    .use(errorHandler(logger))
    .use(
      feedbackRoutes({
        store,
        cache: { remove: async () => false },
        bus: createEventBus(),
        logger,
        tenantOf: (request) => request.headers.get("x-tenant") ?? undefined,
        examples: createTrainingExamples({ redis, ttlSeconds: 3600 }),
      }),
    )
    .use(
      fineTuneRoutes({
        tuner: fineTuner,
        taskTypes: new Set(Object.keys(DEFAULT_PROMPTS)),
        logger,
        actorOf: () => "ops",
      }),
    );
}
type App = ReturnType<typeof appOf>;

const post = (app: App, path: string, body: unknown, headers: Record<string, string> = {}) =>
  app.handle(
    new Request(`http://local${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    }),
  );
const get = (app: App, path: string) => app.handle(new Request(`http://local${path}`));

let taskCounter = 0;
/** A task answered and recorded as a worker records it: its text kept unless `keep` is false. */
async function answered(text: string, options: { tenant?: string; keep?: boolean; taskType?: string } = {}) {
  const taskId = `ft-task-${++taskCounter}-${Date.now()}`;
  const job: TaskJob = {
    task_id: taskId,
    text,
    task_type: options.taskType ?? TASK_TYPE,
    use_cache: true,
    temperature: 0.2,
    max_tokens: 100,
    source: "api",
    accepted_at: Date.now(),
    ...(options.tenant ? { tenant: options.tenant } : {}),
  };
  const target = options.keep === false ? textless : store;
  await target.start(job, "default");
  await target.succeed(
    taskId,
    {
      response: `the answer to: ${text}`,
      task_type: job.task_type,
      model: "mock-model",
      processing_time: 0.01,
      from_cache: false,
      metadata: { tokens_used: 10, prompt_tokens: 6, completion_tokens: 4 },
    },
    Date.now(),
    options.tenant,
    undefined,
    text,
  );
  return taskId;
}

async function rate(app: App, taskId: string, feedback: unknown, tenant?: string) {
  const response = await post(app, `/task/${taskId}/feedback`, feedback, tenant ? { "x-tenant": tenant } : {});
  expect(response.status).toBe(200);
}

async function ended(app: App, id: string, timeoutMs = 15_000): Promise<FineTuneView> {
  return waitFor(
    async () => {
      const view = await json<FineTuneView>(await get(app, `/fine-tunes/${id}`));
      return ["succeeded", "failed", "cancelled"].includes(view.status) ? view : undefined;
    },
    `fine-tune ${id} to end`,
    timeoutMs,
  );
}

const fileOf = (id: string | undefined) => mock.fineTuning.files().find((file) => file.id === id);
type Line = { messages: { role: string; content: string }[] };
const linesOf = (content: string | undefined) =>
  (content ?? "")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Line);

beforeAll(async () => {
  redis = await connectRedis(await isolatedRedisUrl(48));
  mock = createMockOpenAiServer({ fineTuning: { validatingMs: 30, queuedMs: 30, runningMs: 150 } });
  const queued = queuedJobs(["default"]);
  store = createTaskStore({ redis, resultTtlSeconds: 600, queued, keepInput: true });
  textless = createTaskStore({ redis, resultTtlSeconds: 600, queued, keepInput: false });
});

beforeEach(async () => {
  await Promise.all(tuners.splice(0).map((t) => t.close()));
  await redis.flushdb();
  mock.reset();
  mock.fineTuning.setTimings({ validatingMs: 30, queuedMs: 30, runningMs: 150 });
  registered.length = 0;
});

afterAll(async () => {
  await Promise.all(tuners.map((t) => t.close()));
  await redis.flushdb();
  await redis.quit();
  await mock.stop();
});

describe("POST /fine-tunes end to end", () => {
  test("trains on positively rated results only, with the system prompt and a validation split, and registers the model", async () => {
    const app = appOf(tuner());
    const positive: string[] = [];
    for (let n = 0; n < 14; n++) {
      const text = `good question ${n}`;
      positive.push(text);
      await rate(app, await answered(text), n % 2 === 0 ? { rating: 5 } : { correct: true });
    }
    const negative = ["bad answer one", "bad answer two", "bad answer three", "lukewarm answer", "changed mind"];
    await rate(app, await answered(negative[0] as string), { rating: 1 });
    await rate(app, await answered(negative[1] as string), { correct: false });
    await rate(app, await answered(negative[2] as string), { correct: false, rating: 5 });
    await rate(app, await answered(negative[3] as string), { correct: true, rating: 3 });
    const changed = await answered(negative[4] as string);
    await rate(app, changed, { rating: 5 });
    await rate(app, changed, { rating: 2 });
    await rate(app, await answered("kept no text", { keep: false }), { rating: 5 });
    await rate(app, await answered("another tenant's question", { tenant: "acme" }), { rating: 5 }, "acme");
    await rate(app, await answered("another task type", { taskType: "summarization" }), { rating: 5 });

    const started = await post(app, "/fine-tunes", { task_type: TASK_TYPE, validation_fraction: 0.2, suffix: "qa" });
    expect(started.status).toBe(202);
    const record = await json<FineTuneView>(started);
    expect(record).toMatchObject({
      status: "preparing",
      task_type: TASK_TYPE,
      base_model: "openai/mock-model",
      origin: "api",
      created_by: "ops",
      weight: FINE_TUNE_DEFAULTS.weight,
      counts: {
        examples: 14,
        training: 11,
        validation: 3,
        skipped: 1,
        skipped_by_reason: { gone: 0, no_text: 1, not_positive: 0, empty: 0, duplicate: 0 },
      },
    });

    const done = await ended(app, record.id);
    expect(done.status).toBe("succeeded");
    expect(done.provider_status).toBe("succeeded");
    const job = mock.fineTuning.jobs().find((j) => j.id === done.provider_job_id) as Record<string, unknown>;
    expect(job).toMatchObject({ model: "mock-model", suffix: "qa", metadata: { [JOB_METADATA_KEY]: record.id } });
    expect(done.fine_tuned_model).toBe(job.fine_tuned_model as string);
    expect(done.fine_tuned_model).toStartWith("ft:mock-model:aies:qa:");
    expect(done.trained_tokens).toBeGreaterThan(0);

    const training = linesOf(fileOf(done.files?.training)?.content);
    const validation = linesOf(fileOf(done.files?.validation)?.content);
    expect(training).toHaveLength(11);
    expect(validation).toHaveLength(3);
    for (const line of [...training, ...validation]) {
      expect(line.messages.map((m) => m.role)).toEqual(["system", "user", "assistant"]);
      expect(line.messages[0]?.content).toBe(SYSTEM);
      expect(line.messages[2]?.content).toBe(`the answer to: ${line.messages[1]?.content}`);
    }
    const asked = [...training, ...validation].map((line) => line.messages[1]?.content).sort();
    expect(asked).toEqual([...positive].sort());
    const everything = `${fileOf(done.files?.training)?.content}${fileOf(done.files?.validation)?.content}`;
    for (const text of [...negative, "kept no text", "another tenant's question", "another task type"])
      expect(everything).not.toContain(text);

    expect(registered).toEqual([
      { taskType: TASK_TYPE, model: `openai/${done.fine_tuned_model}`, weight: 0.1, fineTuneId: record.id },
    ]);
    expect(done.variant).toEqual({ experiment_id: "exp-1", variant: "ft-1" });
    expect(done.error).toBeUndefined();

    // The model it registered answers through the real SDK (the route the variant takes).
    const client = new OpenAI({ apiKey: "sk-test", baseURL: mock.url, maxRetries: 0 });
    const answer = await client.chat.completions.create({
      model: done.fine_tuned_model as string,
      messages: [{ role: "user", content: "hello" }],
    });
    expect(answer.model).toBe(done.fine_tuned_model as string);

    const listed = await json<{ fine_tunes: FineTuneView[] }>(await get(app, "/fine-tunes"));
    expect(listed.fine_tunes.map((f) => f.id)).toEqual([record.id]);
  });

  test("a tenant's fine-tune learns from that tenant's tasks only, into the experiment named", async () => {
    const app = appOf(tuner());
    for (let n = 0; n < 10; n++)
      await rate(app, await answered(`acme question ${n}`, { tenant: "acme" }), { rating: 4 }, "acme");
    for (let n = 0; n < 10; n++) await rate(app, await answered(`shared question ${n}`), { rating: 5 });
    const started = await post(app, "/fine-tunes", {
      task_type: TASK_TYPE,
      tenant: "acme",
      experiment_id: "exp-acme",
      weight: 0.05,
    });
    expect(started.status).toBe(202);
    const done = await ended(app, (await json<FineTuneView>(started)).id);
    expect(done).toMatchObject({ status: "succeeded", tenant: "acme", counts: { training: 10, validation: 0 } });
    expect(fileOf(done.files?.training)?.content).not.toContain("shared question");
    expect(registered[0]).toMatchObject({ experimentId: "exp-acme", weight: 0.05 });
  });

  test("FINETUNE_MAX_EXAMPLES: the training file has the newest examples only, the older are left out", async () => {
    const app = appOf(tuner({ maxExamples: 12 }));
    for (let n = 0; n < 15; n++) {
      const id = await answered(`numbered question ${n}`);
      await rate(app, id, { rating: 5 });
      await Bun.sleep(2); // distinct feedback times: the index orders by them
    }
    const started = await post(app, "/fine-tunes", { task_type: TASK_TYPE, validation_fraction: 0 });
    expect(started.status).toBe(202);
    const record = await json<FineTuneView>(started);
    expect(record.counts).toMatchObject({ examples: 12, training: 12 });
    const done = await ended(app, record.id);
    expect(done.status).toBe("succeeded");
    const asked = new Set(linesOf(fileOf(done.files?.training)?.content).map((line) => line.messages[1]?.content));
    expect(asked.size).toBe(12);
    for (let n = 0; n < 3; n++) expect(asked.has(`numbered question ${n}`)).toBe(false);
    for (let n = 3; n < 15; n++) expect(asked.has(`numbered question ${n}`)).toBe(true);
  });

  test("examples outlive their task's record; one whose copy expired is left out and counted", async () => {
    const app = appOf(tuner());
    const ids: string[] = [];
    for (let n = 0; n < 12; n++) {
      const id = await answered(`lasting question ${n}`);
      await rate(app, id, { rating: 5 });
      ids.push(id);
    }
    // RESULT_TTL_SECONDS passed for every task; FINETUNE_EXAMPLE_TTL_DAYS for one example's copy.
    await redis.del(...ids.map((id) => `result:${id}`));
    await redis.del(`finetune:example:${ids[0]}`);
    const started = await post(app, "/fine-tunes", { task_type: TASK_TYPE, validation_fraction: 0 });
    expect(started.status).toBe(202);
    const record = await json<FineTuneView>(started);
    expect(record.counts).toMatchObject({ examples: 11, training: 11, skipped: 1, skipped_by_reason: { gone: 1 } });
    const done = await ended(app, record.id);
    expect(done.status).toBe("succeeded");
    const asked = linesOf(fileOf(done.files?.training)?.content).map((line) => line.messages[1]?.content);
    expect(asked).not.toContain("lasting question 0");
    expect(asked).toContain("lasting question 11");
  });

  test("a failing job ends failed with the provider's reason, and registers nothing", async () => {
    const app = appOf(tuner());
    for (let n = 0; n < 10; n++) await rate(app, await answered(`question ${n}`), { rating: 5 });
    mock.setFault({ kind: "job_failed", endpoint: "fine_tuning", textIncludes: "doomed", message: "GPU on fire" });
    const started = await post(app, "/fine-tunes", { task_type: TASK_TYPE, suffix: "doomed" });
    const done = await ended(app, (await json<FineTuneView>(started)).id);
    expect(done).toMatchObject({
      status: "failed",
      provider_status: "failed",
      error: { code: "server_error", message: "GPU on fire" },
    });
    expect(done.finished_at).toBeString();
    expect(registered).toEqual([]);
    // The scope is free again: the next fine-tune may start.
    expect((await post(app, "/fine-tunes", { task_type: TASK_TYPE })).status).toBe(202);
  });

  test("a provider that refuses the job's request (4xx) ends the fine-tune failed with its words", async () => {
    const app = appOf(tuner());
    for (let n = 0; n < 10; n++) await rate(app, await answered(`question ${n}`), { rating: 5 });
    mock.setFault({ kind: "400", endpoint: "fine_tuning", times: 1 });
    const done = await ended(
      app,
      (await json<FineTuneView>(await post(app, "/fine-tunes", { task_type: TASK_TYPE }))).id,
    );
    expect(done.status).toBe("failed");
    expect(done.error?.code).toBe("LLM_BAD_REQUEST");
    expect(done.error?.message).toContain("400");
  });

  test("a 500 while uploading is retried until the provider answers", async () => {
    const app = appOf(tuner());
    for (let n = 0; n < 10; n++) await rate(app, await answered(`question ${n}`), { rating: 5 });
    mock.setFault({ kind: "500", endpoint: "files", times: 2 });
    const done = await ended(
      app,
      (await json<FineTuneView>(await post(app, "/fine-tunes", { task_type: TASK_TYPE }))).id,
    );
    expect(done.status).toBe("succeeded");
    expect(mock.counters().faults_served).toBe(2);
  });

  test("a job cancelled through POST /fine-tunes/:id/cancel ends cancelled", async () => {
    mock.fineTuning.setTimings({ runningMs: 60_000 });
    const app = appOf(tuner());
    for (let n = 0; n < 10; n++) await rate(app, await answered(`question ${n}`), { rating: 5 });
    const { id } = await json<FineTuneView>(await post(app, "/fine-tunes", { task_type: TASK_TYPE }));
    await waitFor(
      async () => (await json<FineTuneView>(await get(app, `/fine-tunes/${id}`))).provider_job_id,
      "the job",
    );
    expect((await post(app, `/fine-tunes/${id}/cancel`, {})).status).toBe(202);
    expect((await ended(app, id)).status).toBe("cancelled");
    expect((await post(app, `/fine-tunes/${id}/cancel`, {})).status).toBe(409);
    expect((await post(app, "/fine-tunes/ft-00000000-0000-7000-8000-000000000000/cancel", {})).status).toBe(404);
  });
});

describe("POST /fine-tunes refusals", () => {
  test("fewer usable examples than min_examples: 409 with the counts, and nothing uploaded", async () => {
    const app = appOf(tuner());
    for (let n = 0; n < 12; n++) await rate(app, await answered(`question ${n}`), { rating: 5 });
    const refused = await post(app, "/fine-tunes", { task_type: TASK_TYPE, min_examples: 20 });
    expect(refused.status).toBe(409);
    const body = await json<{ error: { code: string; message: string; details: { counts: { examples: number } } } }>(
      refused,
    );
    expect(body.error.code).toBe("FINETUNE_TOO_FEW_EXAMPLES");
    expect(body.error.message).toContain("12 usable positively rated examples; min_examples is 20");
    expect(body.error.details.counts.examples).toBe(12);
    const none = await post(app, "/fine-tunes", { task_type: "summarization" });
    expect(none.status).toBe(409);
    expect(mock.fineTuning.files()).toEqual([]);
    expect((await json<{ fine_tunes: unknown[] }>(await get(app, "/fine-tunes"))).fine_tunes).toEqual([]);
  });

  test("a base model without a fine-tuning API, or an unknown task type, is 422", async () => {
    const app = appOf(tuner());
    for (const model of ["anthropic/claude-3-5-haiku-latest", "cohere/command-r", "simulated/any"]) {
      const refused = await post(app, "/fine-tunes", { task_type: TASK_TYPE, base_model: model });
      expect(refused.status).toBe(422);
      expect((await json<{ error: { code: string } }>(refused)).error.code).toBe("FINETUNE_PROVIDER_UNSUPPORTED");
    }
    const unknown = await post(app, "/fine-tunes", { task_type: "no_such_type" });
    expect(unknown.status).toBe(422);
    expect((await post(app, "/fine-tunes", { task_type: TASK_TYPE, weight: 0 })).status).toBe(422);
    expect((await post(app, "/fine-tunes", { task_type: TASK_TYPE, min_examples: 5 })).status).toBe(422);
    expect((await get(app, "/fine-tunes/ft-00000000-0000-7000-8000-000000000000")).status).toBe(404);
  });

  test("a deployment that cannot fine-tune, or a task type routed to a provider that cannot: 409 FINETUNE_UNAVAILABLE", async () => {
    const codeOf = async (response: Response) => [
      response.status,
      (await json<{ error: { code: string } }>(response)).error.code,
    ];
    const none = appOf(tuner({ noProvider: true }));
    expect(await codeOf(await post(none, "/fine-tunes", { task_type: TASK_TYPE }))).toEqual([
      409,
      "FINETUNE_UNAVAILABLE",
    ]);
    const routed = appOf(tuner({ routed: "anthropic/claude-3-5-haiku-latest" }));
    const refused = await post(routed, "/fine-tunes", { task_type: TASK_TYPE });
    expect(await codeOf(refused.clone())).toEqual([409, "FINETUNE_UNAVAILABLE"]);
    expect((await json<{ error: { message: string } }>(refused)).error.message).toContain("name a base_model");
    expect(mock.fineTuning.files()).toEqual([]);
  });

  test("one fine-tune per task type at a time: a second is 409 FINETUNE_IN_PROGRESS", async () => {
    mock.fineTuning.setTimings({ runningMs: 60_000 });
    const app = appOf(tuner());
    for (let n = 0; n < 10; n++) await rate(app, await answered(`question ${n}`), { rating: 5 });
    const first = await json<FineTuneView>(await post(app, "/fine-tunes", { task_type: TASK_TYPE }));
    const second = await post(app, "/fine-tunes", { task_type: TASK_TYPE });
    expect(second.status).toBe(409);
    const body = await json<{ error: { code: string; details: { fine_tune_id: string } } }>(second);
    expect(body.error).toMatchObject({ code: "FINETUNE_IN_PROGRESS", details: { fine_tune_id: first.id } });
  });
});

describe("following survives its process", () => {
  test("a follower that stops is taken over by another process, which sees the job to its end", async () => {
    mock.fineTuning.setTimings({ runningMs: 1500 });
    const first = tuner();
    const app = appOf(first);
    for (let n = 0; n < 10; n++) await rate(app, await answered(`question ${n}`), { rating: 5 });
    const { id } = await json<FineTuneView>(await post(app, "/fine-tunes", { task_type: TASK_TYPE }));
    await waitFor(
      async () => (await json<FineTuneView>(await get(app, `/fine-tunes/${id}`))).provider_status === "running",
      "the job to run",
    );
    await first.close();
    expect(registered).toEqual([]);
    const second = tuner();
    second.resume();
    const done = await ended(appOf(second), id);
    expect(done.status).toBe("succeeded");
    expect(registered.map((r) => r.fineTuneId)).toEqual([id]);
    expect(mock.fineTuning.jobs()).toHaveLength(1);
  });

  test("a fine-tune whose files were uploaded but whose job was never created uses those files, uploading none again", async () => {
    const app = appOf(tuner());
    for (let n = 0; n < 11; n++) await rate(app, await answered(`question ${n}`), { rating: 5 });
    const id = "ft-0190b0c4-0000-7000-8000-00000000f11e";
    const client = createOpenAiFineTuning({ apiKey: "sk-test", baseUrl: mock.url });
    const file = await client.uploadFile("uploaded-before-the-crash.jsonl", fileLines(10));
    await leftPreparing(id, { training: file.id });
    const resumed = tuner();
    resumed.resume();
    const done = await ended(appOf(resumed), id);
    expect(done).toMatchObject({ status: "succeeded", files: { training: file.id } });
    // The one upload is the test's own (the job's result file aside): nothing was uploaded again.
    expect(mock.fineTuning.files().filter((f) => f.purpose === "fine-tune")).toHaveLength(1);
    expect(mock.fineTuning.jobs()).toHaveLength(1);
  });

  test("a fine-tune whose job was created but never recorded is found by its id, not created twice", async () => {
    const first = tuner();
    const app = appOf(first);
    for (let n = 0; n < 10; n++) await rate(app, await answered(`question ${n}`), { rating: 5 });
    // A process that died between creating the job and recording it: the job exists, the record says preparing.
    const id = "ft-0190b0c4-0000-7000-8000-00000000abcd";
    await leftPreparing(id);
    const client = createOpenAiFineTuning({ apiKey: "sk-test", baseUrl: mock.url });
    const file = await client.uploadFile("orphan.jsonl", fileLines(10));
    const orphan = await client.createJob({
      model: "mock-model",
      trainingFile: file.id,
      metadata: { [JOB_METADATA_KEY]: id },
    });
    first.resume();
    const done = await ended(app, id);
    expect(done).toMatchObject({ status: "succeeded", provider_job_id: orphan.id });
    expect(mock.fineTuning.jobs()).toHaveLength(1);
  });

  test("a fine-tune left preparing with no job is prepared again from its examples", async () => {
    const app = appOf(tuner());
    for (let n = 0; n < 11; n++) await rate(app, await answered(`question ${n}`), { rating: 5 });
    const id = "ft-0190b0c4-0000-7000-8000-00000000beef";
    await leftPreparing(id);
    const resumed = tuner();
    resumed.resume();
    const done = await ended(appOf(resumed), id);
    expect(done).toMatchObject({ status: "succeeded", counts: { examples: 11, training: 10, validation: 1 } });
    expect(linesOf(fileOf(done.files?.training)?.content)).toHaveLength(10);
  });
});

/** The record a process leaves when it dies while preparing a fine-tune: no job recorded. */
async function leftPreparing(id: string, files?: { training: string }): Promise<void> {
  const now = Date.now();
  const created = await createFineTuneRecords(redis).create({
    id,
    ...(files ? { files } : {}),
    status: "preparing",
    task_type: TASK_TYPE,
    base_model: "openai/mock-model",
    provider: "openai",
    provider_model: "mock-model",
    validation_fraction: 0.1,
    min_examples: 10,
    weight: 0.1,
    origin: "api",
    created_by: "ops",
    created_at: now,
    updated_at: now,
    counts: {
      examples: 0,
      training: 0,
      validation: 0,
      skipped: 0,
      skipped_by_reason: { gone: 0, no_text: 0, not_positive: 0, empty: 0, duplicate: 0 },
    },
  });
  expect(created).toEqual({ created: true });
}

function fileLines(count: number): string {
  return `${Array.from({ length: count }, (_, n) =>
    JSON.stringify({
      messages: [
        { role: "user", content: `q${n}` },
        { role: "assistant", content: `a${n}` },
      ],
    }),
  ).join("\n")}\n`;
}
