/**
 * The OpenAI adapter, through the official SDK, for api.openai.com or any
 * OpenAI-compatible server (OPENAI_BASE_URL). The SDK's own retries are off:
 * retries are ours (src/llm/retry.ts in-call, the queue across attempts), so
 * that a Retry-After is honoured once and a job's timeout bounds everything.
 */
import type { Logger } from "../log";
import { createOpenAiEmbedder, openAiClient } from "./openai-embedder";
import { toLlmError } from "./openai-errors";
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

export function createOpenAiProvider(options: OpenAiProviderOptions): LlmProvider {
  const { model, embeddingModel, embeddingDim, logger, retry = DEFAULT_RETRY_POLICY } = options;
  const client = openAiClient({
    apiKey: options.apiKey,
    baseUrl: options.baseUrl,
    timeoutMs: options.requestTimeoutMs ?? 120_000,
  });
  const log = logger.child({ component: "llm", provider: "openai" });
  const onRetry = (error: LlmError, delayMs: number, attempt: number) =>
    log.warn({ code: error.code, error: error.message, delay_ms: delayMs, attempt }, "provider call failed; retrying");
  const embedder = createOpenAiEmbedder({
    name: "openai",
    client,
    model: embeddingModel,
    dim: embeddingDim,
    retry,
    onRetry,
  });

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
    embed: embedder.embed,
  };
}
