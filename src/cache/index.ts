/**
 * Builds the semantic cache of a process from the configuration: entries,
 * vector index, embedding batcher, KNN pipeline and single flight, plus what
 * the API needs to operate it (clear, delete one entry, health).
 */
import type Redis from "ioredis";
import type { Config } from "../config";
import type { EventBus } from "../events";
import type { HealthProbe } from "../health-probe";
import type { Embedder } from "../llm/provider";
import type { Logger } from "../log";
import { type CacheEntries, createCacheEntries } from "./cache-entries";
import { cacheKeys } from "./cache-key";
import { createEmbedBatcher } from "./embed-batcher";
import { createSemanticCache, type SemanticCache } from "./semantic-cache";
import { createSemanticLookup } from "./semantic-lookup";
import { createVectorIndex, type VectorIndex } from "./vector-index";

export interface CacheAdmin {
  readonly index: VectorIndex;
  /** Deletes every entry, or one task type's; returns how many. */
  clear(taskType?: string): Promise<number>;
  /** Deletes one entry by its id (`{hash}:{task_type}`); false when there was none. Throws on a malformed id. */
  remove(id: string): Promise<boolean>;
  /** /health: whether the semantic tier is available, with its index; never required. */
  probe(): HealthProbe;
}

export class InvalidCacheIdError extends Error {
  constructor(id: string) {
    super(`"${id}" is not a cache entry id ({32 hex digits}:{task_type})`);
    this.name = "InvalidCacheIdError";
  }
}

type CacheConfig = Config["cache"];

function createAdmin(redis: Redis, entries: CacheEntries, index: VectorIndex, prefix: string): CacheAdmin {
  const keys = cacheKeys(prefix);
  return {
    index,
    clear: (taskType) => entries.clear(taskType),
    async remove(id) {
      const key = keys.entryOfId(id);
      if (!key) throw new InvalidCacheIdError(id);
      return entries.remove(key);
    },
    probe: () => ({
      name: "semantic_cache",
      required: false,
      async check() {
        if (!index.status().available) await index.ensure();
        const status = index.status();
        if (!status.available) throw new Error(`semantic search unavailable (exact tier only): ${status.reason}`);
        const info = (await redis.call("FT.INFO", status.name)) as unknown[];
        const docs = info[info.indexOf("num_docs") + 1];
        return { index: status.name, algorithm: status.algorithm, dim: status.dim, entries: Number(docs ?? 0) };
      },
    }),
  };
}

function createStorage(redis: Redis, config: CacheConfig, embedding: { model: string; dim: number }) {
  const keys = cacheKeys(config.prefix);
  const entries = createCacheEntries({ redis, keys, ttlSeconds: config.ttlSeconds });
  const index = createVectorIndex({
    redis,
    keyPrefix: keys.indexPrefix,
    namePrefix: config.prefix,
    embeddingModel: embedding.model,
    dim: embedding.dim,
    algorithm: config.indexAlgorithm,
    efRuntime: config.efRuntime,
    ...(config.hybridPolicy ? { hybridPolicy: config.hybridPolicy } : {}),
  });
  return { keys, entries, index };
}

/** The index and entries alone: what the API process needs to clear and report. */
export function createCacheAdmin(deps: {
  redis: Redis;
  config: CacheConfig;
  embedding: { model: string; dim: number };
}): CacheAdmin {
  const { entries, index } = createStorage(deps.redis, deps.config, deps.embedding);
  return createAdmin(deps.redis, entries, index, deps.config.prefix);
}

/** The whole cache of a worker process. Call `ensure` once before use: it creates the vector index if it can. */
export function createCache(deps: {
  redis: Redis;
  config: CacheConfig;
  /** From EMBEDDING_PROVIDER: its model and dimension name the vector index. */
  embedder: Embedder;
  bus: EventBus;
  logger: Logger;
  /** The job timeout: followers wait for a single-flight leader at most this long (plus a lease). */
  jobTimeoutMs: number;
  /** The single-flight lock's lease, renewed by a live leader; what a crashed one costs the others. */
  lockLeaseMs?: number;
}): { cache: SemanticCache; admin: CacheAdmin; ensure(): Promise<boolean> } {
  const { redis, config, bus, logger } = deps;
  const { keys, entries, index } = createStorage(redis, config, {
    model: deps.embedder.embeddingModel,
    dim: deps.embedder.embeddingDim,
  });
  const embedder = createEmbedBatcher({
    provider: deps.embedder,
    bus,
    windowMs: config.embedBatch.windowMs,
    maxSize: config.embedBatch.maxSize,
    memoSize: config.embedBatch.memoSize,
    pricePerMTok: config.prices.embedding,
  });
  const semantic = createSemanticLookup({ embedder, index, bus, falseHitGuard: config.falseHitGuard });
  const cache = createSemanticCache({
    entries,
    keys,
    index,
    semantic,
    bus,
    logger: logger.child({ component: "cache" }),
    threshold: (taskType) => config.thresholds.get(taskType) ?? config.similarityThreshold,
    maxTemperature: config.maxTemperature,
    extendTtlOnHit: config.extendTtlOnHit,
    lockLeaseMs: deps.lockLeaseMs ?? 3000,
    maxFollowMs: deps.jobTimeoutMs + (deps.lockLeaseMs ?? 3000),
    prices: config.prices,
  });
  return {
    cache,
    admin: createAdmin(redis, entries, index, config.prefix),
    async ensure() {
      const ok = await index.ensure();
      if (!ok) {
        logger.warn(
          { index: index.status().name, reason: index.status().reason },
          "semantic search unavailable: the cache answers exact repeats only",
        );
      }
      return ok;
    },
  };
}
