/** Builds the configured LLM provider. */
import type { Config } from "../config";
import type { Logger } from "../log";
import { createOpenAiProvider } from "./openai-provider";
import type { LlmProvider } from "./provider";
import { createSimulatedProvider } from "./simulated-provider";

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
