/** Builds the configured LLM provider and embedder, and names the embedding space the embedder writes. */
import type Redis from "ioredis";
import { type Config, type LlmProviderName, LOCAL_EMBEDDINGS_URL } from "../config";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import { createCircuitBreaker, NO_BREAKER } from "./circuit-breaker";
import { createLocalEmbedder } from "./local-embedder";
import { createModelRouter } from "./model-router";
import { createModelRoutes, type ModelRoutes, modelKey, parseModel } from "./model-routes";
import { createOpenAiEmbedder, openAiClient } from "./openai-embedder";
import { createOpenAiProvider } from "./openai-provider";
import { loadPrices, type ModelPrice } from "./prices";
import type { Embedder, LlmProvider } from "./provider";
import { createRateLimiter } from "./rate-limiter";
import { logRetries } from "./retry";
import { createSimulatedProvider, simulatedEmbeddingModel } from "./simulated-provider";

/**
 * An adapter whose SDK is loaded at its first call: cohere-ai alone adds
 * about 0.2 s to a process's start (0.5 s on a busy machine), which every
 * worker process (and every recycle) would pay for a provider it may never call.
 */
function deferred<T extends Embedder>(
  name: string,
  space: { model: string; dim: number },
  load: () => Promise<T>,
): T extends LlmProvider ? LlmProvider : Embedder;
function deferred(
  name: string,
  space: { model: string; dim: number },
  load: () => Promise<Embedder & Partial<LlmProvider>>,
): LlmProvider {
  let adapter: ReturnType<typeof load> | undefined;
  const get = () => {
    adapter ??= load();
    return adapter;
  };
  return {
    name,
    embeddingModel: space.model,
    embeddingDim: space.dim,
    async chat(request) {
      const loaded = await get();
      if (!loaded.chat) throw new Error(`${name}: this adapter does not chat`);
      return loaded.chat(request);
    },
    embed: async (texts, options) => (await get()).embed(texts, options),
  };
}

interface AdapterOptions {
  logger: Logger;
  simulatedLatencyMs: Config["simulatedLatencyMs"];
  simulatedTokenLatencyMs?: number;
  embedding: Config["embedding"];
  /** A provider answered 429 to a chat call it retries itself (the adaptive worker backs off on it). */
  onThrottled?: () => void;
}

/** One adapter per provider that has a key (and the simulated one), by name. */
function createAdapters(llm: Config["llm"], options: AdapterOptions): Map<LlmProviderName, LlmProvider> {
  const { embedding, logger } = options;
  const requestTimeoutMs = llm.requestTimeoutMs;
  const adapters = new Map<LlmProviderName, LlmProvider>();
  if (llm.apiKey) {
    adapters.set(
      "openai",
      createOpenAiProvider({
        apiKey: llm.apiKey,
        baseUrl: llm.baseUrl,
        model: llm.model,
        embeddingModel: embedding.model,
        embeddingDim: embedding.dim,
        logger,
        requestTimeoutMs,
        ...(options.onThrottled ? { onThrottled: options.onThrottled } : {}),
      }),
    );
  }
  if (llm.anthropic.apiKey) {
    const apiKey = llm.anthropic.apiKey;
    adapters.set(
      "anthropic",
      deferred("anthropic", { model: "none", dim: 0 }, async () =>
        (await import("./anthropic-provider")).createAnthropicProvider({
          apiKey,
          baseUrl: llm.anthropic.baseUrl,
          model: llm.model,
          logger,
          requestTimeoutMs,
        }),
      ),
    );
  }
  if (llm.cohere.apiKey) {
    const apiKey = llm.cohere.apiKey;
    const space = embedding.provider === "cohere" ? embedding : { model: "embed-v4.0", dim: 1024 };
    adapters.set(
      "cohere",
      deferred("cohere", space, async () =>
        (await import("./cohere-provider")).createCohereProvider({
          apiKey,
          baseUrl: llm.cohere.baseUrl,
          model: llm.model,
          embeddingModel: space.model,
          embeddingDim: space.dim,
          logger,
          requestTimeoutMs,
        }),
      ),
    );
  }
  adapters.set(
    "simulated",
    createSimulatedProvider({
      latencyMs: options.simulatedLatencyMs,
      tokenLatencyMs: options.simulatedTokenLatencyMs ?? 0,
      embeddingDim: embedding.dim,
    }),
  );
  return adapters;
}

/**
 * The chat provider the workers call: the model router (model-router.ts) in
 * front of every provider with a key, so that a model string picks its
 * provider, a failing model falls back along its chain, and each answer says
 * who answered and what it cost. Without Redis (unit tests) it has no
 * breaker and no per-model limits.
 */
export function createLlmProvider(
  llm: Config["llm"],
  options: AdapterOptions & {
    redis?: Redis;
    bus?: EventBus;
    /** The flat prices of a model missing from the price table (LLM_PRICE_*_PER_MTOK). */
    unknownPrice?: ModelPrice;
    routes?: ModelRoutes;
  },
): LlmProvider {
  const { redis } = options;
  const routes = options.routes ?? createModelRoutes(llm);
  const limiters = new Map(
    redis
      ? [...llm.modelRateLimits].map(([model, limit]) => {
          const key = modelKey(parseModel(model, llm.provider));
          return [key, createRateLimiter({ redis, limit, key: `llm:ratelimit:${key}` })] as const;
        })
      : [],
  );
  return createModelRouter({
    providers: createAdapters(llm, options),
    defaultProvider: llm.provider,
    defaultModel: llm.model,
    parse: (model) => parseModel(model, llm.provider),
    chainOf: routes.chainOf,
    limiterOf: (key) => limiters.get(key),
    breaker: redis
      ? createCircuitBreaker({ redis, failures: llm.breaker.failures, cooldownMs: llm.breaker.cooldownMs })
      : NO_BREAKER,
    prices: loadPrices(llm.pricesFile),
    unknownPrice: options.unknownPrice ?? { input: 0, output: 0 },
    bus: options.bus,
    logger: options.logger,
  });
}

/** The semantic cache's embeddings, from EMBEDDING_PROVIDER: apart from chat (issue 14). */
export function createEmbedder(
  embedding: Config["embedding"],
  options: { apiKey: string | undefined; cohereApiKey?: string | undefined; logger: Logger },
): Embedder {
  switch (embedding.provider) {
    case "openai": {
      // Config validation guarantees a key for the openai embeddings; this keeps the type honest.
      if (!options.apiKey) throw new Error("EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY");
      return createOpenAiEmbedder({
        name: "openai",
        client: openAiClient({ apiKey: options.apiKey, baseUrl: embedding.baseUrl, timeoutMs: 60_000 }),
        model: embedding.model,
        dim: embedding.dim,
        onRetry: logRetries(options.logger, "openai", "embeddings failed; retrying"),
      });
    }
    case "cohere": {
      // Config validation guarantees a key for Cohere's embeddings; this keeps the type honest.
      if (!options.cohereApiKey) throw new Error("EMBEDDING_PROVIDER=cohere needs COHERE_API_KEY");
      const apiKey = options.cohereApiKey;
      return deferred("cohere", embedding, async () => {
        const { cohereClient, createCohereEmbedder } = await import("./cohere-provider");
        return createCohereEmbedder({
          client: cohereClient({ apiKey, baseUrl: embedding.baseUrl, timeoutMs: 60_000 }),
          model: embedding.model,
          dim: embedding.dim,
          onRetry: logRetries(options.logger, "cohere", "embeddings failed; retrying"),
        });
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
