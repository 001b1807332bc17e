/**
 * A task's steps and its retry-or-fail decision, in process: the simulated
 * provider (real latency, a signal that really aborts it), a rate limiter that
 * makes the task wait, and a store that records what the processor told it.
 * The paths with real processes (kill -9, poison jobs, provider faults over
 * HTTP) are in test/fault and test/integration.
 * Past ~300 lines on purpose: every step, retry-or-fail rule and stream relay of
 * process-task.ts on one stub harness (build()) that a split would copy.
 */
import { describe, expect, test } from "bun:test";
import type { Resolution, SemanticCache } from "../../src/cache/semantic-cache";
import { AppError } from "../../src/errors";
import { createEventBus, type EventMap } from "../../src/events";
import { DEFAULT_PROMPTS, promptFor } from "../../src/llm/prompts";
import { LlmError, type LlmProvider } from "../../src/llm/provider";
import { type RateLimiter, UNLIMITED } from "../../src/llm/rate-limiter";
import { createSimulatedProvider } from "../../src/llm/simulated-provider";
import { createLogger } from "../../src/log";
import { createTaskProcessor, resultOf, type TaskJobOptions } from "../../src/pipeline/process-task";
import type { TaskStore } from "../../src/store/task-store";
import type { TokenLog } from "../../src/store/task-tokens";
import type { TaskError, TaskJob, TaskResult, TaskStatus } from "../../src/task/contract";

const job = (extra: Partial<TaskJob> = {}): TaskJob => ({
  task_id: `t-${crypto.randomUUID()}`,
  text: "The delivery was fast and the product works well",
  task_type: "sentiment_analysis",
  use_cache: true,
  temperature: 0.2,
  max_tokens: 200,
  source: "api",
  accepted_at: Date.now(),
  ...extra,
});

/** A store that answers start() as told and records every outcome. */
function recordingStore(start: { status: "STARTED"; attempt: number } | { status: TaskStatus }) {
  const outcomes: { kind: "succeed" | "retry" | "fail"; result?: TaskResult; error?: TaskError }[] = [];
  const store: TaskStore = {
    start: async () => start,
    succeed: async (_id, result) => void outcomes.push({ kind: "succeed", result }),
    retry: async (_id, error) => void outcomes.push({ kind: "retry", error }),
    fail: async (_id, error) => void outcomes.push({ kind: "fail", error }),
    get: async () => undefined,
    recordFeedback: async () => undefined,
    cancel: async () => false,
  };
  return { store, outcomes };
}

function build(
  options: {
    provider?: LlmProvider;
    limiter?: RateLimiter;
    attempt?: number;
    status?: TaskStatus;
    maxAttempts?: number;
    jobTimeoutMs?: number;
    cache?: SemanticCache;
    tokens?: TokenLog;
    /** Replaces some of the recording store's calls (which still record when they are not replaced). */
    store?: (recording: TaskStore) => Partial<TaskStore>;
  } = {},
) {
  const recording = recordingStore(
    options.status ? { status: options.status } : { status: "STARTED", attempt: options.attempt ?? 1 },
  );
  const { outcomes } = recording;
  const store: TaskStore = { ...recording.store, ...options.store?.(recording.store) };
  const bus = createEventBus();
  const llmCalls: EventMap["llm.call"][] = [];
  bus.on("llm.call", (call) => llmCalls.push(call));
  const process = createTaskProcessor({
    provider: options.provider ?? createSimulatedProvider({ embeddingDim: 8 }),
    systemPrompt: (taskType) => promptFor(DEFAULT_PROMPTS, taskType),
    limiter: options.limiter ?? UNLIMITED,
    store,
    bus,
    logger: createLogger({ level: "silent" }),
    jobTimeoutMs: options.jobTimeoutMs ?? 5_000,
    defaultModel: "default-model",
    ...(options.cache ? { cache: options.cache } : {}),
    ...(options.tokens ? { tokens: options.tokens } : {}),
    maxAttempts: options.maxAttempts ?? 0,
    recordRetryDelaysMs: [5, 10],
  });
  const run = (data: TaskJob, retries = 3) => {
    const queued = { data, options: { retries } as TaskJobOptions };
    return { queued, done: process(queued, "ai_processing") };
  };
  return { run, outcomes, llmCalls };
}

/** A provider whose every call fails with the given error. */
const failing = (error: unknown): LlmProvider => ({
  ...createSimulatedProvider({ embeddingDim: 8 }),
  chat: async () => {
    throw error;
  },
});

describe("a task's steps", () => {
  test("a task an earlier run already finished is not run again: no LLM call, nothing recorded", async () => {
    const { run, outcomes, llmCalls } = build({ status: "SUCCESS" });
    expect(await run(job()).done).toBeUndefined();
    expect(outcomes).toEqual([]);
    expect(llmCalls).toEqual([]);
  });

  test("past maxAttempts starts the task fails for good with TOO_MANY_ATTEMPTS, without asking the LLM", async () => {
    const { run, outcomes, llmCalls } = build({ attempt: 8, maxAttempts: 7 });
    const { queued, done } = run(job());
    await expect(done).rejects.toMatchObject({ code: "TOO_MANY_ATTEMPTS" });
    expect(queued.options.retries).toBe(0);
    expect(outcomes).toEqual([{ kind: "fail", error: expect.objectContaining({ code: "TOO_MANY_ATTEMPTS" }) }]);
    expect(llmCalls).toEqual([]);
  });

  test("a fresh answer is recorded as the result, with its tokens and no cache fields", async () => {
    const { run, outcomes } = build();
    const result = await run(job()).done;
    expect(result).toMatchObject({ from_cache: false, model: "simulated", task_type: "sentiment_analysis" });
    expect(result?.response).toStartWith("positive");
    expect(result?.metadata.tokens_used).toBeGreaterThan(0);
    expect(result).not.toContainAnyKeys(["cache_tier", "cache_id", "similarity"]);
    expect(outcomes).toEqual([{ kind: "succeed", result }]);
  });

  test("a cache hit and a fresh answer are built into results of one shape; similarity is rounded to 4 places", () => {
    const answer = {
      text: "positive",
      model: "m",
      finishReason: "stop",
      usage: { promptTokens: 3, completionTokens: 2, totalTokens: 5 },
      provider: "anthropic",
      fallback: false,
      costUsd: 0.0000104,
    };
    const fresh: Resolution = { fromCache: false, answer, storedId: "abc:sentiment_analysis" };
    const hit: Resolution = {
      fromCache: true,
      hit: {
        tier: "semantic",
        id: "def:sentiment_analysis",
        similarity: 0.934567,
        answer: {
          query: "q",
          response: "positive",
          model: "m",
          metadata: { tokens_used: 5, prompt_tokens: 3, completion_tokens: 2, created_at: 1, provider: "anthropic" },
        },
      },
    };
    const task = job();
    const common = {
      response: "positive",
      task_type: task.task_type,
      model: "m",
      processing_time: 0.25,
      metadata: { tokens_used: 5, prompt_tokens: 3, completion_tokens: 2 },
    };
    const metadata = { ...common.metadata, provider: "anthropic" };
    expect(resultOf(task, fresh, 250)).toEqual({
      ...common,
      metadata: { ...metadata, fallback: false, cost_usd: 0.0000104 },
      from_cache: false,
      cache_id: "abc:sentiment_analysis",
    });
    // A hit cost nothing now; it keeps the provider that wrote the answer.
    expect(resultOf(task, hit, 250)).toEqual({
      ...common,
      metadata: { ...metadata, cost_usd: 0 },
      from_cache: true,
      similarity: 0.9346,
      cache_tier: "semantic",
      cache_id: "def:sentiment_analysis",
    });
  });
});

describe("retry or fail", () => {
  test("a retriable error with retries left is a retry, and hands the provider's Retry-After to the queue", async () => {
    const { run, outcomes } = build({
      provider: failing(new LlmError("LLM_RATE_LIMITED", "429", { retriable: true, retryAfterMs: 1500 })),
    });
    const { queued, done } = run(job(), 2);
    await expect(done).rejects.toMatchObject({ code: "LLM_RATE_LIMITED" });
    expect(queued.options).toEqual({ retries: 2, retryAfterMs: 1500 });
    expect(outcomes.map((o) => [o.kind, o.error?.code])).toEqual([["retry", "LLM_RATE_LIMITED"]]);
  });

  test("a retriable error with no retries left fails", async () => {
    const { run, outcomes } = build({ provider: failing(new LlmError("LLM_UNAVAILABLE", "503", { retriable: true })) });
    await expect(run(job(), 0).done).rejects.toThrow("503");
    expect(outcomes.map((o) => [o.kind, o.error?.code])).toEqual([["fail", "LLM_UNAVAILABLE"]]);
  });

  test("a non-retriable error and a TypeError (a bug) fail at once, retries left or not", async () => {
    for (const error of [
      new LlmError("LLM_BAD_REQUEST", "400", { retriable: false }),
      new TypeError("x is undefined"),
    ]) {
      const { run, outcomes } = build({ provider: failing(error) });
      const { queued, done } = run(job(), 3);
      await expect(done).rejects.toBe(error);
      expect(queued.options.retries).toBe(0);
      expect(outcomes).toEqual([{ kind: "fail", error: expect.objectContaining({ retriable: false }) }]);
    }
  });

  test("an unknown task type fails at once, before any LLM call", async () => {
    const { run, outcomes, llmCalls } = build();
    await expect(run(job({ task_type: "no_such_type" })).done).rejects.toThrow("task_type");
    expect(outcomes.map((o) => o.kind)).toEqual(["fail"]);
    expect(llmCalls).toEqual([]);
  });
});

/** What ioredis throws when Redis stays away longer than maxRetriesPerRequest reconnections. */
const redisLost = () =>
  new Error('Reached the max retries per request limit (which is 3). Refer to "maxRetriesPerRequest"');

describe("a Redis outage (issue 13 §3, §4)", () => {
  test("a blip while recording the answer is waited out: one LLM call, the result stored, no failure", async () => {
    let refusals = 2;
    const { run, outcomes, llmCalls } = build({
      store: (recording) => ({
        succeed: async (...args) => {
          if (refusals-- > 0) throw redisLost();
          return recording.succeed(...args);
        },
      }),
    });
    expect((await run(job()).done)?.from_cache).toBe(false);
    expect(outcomes.map((o) => o.kind)).toEqual(["succeed"]);
    expect(llmCalls).toHaveLength(1);
  });

  test("a lost connection is retriable, recorded in our words; a bug's message never reaches the task", async () => {
    const { run, outcomes } = build({ store: () => ({ succeed: async () => Promise.reject(redisLost()) }) });
    const { queued, done } = run(job(), 2);
    await expect(done).rejects.toThrow("max retries");
    expect(queued.options.retries).toBe(2);
    expect(outcomes).toEqual([
      {
        kind: "retry",
        error: { code: "STORE_UNAVAILABLE", message: "Redis was unreachable while the task ran", retriable: true },
      },
    ]);
    const bug = build({ provider: failing(new TypeError("cannot read properties of undefined (reading 'x')")) });
    await expect(bug.run(job(), 2).done).rejects.toThrow(TypeError);
    expect(bug.outcomes[0]?.error).toEqual({
      code: "INTERNAL",
      message: "an internal error stopped the task; the worker logged it",
      retriable: false,
    });
  });

  test("a start that cannot reach Redis is retried, never a job that fails without a record", async () => {
    const { run, outcomes, llmCalls } = build({ store: () => ({ start: async () => Promise.reject(redisLost()) }) });
    const { queued, done } = run(job(), 3);
    await expect(done).rejects.toThrow("max retries");
    expect(queued.options.retries).toBe(3);
    expect(outcomes.map((o) => [o.kind, o.error?.code])).toEqual([["retry", "STORE_UNAVAILABLE"]]);
    expect(llmCalls).toEqual([]);
  });
});

describe("job timeout", () => {
  test("an error after an LLM call that answered keeps its own name, even once the timer has run out (issue 13 §9)", async () => {
    const provider = createSimulatedProvider({ embeddingDim: 8, latencyMs: { min: 5, max: 5 } });
    const { run, outcomes } = build({
      provider,
      jobTimeoutMs: 50,
      store: () => ({
        succeed: async () => {
          await Bun.sleep(120);
          throw new AppError("RESULT_TOO_LARGE", "the result could not be stored", { retriable: false });
        },
      }),
    });
    await expect(run(job(), 1).done).rejects.toMatchObject({ code: "RESULT_TOO_LARGE" });
    expect(outcomes.map((o) => [o.kind, o.error?.code])).toEqual([["fail", "RESULT_TOO_LARGE"]]);
  });

  test("the wait for the global rate limit is not the job's time", async () => {
    const limiter: RateLimiter = {
      waitForSlot: async () => {
        await Bun.sleep(300);
        return 300;
      },
    };
    const provider = createSimulatedProvider({ embeddingDim: 8, latencyMs: { min: 20, max: 20 } });
    const { run, outcomes } = build({ limiter, provider, jobTimeoutMs: 150 });
    expect((await run(job()).done)?.from_cache).toBe(false);
    expect(outcomes.map((o) => o.kind)).toEqual(["succeed"]);
  });

  test("a call past the timeout is aborted and recorded as a retriable JOB_TIMEOUT", async () => {
    let signal: AbortSignal | undefined;
    const hung = createSimulatedProvider({ embeddingDim: 8, latencyMs: { min: 10_000, max: 10_000 } });
    const provider: LlmProvider = {
      ...hung,
      chat: (request) => {
        signal = request.signal;
        return hung.chat(request);
      },
    };
    const { run, outcomes, llmCalls } = build({ provider, jobTimeoutMs: 50 });
    await expect(run(job(), 1).done).rejects.toMatchObject({ code: "JOB_TIMEOUT" });
    expect(signal?.aborted).toBe(true);
    expect(outcomes.map((o) => [o.kind, o.error?.code])).toEqual([["retry", "JOB_TIMEOUT"]]);
    expect(llmCalls.map((c) => c.ok)).toEqual([false]);
  });

  test("whatever is thrown once the timeout fired is recorded as JOB_TIMEOUT, even if a layer between rewrapped it", async () => {
    const hung = createSimulatedProvider({ embeddingDim: 8, latencyMs: { min: 10_000, max: 10_000 } });
    const rewrapping: SemanticCache = {
      async resolve(_request, _options, compute) {
        try {
          return { fromCache: false, answer: await compute() };
        } catch {
          throw new Error("something in between failed");
        }
      },
    };
    const { run, outcomes } = build({ provider: hung, jobTimeoutMs: 50, cache: rewrapping });
    await expect(run(job(), 0).done).rejects.toMatchObject({ code: "JOB_TIMEOUT" });
    expect(outcomes.map((o) => [o.kind, o.error?.code])).toEqual([["fail", "JOB_TIMEOUT"]]);
  });
});

/** A token log that writes what the processor told it, in order, beside the store's outcomes. */
function recordingTokens(order: string[]): TokenLog {
  return {
    open(_taskId, attempt) {
      order.push(`reset ${attempt}`);
      return {
        token: (text) => void order.push(`token ${text}`),
        reset: () => void order.push("reset"),
        complete: async (response) => void order.push(`complete ${response}`),
        abandon: async () => void order.push("abandon"),
      };
    },
    end: async () => void order.push("end"),
  };
}

/** The store's outcomes into the same order as the token log's calls. */
const intoOrder = (order: string[]) => (recording: TaskStore) => ({
  succeed: async (...args: Parameters<TaskStore["succeed"]>) => {
    order.push("succeed");
    await recording.succeed(...args);
  },
  fail: async (...args: Parameters<TaskStore["fail"]>) => {
    order.push("fail");
    await recording.fail(...args);
  },
  retry: async (...args: Parameters<TaskStore["retry"]>) => {
    order.push("retry");
    await recording.retry(...args);
  },
});

describe("a streamed task (issue 15 §2)", () => {
  test("its tokens go out as the provider sends them, are made whole before the result is recorded, and end after it", async () => {
    const order: string[] = [];
    const { run } = build({ tokens: recordingTokens(order), store: intoOrder(order), attempt: 2 });
    const result = await run(job({ stream: true })).done;
    const tokens = order.filter((step) => step.startsWith("token ")).map((step) => step.slice("token ".length));
    expect(tokens.length).toBeGreaterThan(3);
    expect(tokens.join("")).toBe(result?.response as string);
    expect(order[0]).toBe("reset 2");
    expect(order.slice(-3)).toEqual([`complete ${result?.response}`, "succeed", "end"]);
  });

  test("a cache hit relays nothing while it resolves: its answer goes to the stream whole, then the end", async () => {
    const order: string[] = [];
    const answer = { query: "q", response: "cached answer", model: "m", metadata: {} as never };
    const cache: SemanticCache = {
      resolve: async () => ({ fromCache: true, hit: { tier: "exact", id: "x:sentiment_analysis", answer } }),
    };
    const { run } = build({ tokens: recordingTokens(order), store: intoOrder(order), cache });
    await run(job({ stream: true })).done;
    expect(order).toEqual(["reset 1", "complete cached answer", "succeed", "end"]);
  });

  test("a failed attempt abandons its stream; a retry leaves it open for the next attempt, a final failure ends it", async () => {
    const retried: string[] = [];
    const transient = new LlmError("LLM_SERVER_ERROR", "500", { retriable: true });
    const first = build({ provider: failing(transient), tokens: recordingTokens(retried), store: intoOrder(retried) });
    await expect(first.run(job({ stream: true })).done).rejects.toBe(transient);
    expect(retried).toEqual(["reset 1", "abandon", "retry"]);

    const failed: string[] = [];
    const fatal = new LlmError("LLM_BAD_REQUEST", "400", { retriable: false });
    const second = build({ provider: failing(fatal), tokens: recordingTokens(failed), store: intoOrder(failed) });
    await expect(second.run(job({ stream: true })).done).rejects.toBe(fatal);
    expect(failed).toEqual(["reset 1", "abandon", "fail", "end"]);
  });

  test("a task without stream writes no tokens, whatever the token log", async () => {
    const order: string[] = [];
    const { run } = build({ tokens: recordingTokens(order), store: intoOrder(order) });
    await run(job()).done;
    expect(order).toEqual(["succeed"]);
  });
});
