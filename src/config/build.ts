/**
 * The checked environment turned into `Config`: lists split, rate limits and
 * latency ranges parsed, defaults that depend on another variable chosen (the
 * provider, its embedding dimension, the cache's Redis, the queues workers
 * consume). Runs only on an environment that passed every check, so nothing
 * here reports a problem.
 */

import { availableParallelism } from "node:os";
import { BASE_QUEUES } from "../task/routing";
import { type LatencyDistribution, parseLatency } from "../util/latency";
import type { Env } from "./schema";
import {
  type AllowedModels,
  type ApiKey,
  type Config,
  type EmbeddingProviderName,
  type LlmProviderName,
  LOCAL_EMBEDDING_MODEL,
  LOCAL_EMBEDDINGS_URL,
  type RateLimit,
  type Role,
} from "./types";

/** Embedding dimension when EMBEDDING_DIM is unset: text-embedding-3-small's, e5-small's, the simulated provider's. */
const DEFAULT_EMBEDDING_DIM = { openai: 1536, cohere: 1024, local: 384, simulated: 384 } as const;
/** The simulated provider names its own space (simulated-lexical-DIM) whatever EMBEDDING_MODEL says. */
const DEFAULT_EMBEDDING_MODEL = {
  openai: "text-embedding-3-small",
  cohere: "embed-v4.0",
  local: LOCAL_EMBEDDING_MODEL,
  simulated: "simulated-lexical",
} as const;

/** The longest wait between two attempts of a webhook (issue 15 §4: retries over hours, at least hourly). */
const WEBHOOK_RETRY_MAX_MS = 3_600_000;

/** Kafka fetch size per partition; not a setting. */
const MAX_BYTES_PER_PARTITION = 1_048_576;

const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export function parseRateLimit(spec: string): RateLimit | undefined {
  if (spec === "") return undefined;
  const match = /^([0-9]+)\/([0-9]+)(ms|s|m|h)$/.exec(spec);
  if (!match) return undefined; // unreachable: the schema's pattern already matched
  const [, calls, amount, unit] = match as unknown as [string, string, string, keyof typeof DURATION_MS];
  return { calls: Number(calls), periodMs: Number(amount) * DURATION_MS[unit] };
}

/** The queues this process's workers consume: WORKER_QUEUES, or every queue a route can send to. */
function workerQueues(spec: string, routes: ReadonlyMap<string, string>): string[] {
  if (spec !== "") return [...new Set(spec.split(","))];
  return [...new Set([...BASE_QUEUES, ...routes.values()])];
}

function latencyRange(spec: string): LatencyDistribution {
  // load.ts refused a spec parseLatency does not read.
  return parseLatency(spec) ?? { min: 0, max: 0 };
}

function pairs(spec: string): [string, string][] {
  return spec === "" ? [] : spec.split(",").map((pair) => pair.split("=") as [string, string]);
}

const isTrue = (value: string) => value === "true" || value === "1";

/** LLM_FALLBACKS: each chain's first model → the models tried after it. */
function fallbackChains(spec: string): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  if (spec === "") return chains;
  for (const chain of spec.split(",")) {
    const [head, ...rest] = chain.split(">") as [string, ...string[]];
    chains.set(head, rest);
  }
  return chains;
}

/** LLM_ALLOWED_MODELS: `model` for every tenant, `tenant=model` for one; empty: undefined (any model). */
function allowedModels(spec: string): AllowedModels | undefined {
  if (spec === "") return undefined;
  const everyone = new Set<string>();
  const byTenant = new Map<string, Set<string>>();
  for (const entry of spec.split(",")) {
    const at = entry.indexOf("=");
    if (at < 0) everyone.add(entry);
    else {
      const tenant = entry.slice(0, at);
      byTenant.set(tenant, (byTenant.get(tenant) ?? new Set()).add(entry.slice(at + 1)));
    }
  }
  return { everyone, byTenant };
}

/** LLM_MODEL_RATE_LIMITS: model → its limit (the pattern matched, so every rate parses). */
function modelRateLimits(spec: string): Map<string, RateLimit> {
  const limits = new Map<string, RateLimit>();
  for (const [model, rate] of pairs(spec)) {
    const limit = parseRateLimit(rate);
    if (limit) limits.set(model, limit);
  }
  return limits;
}

export function buildConfig(env: Env, apiKeys: readonly ApiKey[]): Config {
  const routes = new Map(pairs(env.TASK_ROUTES));
  const provider: LlmProviderName = env.LLM_PROVIDER ?? (env.OPENAI_API_KEY ? "openai" : "simulated");
  // Unset: a base URL alone means a local OpenAI-compatible embeddings server; otherwise embeddings follow
  // the chat provider, as they did before EMBEDDING_PROVIDER existed (issue 14); Anthropic has no
  // embeddings API, so with it they stay simulated unless EMBEDDING_PROVIDER says otherwise.
  const embeddingProvider: EmbeddingProviderName =
    env.EMBEDDING_PROVIDER ?? (env.EMBEDDING_BASE_URL ? "local" : provider === "anthropic" ? "simulated" : provider);
  const embeddingBaseUrl = {
    openai: env.EMBEDDING_BASE_URL ?? env.OPENAI_BASE_URL,
    cohere: env.EMBEDDING_BASE_URL ?? env.COHERE_BASE_URL,
    local: env.EMBEDDING_BASE_URL ?? LOCAL_EMBEDDINGS_URL,
    simulated: undefined,
  }[embeddingProvider];
  return {
    port: env.PORT,
    roles: new Set(env.ROLES.split(",") as Role[]),
    redisUrl: env.REDIS_URL,
    kafka: {
      brokers: env.KAFKA_BROKERS.split(","),
      topicIn: env.KAFKA_TOPIC_IN,
      topicOut: env.KAFKA_TOPIC_OUT === "" ? undefined : env.KAFKA_TOPIC_OUT,
      dlqTopic: `${env.KAFKA_TOPIC_IN}.dlq`,
      groupId: env.KAFKA_GROUP_ID,
      tenant: env.KAFKA_TENANT === "" ? undefined : env.KAFKA_TENANT,
      consumerThreads: env.KAFKA_CONSUMER_THREADS,
      partitionsConcurrently: env.KAFKA_PARTITIONS_AT_ONCE,
      batchSize: env.KAFKA_BATCH_SIZE,
      queueHighWatermark: env.KAFKA_QUEUE_HIGH_WATERMARK,
      queueLowWatermark: env.KAFKA_QUEUE_LOW_WATERMARK,
      rateLimitPauseMs: env.KAFKA_RATE_LIMIT_PAUSE_MS,
      dedupTtlSeconds: env.KAFKA_DEDUP_TTL_SECONDS,
      sessionTimeoutMs: env.KAFKA_SESSION_TIMEOUT_MS,
      maxBytesPerPartition: MAX_BYTES_PER_PARTITION,
      resultLingerMs: env.KAFKA_RESULT_LINGER_MS,
    },
    worker: {
      processes: env.WORKER_CONCURRENCY === "auto" ? availableParallelism() : Number(env.WORKER_CONCURRENCY),
      jobsPerProcess: env.WORKER_JOBS_PER_PROCESS === "auto" ? "auto" : Number(env.WORKER_JOBS_PER_PROCESS),
      maxJobsPerProcess: env.WORKER_MAX_JOBS_PER_PROCESS,
      queues: workerQueues(env.WORKER_QUEUES, routes),
      maxJobs: env.WORKER_MAX_JOBS,
      maxMemoryMb: env.WORKER_MAX_MEMORY_MB,
      jobTimeoutMs: env.JOB_TIMEOUT_MS,
      retries: env.JOB_RETRIES,
      backoffMs: env.JOB_BACKOFF_MS,
      stallIntervalMs: env.JOB_STALL_INTERVAL_MS,
      failedJobs: { keep: env.JOB_FAILED_KEEP, maxAgeMs: env.JOB_FAILED_MAX_AGE_SECONDS * 1000 },
    },
    routes,
    promptsFile: env.PROMPTS_FILE === "" ? undefined : env.PROMPTS_FILE,
    simulatedLatencyMs: latencyRange(env.SIMULATED_LATENCY_MS),
    simulatedTokenLatencyMs: env.SIMULATED_TOKEN_LATENCY_MS,
    maxBodyBytes: env.MAX_BODY_BYTES,
    llm: {
      provider,
      apiKey: env.OPENAI_API_KEY,
      baseUrl: env.OPENAI_BASE_URL,
      anthropic: { apiKey: env.ANTHROPIC_API_KEY, baseUrl: env.ANTHROPIC_BASE_URL },
      cohere: { apiKey: env.COHERE_API_KEY, baseUrl: env.COHERE_BASE_URL },
      model: env.LLM_MODEL,
      rateLimit: parseRateLimit(env.LLM_RATE_LIMIT),
      rateBurst: env.LLM_RATE_BURST,
      routes: new Map(pairs(env.LLM_ROUTES)),
      routesFile: env.LLM_ROUTES_FILE === "" ? undefined : env.LLM_ROUTES_FILE,
      fallbacks: fallbackChains(env.LLM_FALLBACKS),
      allowedModels: allowedModels(env.LLM_ALLOWED_MODELS),
      modelRateLimits: modelRateLimits(env.LLM_MODEL_RATE_LIMITS),
      breaker: { failures: env.LLM_BREAKER_FAILURES, cooldownMs: env.LLM_BREAKER_COOLDOWN_MS },
      pricesFile: env.LLM_PRICES_FILE === "" ? undefined : env.LLM_PRICES_FILE,
      requestTimeoutMs: env.LLM_REQUEST_TIMEOUT_MS,
    },
    embedding: {
      provider: embeddingProvider,
      baseUrl: embeddingBaseUrl,
      model: env.EMBEDDING_MODEL ?? DEFAULT_EMBEDDING_MODEL[embeddingProvider],
      dim: env.EMBEDDING_DIM ?? DEFAULT_EMBEDDING_DIM[embeddingProvider],
    },
    cache: {
      redisUrl: env.CACHE_REDIS_URL ?? env.REDIS_URL,
      prefix: env.CACHE_PREFIX,
      similarityThreshold: env.CACHE_SIMILARITY_THRESHOLD,
      thresholds: new Map(pairs(env.CACHE_SIMILARITY_THRESHOLDS).map(([taskType, value]) => [taskType, Number(value)])),
      ttlSeconds: env.CACHE_TTL_SECONDS,
      extendTtlOnHit: isTrue(env.CACHE_TTL_EXTEND_ON_HIT),
      maxTemperature: env.CACHE_MAX_TEMPERATURE,
      indexAlgorithm: env.CACHE_INDEX_ALGORITHM,
      efRuntime: env.CACHE_HNSW_EF_RUNTIME,
      hybridPolicy: env.CACHE_HYBRID_POLICY === "auto" ? undefined : env.CACHE_HYBRID_POLICY,
      falseHitGuard: isTrue(env.CACHE_FALSE_HIT_GUARD),
      embedBatch: { windowMs: env.EMBED_BATCH_WINDOW_MS, maxSize: env.EMBED_BATCH_MAX, memoSize: env.EMBED_MEMO_SIZE },
      prices: {
        input: env.LLM_PRICE_INPUT_PER_MTOK,
        output: env.LLM_PRICE_OUTPUT_PER_MTOK,
        embedding: env.EMBEDDING_PRICE_PER_MTOK,
      },
    },
    resultTtlSeconds: env.RESULT_TTL_SECONDS,
    resultKeepInput: isTrue(env.RESULT_KEEP_INPUT),
    fineTune: {
      exampleTtlSeconds: env.FINETUNE_EXAMPLE_TTL_DAYS * 86_400,
      maxExamples: env.FINETUNE_MAX_EXAMPLES,
      pollMinMs: env.FINETUNE_POLL_MIN_MS,
      // A maximum below the minimum would shorten the waits it bounds: the minimum wins.
      pollMaxMs: Math.max(env.FINETUNE_POLL_MAX_MS, env.FINETUNE_POLL_MIN_MS),
      leaseMs: env.FINETUNE_LEASE_MS,
      autoIntervalMs: env.FINETUNE_AUTO_INTERVAL_MS,
      autoMinNewExamples: env.FINETUNE_AUTO_NEW_EXAMPLES,
    },
    events: {
      streamMaxLen: env.EVENTS_STREAM_MAXLEN,
      heartbeatMs: env.SSE_HEARTBEAT_MS,
      maxBufferBytes: env.SSE_MAX_BUFFER_BYTES,
      slowClientGraceMs: env.SSE_SLOW_CLIENT_GRACE_MS,
      streamTokenTtlSeconds: env.STREAM_TOKEN_TTL_SECONDS,
    },
    apiKeys,
    apiAdmins: new Set(env.API_ADMINS === "" ? [] : env.API_ADMINS.split(",")),
    apiRateLimit: parseRateLimit(env.API_RATE_LIMIT),
    consoleAllowRemote: isTrue(env.CONSOLE_ALLOW_REMOTE),
    apiMaxPendingTasks: env.API_MAX_PENDING_TASKS,
    webhooks: {
      secret: env.WEBHOOK_SECRET,
      maxAttempts: env.WEBHOOK_MAX_ATTEMPTS,
      retryBaseMs: env.WEBHOOK_RETRY_BASE_MS,
      retryMaxMs: Math.max(WEBHOOK_RETRY_MAX_MS, env.WEBHOOK_RETRY_BASE_MS),
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      concurrency: env.WEBHOOK_CONCURRENCY,
      allowPrivate: isTrue(env.WEBHOOK_ALLOW_PRIVATE),
    },
    logLevel: env.LOG_LEVEL,
  };
}
