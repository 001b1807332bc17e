/**
 * One task, start to end: mark it started (or skip it when a crashed
 * worker's earlier run already finished it), look the answer up in the
 * semantic cache; on a miss wait for the global LLM rate limit, ask the
 * provider under a timeout that really aborts the call, offer the answer to
 * the cache; store the result, announce it. On failure, decide retry-or-fail: only retriable
 * errors are retried, and a TypeError (a bug) never is.
 */
import type { SemanticCache } from "../cache/semantic-cache";
import { AppError, errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { ChatResult, LlmProvider } from "../llm/provider";
import type { RateLimiter } from "../llm/rate-limiter";
import type { Logger } from "../log";
import type { TaskStore } from "../store/task-store";
import type { TaskError, TaskJob, TaskResult } from "../task/contract";

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
  /** The semantic cache; without it every task goes to the LLM. */
  cache?: SemanticCache;
  /** Starts of one task beyond which it fails for good (retries and stall re-runs together); 0: no cap. */
  maxAttempts?: number;
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
}

export class JobTimeoutError extends AppError {
  constructor(ms: number, cause?: unknown) {
    super("JOB_TIMEOUT", `the task timed out after ${ms} ms (JOB_TIMEOUT_MS)`, { retriable: true, cause, status: 504 });
    this.name = "JobTimeoutError";
  }
}

/** The error as a task records it. A non-AppError (TypeError, RangeError, ...) is a bug: never retried. */
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
  return { code: "INTERNAL", message: errorMessage(error), retriable: false };
}

const round4 = (n: number) => Math.round(n * 10_000) / 10_000;

export type TaskProcessor = (job: QueuedTask, queue: string) => Promise<TaskResult | undefined>;

export function createTaskProcessor(deps: TaskProcessorDeps): TaskProcessor {
  const {
    provider,
    systemPrompt,
    limiter,
    store,
    bus,
    logger,
    jobTimeoutMs,
    defaultModel,
    cache,
    maxAttempts = 0,
  } = deps;

  return async (job, queue) => {
    const task = job.data;
    const log = logger.child({ task_id: task.task_id, queue });
    const startedAt = Date.now();
    const start = await store.start(task, queue, startedAt);
    if (start.status !== "STARTED") {
      // A worker died after finishing this task but before Bee-Queue recorded it: do not run it twice.
      log.info({ status: start.status }, "task already finished by an earlier run; not running it again");
      return undefined;
    }
    const attempt = "attempt" in start ? start.attempt : 1;
    bus.emit("task.started", { task_id: task.task_id, queue, attempt });
    if (maxAttempts > 0 && attempt > maxAttempts) {
      // Stall detection re-runs the job of a process that died, and does not count it as a retry: a task that
      // kills its worker every time (a poison job) would loop for ever. Past the cap it fails for good.
      const recorded = {
        code: "TOO_MANY_ATTEMPTS",
        message: `the task was started ${attempt} times without finishing (its worker died each time?); not run again`,
        retriable: false,
      };
      (job.options as TaskJobOptions).retries = 0;
      await store.fail(task.task_id, recorded, Date.now(), task.tenant);
      bus.emit("task.failed", { task_id: task.task_id, queue, code: recorded.code });
      log.error({ attempt, max_attempts: maxAttempts }, recorded.message);
      throw new AppError(recorded.code, recorded.message);
    }

    let signal: AbortSignal | undefined;
    try {
      const system = systemPrompt(task.task_type);
      const model = task.model ?? defaultModel;
      const callLlm = async (): Promise<ChatResult> => {
        // Waiting for the global rate limit is not the job's time: a backlog delays jobs, it never times them out.
        const waitedMs = await limiter.waitForSlot();
        if (waitedMs > 0) bus.emit("llm.rate_limited", { wait_ms: waitedMs });
        signal = AbortSignal.timeout(jobTimeoutMs);
        const callStarted = performance.now();
        return provider
          .chat({
            taskType: task.task_type,
            system,
            user: task.text,
            model,
            temperature: task.temperature,
            maxTokens: task.max_tokens,
            signal,
          })
          .then(
            (result) => {
              bus.emit("llm.call", {
                provider: provider.name,
                model: result.model,
                ms: performance.now() - callStarted,
                ok: true,
                prompt_tokens: result.usage.promptTokens,
                completion_tokens: result.usage.completionTokens,
              });
              return result;
            },
            (error: unknown) => {
              bus.emit("llm.call", {
                provider: provider.name,
                model,
                ms: performance.now() - callStarted,
                ok: false,
                prompt_tokens: 0,
                completion_tokens: 0,
              });
              throw signal?.aborted ? new JobTimeoutError(jobTimeoutMs, error) : error;
            },
          );
      };
      const resolution = cache
        ? await cache.resolve(
            {
              tenant: task.tenant,
              taskType: task.task_type,
              text: task.text,
              model,
              system,
              temperature: task.temperature,
              maxTokens: task.max_tokens,
            },
            { useCache: task.use_cache, refresh: task.refresh_cache === true },
            callLlm,
          )
        : { fromCache: false as const, answer: await callLlm() };
      const finishedAt = Date.now();
      const result: TaskResult = resolution.fromCache
        ? {
            response: resolution.hit.answer.response,
            task_type: task.task_type,
            model: resolution.hit.answer.model,
            processing_time: (finishedAt - startedAt) / 1000,
            from_cache: true,
            ...(resolution.hit.similarity === undefined ? {} : { similarity: round4(resolution.hit.similarity) }),
            cache_tier: resolution.hit.tier,
            cache_id: resolution.hit.id,
            metadata: {
              tokens_used: resolution.hit.answer.metadata.tokens_used,
              prompt_tokens: resolution.hit.answer.metadata.prompt_tokens,
              completion_tokens: resolution.hit.answer.metadata.completion_tokens,
            },
          }
        : {
            response: resolution.answer.text,
            task_type: task.task_type,
            model: resolution.answer.model,
            processing_time: (finishedAt - startedAt) / 1000,
            from_cache: false,
            ...(resolution.storedId ? { cache_id: resolution.storedId } : {}),
            metadata: {
              tokens_used: resolution.answer.usage.totalTokens,
              prompt_tokens: resolution.answer.usage.promptTokens,
              completion_tokens: resolution.answer.usage.completionTokens,
            },
          };
      await store.succeed(task.task_id, result, finishedAt, task.tenant);
      bus.emit("task.succeeded", {
        task_id: task.task_id,
        queue,
        task_type: task.task_type,
        processing_ms: finishedAt - startedAt,
        latency_ms: finishedAt - task.accepted_at,
        from_cache: result.from_cache,
        tokens: result.metadata.tokens_used,
      });
      return result;
    } catch (thrown) {
      const error =
        signal?.aborted && !(thrown instanceof JobTimeoutError) ? new JobTimeoutError(jobTimeoutMs, thrown) : thrown;
      const { retryAfterMs, ...recorded } = classify(error);
      const options = job.options as TaskJobOptions;
      if (recorded.retriable && options.retries > 0) {
        options.retryAfterMs = retryAfterMs;
        await store.retry(task.task_id, recorded);
        bus.emit("task.retried", { task_id: task.task_id, queue, code: recorded.code, delay_ms: retryAfterMs ?? 0 });
        log.warn(
          { code: recorded.code, error: recorded.message, retries_left: options.retries },
          "task attempt failed; retrying",
        );
      } else {
        // Bee-Queue retries any error while retries remain: a non-retriable one must fail now.
        options.retries = 0;
        await store.fail(task.task_id, recorded, Date.now(), task.tenant);
        bus.emit("task.failed", { task_id: task.task_id, queue, code: recorded.code });
        log.warn({ code: recorded.code, error: recorded.message }, "task failed");
      }
      throw error;
    }
  };
}
