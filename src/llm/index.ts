/** Builds the configured LLM provider and embedder, and names the embedding space the embedder writes. */
import { type Config, LOCAL_EMBEDDINGS_URL } from "../config";
import type { Logger } from "../log";
import { createLocalEmbedder } from "./local-embedder";
import { createOpenAiEmbedder, openAiClient } from "./openai-embedder";
import { createOpenAiProvider } from "./openai-provider";
import type { Embedder, LlmProvider } from "./provider";
import { createSimulatedProvider, simulatedEmbeddingModel } from "./simulated-provider";

export function createLlmProvider(
  llm: Config["llm"],
  options: {
    logger: Logger;
    simulatedLatencyMs: Config["simulatedLatencyMs"];
    simulatedTokenLatencyMs?: number;
    embedding: Config["embedding"];
    /** The provider answered 429 to a chat call it retries itself. */
    onThrottled?: () => void;
  },
): LlmProvider {
  const { embedding } = options;
  if (llm.provider === "openai") {
    // Config validation guarantees a key for the openai provider; this keeps the type honest.
    if (!llm.apiKey) throw new Error("LLM_PROVIDER=openai needs OPENAI_API_KEY");
    return createOpenAiProvider({
      apiKey: llm.apiKey,
      baseUrl: llm.baseUrl,
      model: llm.model,
      embeddingModel: embedding.model,
      embeddingDim: embedding.dim,
      logger: options.logger,
      ...(options.onThrottled ? { onThrottled: options.onThrottled } : {}),
    });
  }
  return createSimulatedProvider({
    latencyMs: options.simulatedLatencyMs,
    tokenLatencyMs: options.simulatedTokenLatencyMs ?? 0,
    embeddingDim: embedding.dim,
  });
}

/** The semantic cache's embeddings, from EMBEDDING_PROVIDER: apart from chat (issue 14). */
export function createEmbedder(
  embedding: Config["embedding"],
  options: { apiKey: string | undefined; logger: Logger },
): Embedder {
  switch (embedding.provider) {
    case "openai": {
      // Config validation guarantees a key for the openai embeddings; this keeps the type honest.
      if (!options.apiKey) throw new Error("EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY");
      const log = options.logger.child({ component: "llm", provider: "openai" });
      return createOpenAiEmbedder({
        name: "openai",
        client: openAiClient({ apiKey: options.apiKey, baseUrl: embedding.baseUrl, timeoutMs: 60_000 }),
        model: embedding.model,
        dim: embedding.dim,
        onRetry: (error, delayMs, attempt) =>
          log.warn(
            { code: error.code, error: error.message, delay_ms: delayMs, attempt },
            "embeddings failed; retrying",
          ),
      });
    }
    case "local":
      return createLocalEmbedder({
        baseUrl: embedding.baseUrl ?? LOCAL_EMBEDDINGS_URL,
        model: embedding.model,
        dim: embedding.dim,
        logger: options.logger,
      });
    case "simulated":
      return createSimulatedProvider({ embeddingDim: embedding.dim });
  }
}

/**
 * The embedding model and dimension the configured embedder writes: what names
 * the cache's vector index. Every role derives it here, so the API's /health
 * and DELETE /cache/clear reach the index the workers fill (the API role used
 * to take EMBEDDING_MODEL, which the simulated provider does not use, and
 * created an empty index of that name beside the real one).
 */
export function embeddingSpaceOf(embedding: Config["embedding"]): { model: string; dim: number } {
  return embedding.provider === "simulated"
    ? { model: simulatedEmbeddingModel(embedding.dim), dim: embedding.dim }
    : { model: embedding.model, dim: embedding.dim };
}
