/**
 * In-call retries around a provider request: a transient failure (5xx, a
 * dropped connection, a short 429) is retried at once with backoff and
 * jitter, without giving the job back to the queue. A failure that asks for a
 * longer wait than maxInlineWaitMs is thrown as is, so the queue delays the
 * job (holding no worker slot) and the task shows RETRY.
 */
import type { Logger } from "../log";
import { retryDelay, sleep } from "../util/backoff";
import { type ChatRequest, type ChatResult, LlmError } from "./provider";

export interface RetryPolicy {
  /** Extra attempts after the first. */
  retries: number;
  baseMs: number;
  maxMs: number;
  /** The longest wait spent inside the call; longer waits go back to the queue. */
  maxInlineWaitMs: number;
}

/** What every chat adapter is built with (openai, anthropic, cohere). */
export interface AdapterOptions {
  apiKey: string;
  /** The provider's API URL (a compatible server, a gateway, the project's mock); undefined: the SDK's default. */
  baseUrl?: string;
  /** The model of a request that names none. */
  model: string;
  logger: Logger;
  retry?: RetryPolicy;
  /** One request's ceiling when the caller's signal does not end it first, ms. */
  requestTimeoutMs?: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 1, baseMs: 100, maxMs: 2000, maxInlineWaitMs: 2000 };

export async function withRetry<T>(
  call: () => Promise<T>,
  policy: RetryPolicy,
  options: { signal?: AbortSignal; onRetry?: (error: LlmError, delayMs: number, attempt: number) => void } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof LlmError) || !error.retriable || attempt > policy.retries || options.signal?.aborted)
        throw error;
      const delay = retryDelay(attempt, policy.baseMs, policy.maxMs, error.retryAfterMs);
      if (delay > policy.maxInlineWaitMs) throw error;
      options.onRetry?.(error, delay, attempt);
      await sleep(delay, options.signal);
    }
  }
}

/**
 * One chat call of an adapter, with in-call retries: whole (`complete`), or
 * streamed (`stream`) when the request has onToken. A retry after some text
 * went out tells the listener (onReset), and the answer starts over.
 */
export function chatWithRetry(
  request: ChatRequest,
  policy: RetryPolicy,
  onRetry: (error: LlmError, delayMs: number, attempt: number) => void,
  complete: (request: ChatRequest) => Promise<ChatResult>,
  stream: (request: ChatRequest, onToken: (text: string) => void) => Promise<ChatResult>,
): Promise<ChatResult> {
  const { onToken, onReset, signal } = request;
  if (request.noRetry) policy = { ...policy, retries: 0 };
  if (!onToken) return withRetry(() => complete(request), policy, { signal, onRetry });
  let emitted = false;
  const relay = (piece: string) => {
    emitted = true;
    onToken(piece);
  };
  return withRetry(
    () => {
      if (emitted) {
        emitted = false;
        onReset?.();
      }
      return stream(request, relay);
    },
    policy,
    { signal, onRetry },
  );
}

/** An adapter's onRetry: one warning per in-call retry, under its provider's name. */
export function logRetries(
  logger: Logger,
  provider: string,
  message = "provider call failed; retrying",
): (error: LlmError, delayMs: number, attempt: number) => void {
  const log = logger.child({ component: "llm", provider });
  return (error, delayMs, attempt) =>
    log.warn({ code: error.code, error: error.message, delay_ms: delayMs, attempt }, message);
}
