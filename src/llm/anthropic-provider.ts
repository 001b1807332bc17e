/**
 * The Anthropic adapter (issue 17 §1), through the official SDK and its
 * Messages API: the system prompt goes in `system`, the text as the one user
 * message; a request with onToken is streamed (message_start carries the
 * input usage, content_block_delta the text, message_delta the stop reason
 * and output usage). The SDK's own retries are off, as for OpenAI: retries
 * are ours (retry.ts in-call, the model router's fallbacks, the queue).
 *
 * Anthropic has no embeddings API: the semantic cache's embeddings come from
 * EMBEDDING_PROVIDER, apart from chat (issue 14), so `embed` refuses.
 *
 * Its words become the product's: stop_reason end_turn → stop, max_tokens →
 * length (the cache admits only `stop`); input_tokens counts only what was
 * not read from or written to the prompt cache, so the prompt tokens are
 * the three added, and cache_read_input_tokens are the cached ones.
 */
import Anthropic from "@anthropic-ai/sdk";
import { type ChatRequest, type ChatResult, LlmError, type LlmProvider } from "./provider";
import { brokenStream, emptyResponse, stainlessErrorMapper } from "./provider-errors";
import { type AdapterOptions, chatWithRetry, DEFAULT_RETRY_POLICY, logRetries } from "./retry";

export const toAnthropicError = stainlessErrorMapper(Anthropic);

/** baseUrl: ANTHROPIC_BASE_URL (the project's mock, or a gateway); undefined: api.anthropic.com. */
export type AnthropicProviderOptions = AdapterOptions;

const STOP_REASONS: Readonly<Record<string, string>> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  tool_use: "tool_calls",
  refusal: "content_filter",
};

type AnthropicUsage = {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
};

export function anthropicUsage(usage: AnthropicUsage | undefined): ChatResult["usage"] {
  const cached = usage?.cache_read_input_tokens ?? 0;
  const promptTokens = (usage?.input_tokens ?? 0) + cached + (usage?.cache_creation_input_tokens ?? 0);
  const completionTokens = usage?.output_tokens ?? 0;
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedPromptTokens: cached };
}

const WHAT = "anthropic messages";

export function createAnthropicProvider(options: AnthropicProviderOptions): LlmProvider {
  const { model, logger, retry = DEFAULT_RETRY_POLICY } = options;
  const client = new Anthropic({
    apiKey: options.apiKey,
    baseURL: options.baseUrl,
    maxRetries: 0,
    timeout: options.requestTimeoutMs ?? 120_000,
  });
  const onRetry = logRetries(logger, "anthropic");

  const paramsOf = (request: ChatRequest) => ({
    model: request.model ?? model,
    system: request.system,
    messages: [{ role: "user" as const, content: request.user }],
    // Anthropic's temperature is 0..1; the product's 0..2 is OpenAI's scale.
    temperature: Math.min(1, request.temperature),
    max_tokens: request.maxTokens,
  });

  const complete = async (request: ChatRequest): Promise<ChatResult> => {
    const message = await client.messages
      .create({ ...paramsOf(request), stream: false }, { signal: request.signal })
      .catch((error: unknown) => {
        throw toAnthropicError(error, WHAT);
      });
    const texts = message.content.flatMap((block) => (block.type === "text" ? [block.text] : []));
    if (texts.length === 0) throw emptyResponse(WHAT);
    return {
      text: texts.join(""),
      model: message.model,
      finishReason: STOP_REASONS[message.stop_reason ?? ""] ?? message.stop_reason ?? "unknown",
      usage: anthropicUsage(message.usage),
    };
  };

  const stream = async (request: ChatRequest, onToken: (text: string) => void): Promise<ChatResult> => {
    const events = await client.messages
      .create({ ...paramsOf(request), stream: true }, { signal: request.signal })
      .catch((error: unknown) => {
        throw toAnthropicError(error, WHAT);
      });
    const iterator = events[Symbol.asyncIterator]();
    let text = "";
    let modelName = request.model ?? model;
    let stopReason: string | null = null;
    let usage: AnthropicUsage = {};
    let stopped = false;
    for (;;) {
      let next: IteratorResult<Anthropic.RawMessageStreamEvent>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw brokenStream(error, text.length, request.signal, WHAT, toAnthropicError);
      }
      if (next.done) break;
      const event = next.value;
      switch (event.type) {
        case "message_start":
          modelName = event.message.model || modelName;
          usage = { ...event.message.usage };
          break;
        case "content_block_delta":
          if (event.delta.type === "text_delta" && event.delta.text) {
            text += event.delta.text;
            // Outside the try above: an error of the listener is a bug of ours, never a retriable provider failure.
            onToken(event.delta.text);
          }
          break;
        case "message_delta":
          stopReason = event.delta.stop_reason ?? stopReason;
          // The delta's counts are cumulative; a null keeps the count message_start gave.
          for (const [key, value] of Object.entries(event.usage)) {
            if (typeof value === "number") (usage as Record<string, number>)[key] = value;
          }
          break;
        case "message_stop":
          stopped = true;
          break;
      }
    }
    if (!stopped) {
      throw new LlmError("LLM_STREAM_INTERRUPTED", `${WHAT} stream: ended without message_stop`, { retriable: true });
    }
    if (text === "" && stopReason === null) throw emptyResponse(WHAT);
    return {
      text,
      model: modelName,
      finishReason: STOP_REASONS[stopReason ?? ""] ?? stopReason ?? "unknown",
      usage: anthropicUsage(usage),
    };
  };

  return {
    name: "anthropic",
    embeddingModel: "none",
    embeddingDim: 0,
    chat: (request) => chatWithRetry(request, retry, onRetry, complete, stream),
    async embed() {
      throw new LlmError("LLM_NOT_SUPPORTED", "anthropic has no embeddings API: set EMBEDDING_PROVIDER", {
        retriable: false,
      });
    },
  };
}
