/**
 * Provider failures in the product's words (LlmError), shared by every
 * adapter: whether a failure is retried (and may fall back to another model,
 * llm/model-router.ts) follows HTTP, and a Retry-After is honoured once.
 * Each SDK names its errors its own way; its adapter says which is which,
 * and this file decides what each means.
 */
import { errorMessage } from "../errors";
import { LlmError } from "./provider";

/**
 * How long the provider asked us to wait, in ms: OpenAI's retry-after-ms,
 * Retry-After as seconds or an HTTP date, else the soonest reset of
 * Anthropic's rate-limit headers (anthropic-ratelimit-*-reset, RFC 3339).
 */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = headers?.get("retry-after-ms");
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers?.get("retry-after");
  if (value) {
    if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
    const date = Date.parse(value);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  let soonest: number | undefined;
  for (const name of ["requests", "tokens", "input-tokens", "output-tokens"]) {
    const reset = Date.parse(headers?.get(`anthropic-ratelimit-${name}-reset`) ?? "");
    if (!Number.isNaN(reset) && reset > now) soonest = Math.min(soonest ?? Number.POSITIVE_INFINITY, reset - now);
  }
  return soonest;
}

/** An HTTP answer other than 2xx: 408, 409, 429, 529 (Anthropic's "overloaded") and 5xx are transient, other 4xx are not. */
export function httpFailure(
  what: string,
  status: number,
  detail: string,
  headers: Headers | undefined,
  cause: unknown,
) {
  const message = `${what}: the provider answered ${status}: ${detail}`;
  if (status === 429) {
    return new LlmError("LLM_RATE_LIMITED", message, {
      retriable: true,
      providerStatus: status,
      retryAfterMs: retryAfterMs(headers),
      cause,
    });
  }
  const transient = status === 408 || status === 409 || status >= 500;
  const code = transient ? "LLM_SERVER_ERROR" : status === 401 || status === 403 ? "LLM_AUTH" : "LLM_BAD_REQUEST";
  return new LlmError(code, message, {
    retriable: transient,
    providerStatus: status,
    retryAfterMs: transient ? retryAfterMs(headers) : undefined,
    cause,
  });
}

export const timedOut = (what: string, cause: unknown) =>
  new LlmError("LLM_TIMEOUT", `${what}: the provider did not answer in time`, { retriable: true, cause });

export const unreachable = (what: string, cause: unknown) =>
  new LlmError("LLM_UNAVAILABLE", `${what}: cannot reach the provider (${errorMessage(cause)})`, {
    retriable: true,
    cause,
  });

export const emptyResponse = (what: string) =>
  new LlmError("LLM_EMPTY_RESPONSE", `${what}: the provider returned no message content`, { retriable: true });

/**
 * The error classes of the SDKs Stainless generates (openai, @anthropic-ai/sdk):
 * the same names and shape in each, so one mapping serves both.
 */
export interface StainlessErrors {
  APIUserAbortError: abstract new (...args: never[]) => Error;
  APIConnectionTimeoutError: abstract new (...args: never[]) => Error;
  APIConnectionError: abstract new (...args: never[]) => Error;
  APIError: abstract new (...args: never[]) => Error & { status: number | undefined; headers: Headers | undefined };
}

/** Maps a Stainless SDK's error to an LlmError; the caller's abort, and what is no SDK error, pass as they are. */
export function stainlessErrorMapper(sdk: StainlessErrors): (error: unknown, what: string) => unknown {
  return (error, what) => {
    if (error instanceof sdk.APIUserAbortError) return error; // the caller aborted: the caller explains why
    if (error instanceof sdk.APIConnectionTimeoutError) return timedOut(what, error);
    if (error instanceof sdk.APIConnectionError) return unreachable(what, error);
    if (error instanceof sdk.APIError && error.status !== undefined)
      return httpFailure(what, error.status, error.message, error.headers, error);
    return error;
  };
}

/**
 * What a stream that failed after it began is: the caller's abort as is (the
 * caller explains it), an HTTP or connection error as HTTP says, anything
 * else (the connection cut mid-body, an error event in the stream) retriable.
 */
export function brokenStream(
  error: unknown,
  received: number,
  signal: AbortSignal | undefined,
  what: string,
  toLlmError: (error: unknown, what: string) => unknown,
): unknown {
  if (signal?.aborted) return error;
  const mapped = toLlmError(error, `${what} stream`);
  if (mapped instanceof LlmError) return mapped;
  return new LlmError(
    "LLM_STREAM_INTERRUPTED",
    `${what} stream: the answer broke off after ${received} characters (${errorMessage(error)})`,
    { retriable: true, cause: error },
  );
}
