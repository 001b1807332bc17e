/**
 * One task, start to end, in named steps:
 *
 *   1. startTask: mark it STARTED, or skip it when a crashed worker's earlier
 *      run already finished it (it is not run twice); refuseRerun: past
 *      maxAttempts starts it fails for good (TOO_MANY_ATTEMPTS).
 *   2. lookUpOrAnswer: the semantic cache, and on a miss the LLM (llm-call.ts:
 *      the global rate limit, then a timeout that really aborts the call),
 *      whose answer the cache stores if it admits it.
 *   3. resultOf: the result, built one way for a cache hit and a fresh answer.
 *   4. recordSuccess: store the result, announce it.
 *
 * A task with `stream: true` also relays its answer as the provider writes
 * it (store/task-tokens.ts): a reset at the attempt's start, the tokens, the
 * whole answer made sure of before the result is recorded (a cache hit is
 * one piece), and the end after it, or after a final failure.
 *
 * Any failure goes to retryOrFail, the one place that decides: only retriable
 * errors are retried while retries remain, and a TypeError (a bug) never is.
 */
import { answerOf } from "../cache/cache-entries";
import type { Resolution, SemanticCache } from "../cache/semantic-cache";
import { AppError, errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { LlmProvider } from "../llm/provider";
import type { RateLimiter } from "../llm/rate-limiter";
import { type Logger, lazyChild } from "../log";
import { isRedisUnavailable } from "../redis/client";
import type { TaskPlan } from "../store/experiments";
import type { StartOutcome, TaskStore } from "../store/task-store";
import type { TokenLog, TokenWriter } from "../store/task-tokens";
import type { TaskError, TaskJob, TaskResult } from "../task/contract";
import { sleep } from "../util/backoff";
import { createLlmCall, type LlmCall } from "./llm-call";

export interface TaskProcessorDeps {
  provider: LlmProvider;
  /** The system prompt of a task type; throws an AppError for an unknown one. */
  systemPrompt: (taskType: string) => string;
  limiter: RateLimiter;
  store: TaskStore;
  bus: EventBus;
  logger: Logger;
  jobTimeoutMs: number;
  /** The model when a task names none. */
  defaultModel: string;
  /**
   * The model of a task: the request's (if its tenant may name it), its task type's route, else the
   * default (llm/model-routes.ts); throws MODEL_NOT_ALLOWED for a model the tenant may not name. Absent:
   * the request's model, else defaultModel.
   */
  modelFor?: (taskType: string, requested: string | undefined, tenant: string | undefined) => string;
  /** The semantic cache; without it every task goes to the LLM. */
  cache?: SemanticCache;
  /** Starts of one task beyond which it fails for good (retries and stall re-runs together); 0: no cap. */
  maxAttempts?: number;
  /** The waits between tries to record an answer while Redis is unreachable; then the attempt is retried. */
  recordRetryDelaysMs?: readonly number[];
  /** Where streamed tasks relay their tokens; without it, `stream: true` is ignored (GET /task/:id/stream sends the answer whole). */
  tokens?: TokenLog;
  /**
   * The task's prompt version, model and experiment variant (store/experiments.ts planTask, from a snapshot:
   * no round trip). Absent, or undefined for a task: the task type's prompt and modelFor's model.
   */
  plan?: (task: TaskJob) => TaskPlan | undefined;
}

/** Job options that the queue persists with the job; its backoff strategy reads retryAfterMs. */
export interface TaskJobOptions {
  retries: number;
  retryAfterMs?: number;
}

/**
 * The part of a queued job that a task's processing uses: its task, and the
 * retry options it may change (no retries left makes a failure final). A
 * Bee-Queue Job is one; the pipeline never loads Bee-Queue.
 */
export interface QueuedTask {
  readonly data: TaskJob;
  readonly options: object;
  /** The task's start, when the queue's take already did it in the same script (queue/bee-queue-hooks.ts). */
  readonly started?: StartOutcome;
}

/**
 * The error as a task records it, in a code and a sentence of ours (a
 * library's message never reaches a client; the worker logs it). A lost
 * connection to Redis is retriable: the task runs again once Redis is back.
 * Any other non-AppError (TypeError, RangeError, ...) is a bug: never retried.
 */
export function classify(error: unknown): TaskError & { retryAfterMs?: number } {
  if (error instanceof AppError) {
    const retryAfterMs = (error as { retryAfterMs?: unknown }).retryAfterMs;
    return {
      code: error.code,
      message: error.message,
      retriable: error.retriable,
      ...(typeof retryAfterMs === "number" ? { retryAfterMs } : {}),
    };
  }
  if (isRedisUnavailable(error)) {
    return { code: "STORE_UNAVAILABLE", message: "Redis was unreachable while the task ran", retriable: true };
  }
  return { code: "INTERNAL", message: "an internal error stopped the task; the worker logged it", retriable: false };
}

/** How long an answer already obtained waits for Redis to come back (about 8 s) before the attempt gives up on it. */
const RECORD_RETRY_DELAYS_MS = [100, 250, 500, 1000, 2000, 4000];

/**
 * Stall detection re-runs the job of a process that died and does not count it
 * as a retry: a task that kills its worker every time (a poison job) would loop
 * for ever. Past the cap it fails for good.
 */
export class TooManyAttemptsError extends AppError {
  constructor(
    readonly attempt: number,
    readonly maxAttempts: number,
  ) {
    super(
      "TOO_MANY_ATTEMPTS",
      `the task was started ${attempt} times without finishing (its worker died each time?); not run again`,
    );
    this.name = "TooManyAttemptsError";
  }
}

const round4 = (n: number) => Math.round(n * 10_000) / 10_000;

/** The task's result, built one way whether the cache or the LLM answered. */
export function resultOf(task: TaskJob, resolution: Resolution, processingMs: number, plan?: TaskPlan): TaskResult {
  const { answer, hit, cacheId } = resolution.fromCache
    ? { answer: resolution.hit.answer, hit: resolution.hit, cacheId: resolution.hit.id }
    : { answer: answerOf(task.text, resolution.answer), hit: undefined, cacheId: resolution.storedId };
  return {
    response: answer.response,
    task_type: task.task_type,
    model: answer.model,
    processing_time: processingMs / 1000,
    from_cache: resolution.fromCache,
    ...(hit?.similarity === undefined ? {} : { similarity: round4(hit.similarity) }),
    ...(hit ? { cache_tier: hit.tier } : {}),
    ...(cacheId ? { cache_id: cacheId } : {}),
    metadata: {
      tokens_used: answer.metadata.tokens_used,
      prompt_tokens: answer.metadata.prompt_tokens,
      completion_tokens: answer.metadata.completion_tokens,
      ...routingOf(resolution),
      ...(plan ? { prompt_version: plan.prompt_version } : {}),
      ...(plan?.experiment ? { experiment: plan.experiment } : {}),
    },
  };
}

/** Who answered and what it cost: the fresh answer's own figures; a cache hit cost nothing now. */
function routingOf(resolution: Resolution): Partial<TaskResult["metadata"]> {
  if (resolution.fromCache) {
    const provider = resolution.hit.answer.metadata.provider;
    return { ...(provider ? { provider } : {}), cost_usd: 0 };
  }
  const { provider, fallback, costUsd, usage } = resolution.answer;
  return {
    ...(provider ? { provider } : {}),
    ...(fallback === undefined ? {} : { fallback }),
    ...(costUsd === undefined ? {} : { cost_usd: costUsd }),
    ...(usage.cachedPromptTokens ? { cached_prompt_tokens: usage.cachedPromptTokens } : {}),
  };
}

export type TaskProcessor = (job: QueuedTask, queue: string) => Promise<TaskResult | undefined>;

export function createTaskProcessor(deps: TaskProcessorDeps): TaskProcessor {
  const { systemPrompt, store, bus, logger, defaultModel, cache, tokens, maxAttempts = 0 } = deps;
  const modelFor = deps.modelFor ?? ((_taskType: string, requested: string | undefined) => requested ?? defaultModel);
  const recordRetryDelaysMs = deps.recordRetryDelaysMs ?? RECORD_RETRY_DELAYS_MS;
  const llmDeps = { provider: deps.provider, limiter: deps.limiter, bus, timeoutMs: deps.jobTimeoutMs };

  /** The attempt's number, or undefined when an earlier run already finished the task. */
  const startTask = async (task: TaskJob, queue: string, now: number, log: Logger, started?: StartOutcome) => {
    const start = started ?? (await store.start(task, queue, now));
    if (start.status !== "STARTED") {
      // A worker died after finishing this task but before Bee-Queue recorded it: do not run it twice.
      log.info({ status: start.status }, "task already finished by an earlier run; not running it again");
      return undefined;
    }
    const attempt = "attempt" in start ? start.attempt : 1;
    bus.emit("task.started", { task_id: task.task_id, queue, attempt });
    return attempt;
  };

  const refuseRerun = (attempt: number) => {
    if (maxAttempts > 0 && attempt > maxAttempts) throw new TooManyAttemptsError(attempt, maxAttempts);
  };

  const lookUpOrAnswer = async (
    task: TaskJob,
    llm: LlmCall,
    writer: TokenWriter | undefined,
    plan: TaskPlan | undefined,
  ): Promise<Resolution> => {
    const system = plan?.system ?? systemPrompt(task.task_type);
    const model = plan?.model ?? modelFor(task.task_type, task.model, task.tenant);
    const { temperature, max_tokens: maxTokens, tenant } = task;
    const relay = writer ? { onToken: (text: string) => writer.token(text), onReset: () => writer.reset() } : {};
    const compute = () =>
      llm.ask({ taskType: task.task_type, system, user: task.text, model, temperature, maxTokens, tenant, ...relay });
    if (!cache) return { fromCache: false, answer: await compute() };
    return cache.resolve(
      { tenant: task.tenant, taskType: task.task_type, text: task.text, model, system, temperature, maxTokens },
      { useCache: task.use_cache, refresh: task.refresh_cache === true },
      compute,
    );
  };

  const recordSuccess = async (
    task: TaskJob,
    queue: string,
    result: TaskResult,
    startedAt: number,
    finishedAt: number,
    plan: TaskPlan | undefined,
  ) => {
    // The answer is in hand (and paid for): a Redis blip while recording it is waited out, never turned into a
    // failure or a second LLM call.
    for (const delay of [...recordRetryDelaysMs, undefined]) {
      try {
        await store.succeed(task.task_id, result, finishedAt, task.tenant, task.callback_url, task.text, queue);
        break;
      } catch (error) {
        if (delay === undefined || !isRedisUnavailable(error)) throw error;
        await sleep(delay);
      }
    }
    bus.emit("task.succeeded", {
      task_id: task.task_id,
      queue,
      task_type: task.task_type,
      processing_ms: finishedAt - startedAt,
      latency_ms: finishedAt - task.accepted_at,
      from_cache: result.from_cache,
      tokens: result.metadata.tokens_used,
      ...(plan?.experiment ? { experiment: plan.experiment } : {}),
      ...(result.metadata.cost_usd === undefined ? {} : { cost_usd: result.metadata.cost_usd }),
    });
  };

  /**
   * The end of a streamed task's tokens, after its end is recorded. Not
   * retried: should it be lost, GET /task/:id/stream ends its clients from
   * the task's own end a moment later (store/token-feed.ts).
   */
  const endTokens = async (task: TaskJob, log: Logger) => {
    if (!task.stream || !tokens) return;
    await tokens
      .end(task.task_id)
      .catch((error: unknown) => log.warn({ error: errorMessage(error) }, "token stream: could not append its end"));
  };

  /** The one retry-or-fail decision; returns the error to throw back to the queue. */
  const retryOrFail = async (
    job: QueuedTask,
    queue: string,
    error: unknown,
    log: Logger,
    plan: TaskPlan | undefined,
  ) => {
    const task = job.data;
    const { retryAfterMs, ...recorded } = classify(error);
    const options = job.options as TaskJobOptions;
    if (recorded.retriable && options.retries > 0) {
      options.retryAfterMs = retryAfterMs;
      await store.retry(task.task_id, recorded);
      bus.emit("task.retried", { task_id: task.task_id, queue, code: recorded.code, delay_ms: retryAfterMs ?? 0 });
      log.warn(
        { code: recorded.code, error: recorded.message, cause: errorMessage(error), retries_left: options.retries },
        "task attempt failed; retrying",
      );
      return error;
    }
    // Bee-Queue retries any error while retries remain: a non-retriable one must fail now.
    options.retries = 0;
    await store.fail(task.task_id, recorded, Date.now(), task.tenant, task.callback_url);
    await endTokens(task, log);
    bus.emit("task.failed", {
      task_id: task.task_id,
      queue,
      code: recorded.code,
      ...(plan?.experiment ? { experiment: plan.experiment } : {}),
    });
    // A task that kills its worker is the operator's problem, not the client's: it is logged as an error.
    if (error instanceof TooManyAttemptsError)
      log.error({ attempt: error.attempt, max_attempts: error.maxAttempts }, recorded.message);
    else if (recorded.code === "INTERNAL") log.error({ err: error }, "task failed: internal error");
    else log.warn({ code: recorded.code, error: recorded.message }, "task failed");
    return error;
  };

  return async (job, queue) => {
    const task = job.data;
    const log = lazyChild(logger, { task_id: task.task_id, queue });
    const startedAt = Date.now();
    // One per attempt: it knows whether this attempt's timeout cut the call.
    const llm = createLlmCall(llmDeps);
    let writer: TokenWriter | undefined;
    let plan: TaskPlan | undefined;
    try {
      // Inside the try: a start that cannot reach Redis is retried like any step, never a job that fails
      // with no result and reads PENDING for ever.
      const attempt = await startTask(task, queue, startedAt, log, job.started);
      if (attempt === undefined) {
        // Its worker may have died between recording the end and the token stream's end: written again.
        await endTokens(task, log);
        return undefined;
      }
      refuseRerun(attempt);
      writer = task.stream && tokens ? tokens.open(task.task_id, attempt, log) : undefined;
      plan = deps.plan?.(task);
      const resolution = await lookUpOrAnswer(task, llm, writer, plan);
      const finishedAt = Date.now();
      const result = resultOf(task, resolution, finishedAt - startedAt, plan);
      // Every token is in Redis before the end is announced: a client never sees the end before the answer.
      await writer?.complete(result.response);
      await recordSuccess(task, queue, result, startedAt, finishedAt, plan);
      if (writer) await endTokens(task, log);
      return result;
    } catch (thrown) {
      await writer?.abandon();
      throw await retryOrFail(job, queue, llm.blame(thrown), log, plan);
    }
  };
}
