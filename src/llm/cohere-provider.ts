/**
 * The Cohere adapter (issue 17 §1), through the official SDK's v2 API
 * (CohereClientV2: POST /v2/chat, streamed as server-sent events
 * message-start, content-delta, message-end; POST /v2/embed). The SDK's own
 * retries are off (maxRetries 0), as for the other adapters: ours decide.
 *
 * Its words become the product's: finish_reason COMPLETE → stop,
 * MAX_TOKENS → length; usage.tokens (what the model read and wrote) over
 * billed_units, and cached_tokens as the prompt's cached part.
 *
 * Its SDK's errors: an HTTP answer is a CohereError with statusCode and the
 * raw response's headers (Retry-After), a timeout a CohereTimeoutError, and
 * a connection that failed (or the caller's abort) a CohereError without a status.
 */
import { type Cohere, CohereClientV2, CohereError, CohereTimeoutError } from "cohere-ai";
import { type ChatRequest, type ChatResult, type Embedder, LlmError, type LlmProvider } from "./provider";
import { brokenStream, emptyResponse, httpFailure, timedOut, unreachable } from "./provider-errors";
import {
  type AdapterOptions,
  chatWithRetry,
  DEFAULT_RETRY_POLICY,
  logRetries,
  type RetryPolicy,
  withRetry,
} from "./retry";

export function toCohereError(error: unknown, what: string): unknown {
  if (error instanceof CohereTimeoutError) return timedOut(what, error);
  if (!(error instanceof CohereError)) return error;
  if (error.statusCode === undefined) return unreachable(what, error);
  const body = error.body as { message?: unknown } | undefined;
  const detail = typeof body?.message === "string" ? body.message : error.message;
  return httpFailure(what, error.statusCode, detail, error.rawResponse?.headers, error);
}

const FINISH_REASONS: Readonly<Record<string, string>> = {
  COMPLETE: "stop",
  STOP_SEQUENCE: "stop",
  MAX_TOKENS: "length",
  TOOL_CALL: "tool_calls",
};

export function cohereUsage(usage: Cohere.Usage | undefined): ChatResult["usage"] {
  const promptTokens = usage?.tokens?.inputTokens ?? usage?.billedUnits?.inputTokens ?? 0;
  const completionTokens = usage?.tokens?.outputTokens ?? usage?.billedUnits?.outputTokens ?? 0;
  return {
    promptTokens,
    completionTokens,
    totalTokens: promptTokens + completionTokens,
    cachedPromptTokens: usage?.cachedTokens ?? 0,
  };
}

/** baseUrl: COHERE_BASE_URL (the project's mock); undefined: api.cohere.com. */
export interface CohereProviderOptions extends AdapterOptions {
  /** Cohere's embedding model (embed-v4.0, embed-english-v3.0, ...) and its dimension. */
  embeddingModel: string;
  embeddingDim: number;
}

/** An SDK client with its own retries off. */
export function cohereClient(options: { apiKey: string; baseUrl: string | undefined; timeoutMs: number }) {
  return new CohereClientV2({
    token: options.apiKey,
    ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}),
    maxRetries: 0,
    timeoutInSeconds: Math.ceil(options.timeoutMs / 1000),
  });
}

const WHAT = "cohere chat";

export function createCohereEmbedder(options: {
  client: CohereClientV2;
  model: string;
  dim: number;
  retry?: RetryPolicy;
  onRetry?: (error: LlmError, delayMs: number, attempt: number) => void;
}): Embedder {
  const { client, model, dim, retry = DEFAULT_RETRY_POLICY, onRetry } = options;
  // embed-v4.0 and later take output_dimension; v3 models have a fixed size.
  const sized = /^embed-v[4-9]/.test(model) ? { outputDimension: dim } : {};
  return {
    name: "cohere",
    embeddingModel: model,
    embeddingDim: dim,
    async embed(texts, embedOptions = {}) {
      if (texts.length === 0) return [];
      const response = await withRetry(
        () =>
          client
            .embed(
              // Prompts are compared with prompts: both sides embedded as queries, as for the local model.
              { model, texts: [...texts], inputType: "search_query", embeddingTypes: ["float"], ...sized },
              { abortSignal: embedOptions.signal },
            )
            .catch((error: unknown) => {
              throw toCohereError(error, "cohere embed");
            }),
        retry,
        { signal: embedOptions.signal, onRetry },
      );
      const floats = response.embeddings.float ?? [];
      if (floats.length !== texts.length) {
        throw new LlmError(
          "LLM_BAD_RESPONSE",
          `cohere embed: asked for ${texts.length} vectors, the provider returned ${floats.length}`,
          { retriable: true },
        );
      }
      return floats.map((values) => {
        if (values.length !== dim) {
          throw new LlmError(
            "LLM_BAD_RESPONSE",
            `cohere embed: expected ${dim} dimensions (EMBEDDING_DIM), got ${values.length}`,
            { retriable: false },
          );
        }
        return Float32Array.from(values);
      });
    },
  };
}

export function createCohereProvider(options: CohereProviderOptions): LlmProvider {
  const { model, logger, retry = DEFAULT_RETRY_POLICY } = options;
  const client = cohereClient({
    apiKey: options.apiKey,
    baseUrl: options.baseUrl,
    timeoutMs: options.requestTimeoutMs ?? 120_000,
  });
  const onRetry = logRetries(logger, "cohere");
  const embedder = createCohereEmbedder({
    client,
    model: options.embeddingModel,
    dim: options.embeddingDim,
    retry,
    onRetry,
  });

  const paramsOf = (request: ChatRequest) => ({
    model: request.model ?? model,
    messages: [
      { role: "system" as const, content: request.system },
      { role: "user" as const, content: request.user },
    ],
    // Cohere's temperature is 0..1; the product's 0..2 is OpenAI's scale.
    temperature: Math.min(1, request.temperature),
    maxTokens: request.maxTokens,
  });
  const abortOf = (request: ChatRequest) => ({ abortSignal: request.signal });
  // A failure the caller's abort caused is the caller's to explain (its timeout), as with the other SDKs.
  const mapped = (request: ChatRequest, error: unknown) =>
    request.signal?.aborted ? error : toCohereError(error, WHAT);

  const complete = async (request: ChatRequest): Promise<ChatResult> => {
    const response = await client.chat(paramsOf(request), abortOf(request)).catch((error: unknown) => {
      throw mapped(request, error);
    });
    const text = (response.message.content ?? []).flatMap((item) => (item.type === "text" ? [item.text] : [])).join("");
    if (text === "") throw emptyResponse(WHAT);
    return {
      text,
      model: request.model ?? model,
      finishReason: FINISH_REASONS[response.finishReason] ?? response.finishReason.toLowerCase(),
      usage: cohereUsage(response.usage),
    };
  };

  const stream = async (request: ChatRequest, onToken: (text: string) => void): Promise<ChatResult> => {
    const events = await client.chatStream(paramsOf(request), abortOf(request)).catch((error: unknown) => {
      throw mapped(request, error);
    });
    const iterator = events[Symbol.asyncIterator]();
    let text = "";
    let finish: string | undefined;
    let usage: Cohere.Usage | undefined;
    for (;;) {
      let next: IteratorResult<Cohere.V2ChatStreamResponse>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw brokenStream(error, text.length, request.signal, WHAT, toCohereError);
      }
      if (next.done) break;
      const event = next.value;
      if (event.type === "content-delta") {
        const piece = event.delta?.message?.content?.text;
        if (piece) {
          text += piece;
          // Outside the try above: an error of the listener is a bug of ours, never a retriable provider failure.
          onToken(piece);
        }
      } else if (event.type === "message-end") {
        finish = event.delta?.finishReason ?? "COMPLETE";
        usage = event.delta?.usage;
      }
    }
    if (finish === undefined) {
      throw new LlmError("LLM_STREAM_INTERRUPTED", `${WHAT} stream: ended without message-end`, { retriable: true });
    }
    return {
      text,
      model: request.model ?? model,
      finishReason: FINISH_REASONS[finish] ?? finish.toLowerCase(),
      usage: cohereUsage(usage),
    };
  };

  return {
    name: "cohere",
    embeddingModel: embedder.embeddingModel,
    embeddingDim: embedder.embeddingDim,
    chat: (request) => chatWithRetry(request, retry, onRetry, complete, stream),
    embed: embedder.embed,
  };
}
