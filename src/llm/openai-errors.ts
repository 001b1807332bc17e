/**
 * SDK errors mapped to LlmError, shared by chat and embeddings: whether a
 * failure is retried follows HTTP, and a Retry-After is honoured once.
 */
import OpenAI from "openai";
import { LlmError } from "./provider";

/** Retry-After as seconds or an HTTP date, or OpenAI's retry-after-ms, in ms. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = headers?.get("retry-after-ms");
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers?.get("retry-after");
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Maps an SDK error to an LlmError whose `retriable` follows HTTP: 408, 409, 429 and 5xx are transient, other 4xx are not. */
export function toLlmError(error: unknown, what: string): unknown {
  if (error instanceof OpenAI.APIUserAbortError) return error; // the caller aborted: the caller explains why
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new LlmError("LLM_TIMEOUT", `${what}: the provider did not answer in time`, {
      retriable: true,
      cause: error,
    });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new LlmError("LLM_UNAVAILABLE", `${what}: cannot reach the provider (${error.message})`, {
      retriable: true,
      cause: error,
    });
  }
  if (error instanceof OpenAI.APIError && error.status !== undefined) {
    const status = error.status;
    const message = `${what}: the provider answered ${status}: ${error.message}`;
    if (status === 429) {
      return new LlmError("LLM_RATE_LIMITED", message, {
        retriable: true,
        providerStatus: status,
        retryAfterMs: retryAfterMs(error.headers),
        cause: error,
      });
    }
    const transient = status === 408 || status === 409 || status >= 500;
    const code = transient ? "LLM_SERVER_ERROR" : status === 401 || status === 403 ? "LLM_AUTH" : "LLM_BAD_REQUEST";
    return new LlmError(code, message, {
      retriable: transient,
      providerStatus: status,
      retryAfterMs: transient ? retryAfterMs(error.headers) : undefined,
      cause: error,
    });
  }
  return error;
}
