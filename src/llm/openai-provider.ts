/**
 * The OpenAI adapter, through the official SDK, for api.openai.com or any
 * OpenAI-compatible server (OPENAI_BASE_URL). The SDK's own retries are off:
 * retries are ours (src/llm/retry.ts in-call, the queue across attempts), so
 * that a Retry-After is honoured once and a job's timeout bounds everything.
 */
import OpenAI from "openai";
import type { Logger } from "../log";
import { type ChatRequest, type ChatResult, LlmError, type LlmProvider } from "./provider";
import { DEFAULT_RETRY_POLICY, type RetryPolicy, withRetry } from "./retry";

export interface OpenAiProviderOptions {
  apiKey: string;
  baseUrl?: string;
  model: string;
  embeddingModel: string;
  embeddingDim: number;
  logger: Logger;
  retry?: RetryPolicy;
  /** Per-request ceiling when the caller gives no signal, ms. */
  requestTimeoutMs?: number;
}

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

export function createOpenAiProvider(options: OpenAiProviderOptions): LlmProvider {
  const { model, embeddingModel, embeddingDim, logger, retry = DEFAULT_RETRY_POLICY } = options;
  const client = new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseUrl,
    maxRetries: 0,
    timeout: options.requestTimeoutMs ?? 120_000,
  });
  const log = logger.child({ component: "llm", provider: "openai" });
  const onRetry = (error: LlmError, delayMs: number, attempt: number) =>
    log.warn({ code: error.code, error: error.message, delay_ms: delayMs, attempt }, "provider call failed; retrying");

  return {
    name: "openai",
    embeddingModel,
    embeddingDim,
    async chat(request: ChatRequest): Promise<ChatResult> {
      const completion = await withRetry(
        () =>
          client.chat.completions
            .create(
              {
                model: request.model ?? model,
                messages: [
                  { role: "system", content: request.system },
                  { role: "user", content: request.user },
                ],
                temperature: request.temperature,
                max_completion_tokens: request.maxTokens,
              },
              { signal: request.signal },
            )
            .catch((error: unknown) => {
              throw toLlmError(error, "chat completion");
            }),
        retry,
        { signal: request.signal, onRetry },
      );
      const choice = completion.choices[0];
      const text = choice?.message.content;
      if (typeof text !== "string") {
        throw new LlmError("LLM_EMPTY_RESPONSE", "chat completion: the provider returned no message content", {
          retriable: true,
        });
      }
      const usage = completion.usage;
      return {
        text,
        model: completion.model,
        finishReason: choice?.finish_reason ?? "unknown",
        usage: {
          promptTokens: usage?.prompt_tokens ?? 0,
          completionTokens: usage?.completion_tokens ?? 0,
          totalTokens: usage?.total_tokens ?? 0,
        },
      };
    },
    async embed(texts, embedOptions = {}) {
      if (texts.length === 0) return [];
      const response = await withRetry(
        () =>
          client.embeddings
            .create(
              {
                model: embeddingModel,
                input: [...texts],
                // Only the text-embedding-3 family accepts `dimensions`; other models have a fixed size.
                ...(embeddingModel.startsWith("text-embedding-3") ? { dimensions: embeddingDim } : {}),
              },
              { signal: embedOptions.signal },
            )
            .catch((error: unknown) => {
              throw toLlmError(error, "embeddings");
            }),
        retry,
        { signal: embedOptions.signal, onRetry },
      );
      if (response.data.length !== texts.length) {
        throw new LlmError(
          "LLM_BAD_RESPONSE",
          `embeddings: asked for ${texts.length} vectors, the provider returned ${response.data.length}`,
          { retriable: true },
        );
      }
      const vectors = new Array<Float32Array>(texts.length);
      for (const item of response.data) {
        const vector = Float32Array.from(item.embedding as ArrayLike<number>);
        if (vector.length !== embeddingDim) {
          throw new LlmError(
            "LLM_BAD_RESPONSE",
            `embeddings: expected ${embeddingDim} dimensions (EMBEDDING_DIM), got ${vector.length}`,
            { retriable: false },
          );
        }
        vectors[item.index] = vector;
      }
      return vectors;
    },
  };
}
