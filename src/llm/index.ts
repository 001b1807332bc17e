/** Builds the configured LLM provider, and names the embedding space it writes. */
import type { Config } from "../config";
import type { Logger } from "../log";
import { createOpenAiProvider } from "./openai-provider";
import type { LlmProvider } from "./provider";
import { createSimulatedProvider, simulatedEmbeddingModel } from "./simulated-provider";

export function createLlmProvider(
  llm: Config["llm"],
  options: { logger: Logger; simulatedLatencyMs: Config["simulatedLatencyMs"] },
): LlmProvider {
  if (llm.provider === "openai") {
    // Config validation guarantees a key for the openai provider; this keeps the type honest.
    if (!llm.apiKey) throw new Error("LLM_PROVIDER=openai needs OPENAI_API_KEY");
    return createOpenAiProvider({
      apiKey: llm.apiKey,
      baseUrl: llm.baseUrl,
      model: llm.model,
      embeddingModel: llm.embeddingModel,
      embeddingDim: llm.embeddingDim,
      logger: options.logger,
    });
  }
  return createSimulatedProvider({ latencyMs: options.simulatedLatencyMs, embeddingDim: llm.embeddingDim });
}

/**
 * The embedding model and dimension the configured provider writes: what names
 * the cache's vector index. Every role derives it here, so the API's /health
 * and DELETE /cache/clear reach the index the workers fill (the API role used
 * to take EMBEDDING_MODEL, which the simulated provider does not use, and
 * created an empty index of that name beside the real one).
 */
export function embeddingSpaceOf(llm: Config["llm"]): { model: string; dim: number } {
  return llm.provider === "openai"
    ? { model: llm.embeddingModel, dim: llm.embeddingDim }
    : { model: simulatedEmbeddingModel(llm.embeddingDim), dim: llm.embeddingDim };
}
