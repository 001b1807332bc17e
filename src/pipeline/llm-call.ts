/**
 * One task's call to the LLM. It first waits for the global rate limit, which
 * is not the job's time: a backlog delays jobs, it never times them out. Then
 * it asks the provider under JOB_TIMEOUT_MS with a signal that really aborts
 * the HTTP call, and reports every call, answered or not, as `llm.call`.
 */
import { AppError } from "../errors";
import type { EventBus } from "../events";
import { type ChatRequest, type ChatResult, LlmError, type LlmProvider } from "../llm/provider";
import type { RateLimiter } from "../llm/rate-limiter";

export class JobTimeoutError extends AppError {
  constructor(ms: number, cause?: unknown) {
    super("JOB_TIMEOUT", `the task timed out after ${ms} ms (JOB_TIMEOUT_MS)`, { retriable: true, cause, status: 504 });
    this.name = "JobTimeoutError";
  }
}

export interface LlmCallDeps {
  provider: LlmProvider;
  limiter: RateLimiter;
  bus: EventBus;
  timeoutMs: number;
}

/** One task attempt's LLM call (at most one ask per attempt: the cache calls it once, on a miss). */
export interface LlmCall {
  /** Waits for a slot, then asks; a call that the timeout cut throws JobTimeoutError. */
  readonly ask: (
    request: Omit<ChatRequest, "signal"> & { model: string; tenant?: string | undefined },
  ) => Promise<ChatResult>;
  /**
   * The error to record for what a task's attempt threw: when the timeout cut
   * the call, whatever follows from the abort (a layer that rethrows it in its
   * own words) is the timeout's doing. An error after a call that answered
   * keeps its own name, even once the timer has run out.
   */
  readonly blame: (thrown: unknown) => unknown;
}

export function createLlmCall(deps: LlmCallDeps): LlmCall {
  const { provider, limiter, bus, timeoutMs } = deps;
  let signal: AbortSignal | undefined;
  let cut = false;
  const timedOut = (thrown: unknown) => signal?.aborted === true && !(thrown instanceof JobTimeoutError);

  const report = (
    started: number,
    request: { model: string; taskType: string; tenant?: string | undefined },
    result?: ChatResult,
    error?: unknown,
  ) =>
    bus.emit("llm.call", {
      provider: result?.provider ?? provider.name,
      // The model as routed (bounded: what the configuration names), not the provider's dated name.
      model: result?.routedModel ?? result?.model ?? request.model,
      ms: performance.now() - started,
      ok: result !== undefined,
      ...(error instanceof LlmError && error.providerStatus !== undefined ? { status: error.providerStatus } : {}),
      prompt_tokens: result?.usage.promptTokens ?? 0,
      completion_tokens: result?.usage.completionTokens ?? 0,
      task_type: request.taskType,
      ...(request.tenant === undefined ? {} : { tenant: request.tenant }),
      ...(result?.costUsd === undefined ? {} : { cost_nano_usd: Math.round(result.costUsd * 1e9) }),
      ...(result?.fallback ? { fallback: true } : {}),
    });

  return {
    async ask(request) {
      const waitedMs = await limiter.waitForSlot();
      if (waitedMs > 0) bus.emit("llm.rate_limited", { wait_ms: waitedMs });
      signal = AbortSignal.timeout(timeoutMs);
      const started = performance.now();
      let result: ChatResult;
      const { tenant: _tenant, ...chat } = request;
      try {
        result = await provider.chat({ ...chat, signal });
      } catch (error) {
        report(started, request, undefined, error);
        cut = signal.aborted;
        throw timedOut(error) ? new JobTimeoutError(timeoutMs, error) : error;
      }
      report(started, request, result);
      return result;
    },
    blame: (thrown) => (cut && !(thrown instanceof JobTimeoutError) ? new JobTimeoutError(timeoutMs, thrown) : thrown),
  };
}
