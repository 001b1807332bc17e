/**
 * The OpenAI adapter, through the official SDK, for api.openai.com or any
 * OpenAI-compatible server (OPENAI_BASE_URL). The SDK's own retries are off:
 * retries are ours (src/llm/retry.ts in-call, the queue across attempts), so
 * that a Retry-After is honoured once and a job's timeout bounds everything.
 * A request with onToken is streamed (issue 15 §2); one without is not, so
 * the non-streaming path parses one JSON body as before.
 */
import type OpenAI from "openai";
import { createOpenAiEmbedder, openAiClient } from "./openai-embedder";
import { toLlmError } from "./openai-errors";
import type { ChatRequest, ChatResult, LlmProvider } from "./provider";
import { brokenStream, emptyResponse } from "./provider-errors";
import { type AdapterOptions, chatWithRetry, DEFAULT_RETRY_POLICY, logRetries } from "./retry";

export interface OpenAiProviderOptions extends AdapterOptions {
  embeddingModel: string;
  embeddingDim: number;
  /** A chat call got a 429 that is retried in the call (one thrown to the caller is reported by the caller). */
  onThrottled?: () => void;
}

export function createOpenAiProvider(options: OpenAiProviderOptions): LlmProvider {
  const { model, embeddingModel, embeddingDim, logger, retry = DEFAULT_RETRY_POLICY } = options;
  const client = openAiClient({
    apiKey: options.apiKey,
    baseUrl: options.baseUrl,
    timeoutMs: options.requestTimeoutMs ?? 120_000,
  });
  const logged = logRetries(logger, "openai");
  const onRetry = logged;
  // The adaptive worker backs off on 429s; those retried inside the call are only seen here.
  const onChatRetry: typeof logged = (error, delayMs, attempt) => {
    if (error.providerStatus === 429) options.onThrottled?.();
    logged(error, delayMs, attempt);
  };
  const embedder = createOpenAiEmbedder({
    name: "openai",
    client,
    model: embeddingModel,
    dim: embeddingDim,
    retry,
    onRetry,
  });

  /** The request's body, streamed or not. */
  const paramsOf = (request: ChatRequest) => ({
    model: request.model ?? model,
    messages: [
      { role: "system" as const, content: request.system },
      { role: "user" as const, content: request.user },
    ],
    temperature: request.temperature,
    max_completion_tokens: request.maxTokens,
  });

  const complete = async (request: ChatRequest): Promise<ChatResult> => {
    const completion = await client.chat.completions
      .create(paramsOf(request), { signal: request.signal })
      .catch((error: unknown) => {
        throw toLlmError(error, "chat completion");
      });
    const choice = completion.choices[0];
    const text = choice?.message.content;
    if (typeof text !== "string") throw emptyResponse("chat completion");
    return {
      text,
      model: completion.model,
      finishReason: choice?.finish_reason ?? "unknown",
      usage: usageOf(completion.usage),
    };
  };

  /**
   * The same call with `stream: true`: each content delta goes to onToken as
   * it arrives, and the final chunk (stream_options.include_usage) carries the
   * usage. A stream that breaks off after it began is retriable: the retry
   * starts the answer over (onReset).
   */
  const stream = async (request: ChatRequest, onToken: (text: string) => void): Promise<ChatResult> => {
    const chunks = await client.chat.completions
      .create(
        { ...paramsOf(request), stream: true, stream_options: { include_usage: true } },
        { signal: request.signal },
      )
      .catch((error: unknown) => {
        throw toLlmError(error, "chat completion");
      });
    const iterator = chunks[Symbol.asyncIterator]();
    let text = "";
    let answered = false;
    let finishReason = "unknown";
    let modelName = request.model ?? model;
    let usage: ChatResult["usage"] | undefined;
    for (;;) {
      let next: IteratorResult<OpenAI.ChatCompletionChunk>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw brokenStream(error, text.length, request.signal, "chat completion", toLlmError);
      }
      if (next.done) break;
      const chunk = next.value;
      modelName = chunk.model || modelName;
      if (chunk.usage) usage = usageOf(chunk.usage);
      const choice = chunk.choices[0];
      if (!choice) continue;
      answered = true;
      if (choice.finish_reason) finishReason = choice.finish_reason;
      const piece = choice.delta?.content;
      if (piece) {
        text += piece;
        // Outside the try above: an error of the listener is a bug of ours, never a retriable provider failure.
        onToken(piece);
      }
    }
    if (!answered) throw emptyResponse("chat completion");
    return { text, model: modelName, finishReason, usage: usage ?? usageOf(undefined) };
  };

  return {
    name: "openai",
    embeddingModel,
    embeddingDim,
    chat: (request) => chatWithRetry(request, retry, onChatRetry, complete, stream),
    embed: embedder.embed,
  };
}

function usageOf(usage: OpenAI.CompletionUsage | null | undefined): ChatResult["usage"] {
  return {
    promptTokens: usage?.prompt_tokens ?? 0,
    completionTokens: usage?.completion_tokens ?? 0,
    totalTokens: usage?.total_tokens ?? 0,
    cachedPromptTokens: usage?.prompt_tokens_details?.cached_tokens ?? 0,
  };
}
