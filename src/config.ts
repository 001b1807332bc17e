/**
 * Every setting of the process, read from the environment once and validated
 * with TypeBox. An invalid value stops the process with a message that names
 * the variable and what it accepts; a bad value is never replaced by a default.
 */

import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { type Static, Type as T, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { BASE_QUEUES } from "./task/routing";
import { redactUrl } from "./util/redact-url";

export const ROLES = ["api", "consumer", "worker"] as const;
export type Role = (typeof ROLES)[number];
export const LLM_PROVIDERS = ["openai", "simulated"] as const;
export type LlmProviderName = (typeof LLM_PROVIDERS)[number];
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const TOPIC = "^[a-zA-Z0-9._-]{1,249}$";
const HOST_PORT = "[a-zA-Z0-9.-]+:[0-9]{1,5}";
const DURATION = "[0-9]+(ms|s|m|h)";
const API_KEY_PAIR = "[a-zA-Z0-9_.-]+:[^,:\\s]{8,}";
const QUEUE = "[a-z][a-z0-9_]{0,63}";
const ROUTE = "[a-z_]+=[a-z][a-z0-9_]{0,63}";
const THRESHOLD = "(0(\\.[0-9]+)?|1(\\.0+)?)";
const TASK_THRESHOLD = `[a-z_]+=${THRESHOLD}`;
const BOOLEAN = { pattern: "^(true|false|1|0)$", description: "true or false" } as const;
const price = (what: string, defaultValue: number) =>
  T.Number({
    minimum: 0,
    maximum: 1_000_000,
    default: defaultValue,
    description: `USD per million ${what} tokens ≥ 0`,
  });

const positiveInt = (description: string, max: number, defaultValue?: number) =>
  T.Integer({
    minimum: 1,
    maximum: max,
    description,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  });

/**
 * The environment as strings go in, typed values come out. `description` is
 * what the error message shows as the accepted values.
 */
const EnvSchema = T.Object({
  PORT: T.Integer({ minimum: 1, maximum: 65535, default: 8000, description: "an integer port 1..65535" }),
  ROLES: T.String({
    pattern: `^(${ROLES.join("|")})(,(${ROLES.join("|")}))*$`,
    default: ROLES.join(","),
    description: `a comma-separated subset of ${ROLES.join(",")}`,
  }),
  REDIS_URL: T.String({
    pattern: "^rediss?://",
    default: "redis://127.0.0.1:6379",
    description: "a redis:// or rediss:// URL",
  }),
  KAFKA_BROKERS: T.String({
    pattern: `^${HOST_PORT}(,${HOST_PORT})*$`,
    default: "127.0.0.1:9092",
    description: "comma-separated host:port pairs",
  }),
  KAFKA_TOPIC_IN: T.String({ pattern: TOPIC, default: "datos_crudos", description: "a Kafka topic name" }),
  KAFKA_TOPIC_OUT: T.String({
    pattern: `^$|${TOPIC}`,
    default: "datos_procesados",
    description: "a Kafka topic name, or empty to disable results to Kafka",
  }),
  KAFKA_GROUP_ID: T.String({
    minLength: 1,
    maxLength: 255,
    default: "ai_eventstream_consumers",
    description: "a consumer group id",
  }),
  KAFKA_CONSUMER_THREADS: positiveInt("an integer 1..64 (consumer worker threads)", 64, 1),
  KAFKA_PARTITIONS_AT_ONCE: positiveInt("an integer 1..64 (partitions one consumer thread works at once)", 64, 3),
  KAFKA_BATCH_SIZE: positiveInt("an integer 1..10000 (events per enqueue pipeline and commit)", 10_000, 500),
  KAFKA_QUEUE_HIGH_WATERMARK: positiveInt(
    "an integer 1..100000000 (kafka_events waiting jobs that pause consumption)",
    100_000_000,
    20_000,
  ),
  KAFKA_QUEUE_LOW_WATERMARK: positiveInt(
    "an integer 1..100000000 (kafka_events waiting jobs below which consumption resumes)",
    100_000_000,
    10_000,
  ),
  KAFKA_RATE_LIMIT_PAUSE_MS: T.Integer({
    minimum: 0,
    maximum: 3_600_000,
    default: 30_000,
    description: "an integer 0..3600000 (ms with no LLM rate budget before pausing; 0: never)",
  }),
  KAFKA_DEDUP_TTL_SECONDS: positiveInt(
    "an integer 1..31536000 (seconds an event id is remembered against redelivery)",
    31_536_000,
    7 * 24 * 3600,
  ),
  KAFKA_SESSION_TIMEOUT_MS: positiveInt(
    "an integer 6000..300000 (consumer group session timeout, ms)",
    300_000,
    30_000,
  ),
  KAFKA_RESULT_LINGER_MS: T.Integer({
    minimum: 0,
    maximum: 60_000,
    default: 20,
    description: "an integer 0..60000 (ms results wait to be produced together)",
  }),
  WORKER_CONCURRENCY: T.String({
    pattern: "^(auto|[1-9][0-9]{0,2})$",
    default: "1",
    description: "a number of worker processes 1..999, or auto (one per CPU core)",
  }),
  WORKER_JOBS_PER_PROCESS: positiveInt("an integer 1..10000 (jobs in flight per worker process and queue)", 10_000, 32),
  WORKER_QUEUES: T.String({
    pattern: `^$|^${QUEUE}(,${QUEUE})*$`,
    default: "",
    description: "comma-separated queue names, or empty for every queue the routes use",
  }),
  TASK_ROUTES: T.String({
    pattern: `^$|^${ROUTE}(,${ROUTE})*$`,
    default: "",
    description: "comma-separated task_type=queue pairs such as summarization=heavy",
  }),
  WORKER_MAX_JOBS: T.Integer({
    minimum: 0,
    maximum: 100_000_000,
    default: 0,
    description: "an integer ≥ 0 (0: never recycle)",
  }),
  WORKER_MAX_MEMORY_MB: T.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 0,
    description: "an integer ≥ 0 (0: no ceiling)",
  }),
  JOB_TIMEOUT_MS: positiveInt("an integer 1..3600000 (ms one attempt of a job may take)", 3_600_000, 60_000),
  JOB_RETRIES: T.Integer({ minimum: 0, maximum: 100, default: 3, description: "an integer 0..100" }),
  JOB_BACKOFF_MS: positiveInt("an integer 1..3600000 (base ms of exponential backoff)", 3_600_000, 1000),
  JOB_STALL_INTERVAL_MS: positiveInt("an integer 500..600000 (ms before a dead worker's job is re-run)", 600_000, 5000),
  PROMPTS_FILE: T.String({ default: "", description: "a path to a JSON file of task_type: system prompt, or empty" }),
  SIMULATED_LATENCY_MS: T.String({
    pattern: "^[0-9]{1,6}(-[0-9]{1,6})?$",
    default: "50",
    description: "milliseconds, fixed (50) or uniform between two bounds (20-80)",
  }),
  MAX_BODY_BYTES: positiveInt("an integer number of bytes 1024..104857600", 104_857_600, 1_048_576),
  LLM_PROVIDER: T.Optional(
    T.Union(
      LLM_PROVIDERS.map((p) => T.Literal(p)),
      { description: LLM_PROVIDERS.join(" or ") },
    ),
  ),
  OPENAI_API_KEY: T.Optional(T.String({ minLength: 1, description: "an OpenAI API key" })),
  OPENAI_BASE_URL: T.Optional(
    T.String({ pattern: "^https?://", description: "an http(s):// URL of an OpenAI-compatible API" }),
  ),
  LLM_MODEL: T.String({ minLength: 1, default: "gpt-4o-mini", description: "a chat model name" }),
  EMBEDDING_MODEL: T.String({
    minLength: 1,
    default: "text-embedding-3-small",
    description: "an embeddings model name",
  }),
  EMBEDDING_DIM: T.Optional(positiveInt("an integer 1..8192 (embedding dimension)", 8192)),
  CACHE_SIMILARITY_THRESHOLD: T.Number({
    minimum: 0,
    maximum: 1,
    default: 0.9,
    description: "a cosine similarity 0..1",
  }),
  CACHE_SIMILARITY_THRESHOLDS: T.String({
    pattern: `^$|^${TASK_THRESHOLD}(,${TASK_THRESHOLD})*$`,
    default: "",
    description: "comma-separated task_type=similarity pairs such as translation=0.97, or empty",
  }),
  CACHE_TTL_SECONDS: positiveInt("an integer number of seconds 1..31536000", 31_536_000, 3600),
  CACHE_TTL_EXTEND_ON_HIT: T.String({ ...BOOLEAN, default: "false" }),
  CACHE_MAX_TEMPERATURE: T.Number({
    minimum: 0,
    maximum: 2,
    default: 1,
    description: "a temperature 0..2 above which answers are neither looked up nor stored",
  }),
  CACHE_REDIS_URL: T.Optional(
    T.String({ pattern: "^rediss?://", description: "a redis:// URL (database 0 for vector search), or unset" }),
  ),
  CACHE_PREFIX: T.String({
    pattern: "^[a-zA-Z0-9_-]{1,64}$",
    default: "cache",
    description: "a key prefix of letters, digits, _ or - (1..64)",
  }),
  CACHE_INDEX_ALGORITHM: T.Union([T.Literal("HNSW"), T.Literal("FLAT")], {
    default: "HNSW",
    description: "HNSW or FLAT",
  }),
  CACHE_FALSE_HIT_GUARD: T.String({ ...BOOLEAN, default: "true" }),
  CACHE_HYBRID_POLICY: T.Union([T.Literal("auto"), T.Literal("BATCHES"), T.Literal("ADHOC_BF")], {
    default: "auto",
    description: "auto, BATCHES or ADHOC_BF",
  }),
  CACHE_HNSW_EF_RUNTIME: positiveInt("an integer 1..4096 (HNSW candidates examined per query)", 4096, 64),
  EMBED_BATCH_WINDOW_MS: T.Integer({ minimum: 0, maximum: 1000, default: 2, description: "an integer 0..1000 (ms)" }),
  EMBED_BATCH_MAX: positiveInt("an integer 1..2048 (texts per embeddings call)", 2048, 64),
  EMBED_MEMO_SIZE: T.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 2048,
    description: "an integer 0..1000000 (recent embeddings kept in memory per process)",
  }),
  LLM_PRICE_INPUT_PER_MTOK: price("prompt", 0.15),
  LLM_PRICE_OUTPUT_PER_MTOK: price("completion", 0.6),
  EMBEDDING_PRICE_PER_MTOK: price("embedding", 0.02),
  RESULT_TTL_SECONDS: positiveInt("an integer number of seconds 1..31536000", 31_536_000, 3600),
  LLM_RATE_LIMIT: T.String({
    pattern: `^$|^[0-9]+/${DURATION}$`,
    default: "",
    description: "calls per period such as 60/60s or 500/1m, or empty for no limit",
  }),
  API_KEYS: T.String({
    pattern: `^$|^${API_KEY_PAIR}(,${API_KEY_PAIR})*$`,
    default: "",
    description: "comma-separated name:key pairs (keys of 8+ characters), or empty for no auth",
  }),
  API_KEYS_FILE: T.String({
    default: "",
    description: "a path to a file of name:key lines (# comments), or empty",
  }),
  API_ADMINS: T.String({
    pattern: "^$|^[a-zA-Z0-9_.-]+(,[a-zA-Z0-9_.-]+)*$",
    default: "",
    description: "comma-separated API key names allowed to delete cache entries, or empty",
  }),
  API_RATE_LIMIT: T.String({
    pattern: `^$|^[0-9]+/${DURATION}$`,
    default: "",
    description: "requests per period per API key (per address without keys), such as 100/1s, or empty for none",
  }),
  API_MAX_PENDING_TASKS: T.Integer({
    minimum: 0,
    maximum: 100_000_000,
    default: 0,
    description: "an integer ≥ 0 (tasks per API key accepted but not finished; 0: no cap)",
  }),
  LOG_LEVEL: T.Union(
    LOG_LEVELS.map((l) => T.Literal(l)),
    { default: "info", description: LOG_LEVELS.join(", ") },
  ),
});
type Env = Static<typeof EnvSchema>;

/** Every variable the configuration reads. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(EnvSchema.properties);

/** Embedding dimension when EMBEDDING_DIM is unset: the OpenAI model's, or the simulated provider's. */
const DEFAULT_EMBEDDING_DIM = { openai: 1536, simulated: 384 } as const;

export interface ApiKey {
  /** The tenant: scopes tasks and cache entries. */
  readonly name: string;
  readonly key: string;
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
    /** Jobs in flight per worker process and queue. */
    readonly jobsPerProcess: number;
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
  };
  /** task_type → queue, on top of the defaults (API → ai_processing, Kafka → kafka_events). */
  readonly routes: ReadonlyMap<string, string>;
  readonly promptsFile: string | undefined;
  readonly simulatedLatencyMs: { readonly min: number; readonly max: number };
  readonly maxBodyBytes: number;
  readonly llm: {
    readonly provider: LlmProviderName;
    readonly apiKey: string | undefined;
    readonly baseUrl: string | undefined;
    readonly model: string;
    readonly embeddingModel: string;
    readonly embeddingDim: number;
    /** Undefined when unlimited. */
    readonly rateLimit: { readonly calls: number; readonly periodMs: number } | undefined;
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
  readonly apiKeys: readonly ApiKey[];
  /** Tenants (API key names) that may administer the cache when auth is on. */
  readonly apiAdmins: ReadonlySet<string>;
  /** Per client: requests per period (burst of a whole period allowed); undefined: no limit. */
  readonly apiRateLimit: { readonly calls: number; readonly periodMs: number } | undefined;
  /** Tasks per API key accepted but not finished; 0: no cap. */
  readonly apiMaxPendingTasks: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

function parseRateLimit(spec: string): Config["llm"]["rateLimit"] {
  if (spec === "") return undefined;
  const match = /^([0-9]+)\/([0-9]+)(ms|s|m|h)$/.exec(spec);
  if (!match) return undefined; // unreachable: the schema's pattern already matched
  const [, calls, amount, unit] = match as unknown as [string, string, string, keyof typeof DURATION_MS];
  return { calls: Number(calls), periodMs: Number(amount) * DURATION_MS[unit] };
}

const NUMERIC = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/**
 * Turns numeric strings into numbers for the variables whose schema is a
 * number. Deliberately stricter than TypeBox's Value.Convert, which would
 * truncate PORT=80.5 to 80: here it stays 80.5 and fails the integer check.
 */
function toNumbers(raw: Record<string, unknown>): Record<string, unknown> {
  const properties = EnvSchema.properties as Record<string, TSchema>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const type = properties[key]?.type;
    const numeric = (type === "integer" || type === "number") && typeof value === "string" && NUMERIC.test(value);
    out[key] = numeric ? Number(value) : value;
  }
  return out;
}

function describe(schema: TSchema | undefined): string {
  const description = schema?.description;
  return typeof description === "string" ? description : "a valid value";
}

function checkSemantics(env: Env): string[] {
  const problems: string[] = [];
  const limit = parseRateLimit(env.LLM_RATE_LIMIT);
  if (limit && (limit.calls === 0 || limit.periodMs === 0)) {
    problems.push(`LLM_RATE_LIMIT="${env.LLM_RATE_LIMIT}": calls and period must both be greater than 0`);
  }
  if (env.LLM_PROVIDER === "openai" && !env.OPENAI_API_KEY) {
    problems.push("LLM_PROVIDER=openai needs OPENAI_API_KEY (set it, or use LLM_PROVIDER=simulated)");
  }
  const apiLimit = parseRateLimit(env.API_RATE_LIMIT);
  if (apiLimit && (apiLimit.calls === 0 || apiLimit.periodMs === 0)) {
    problems.push(`API_RATE_LIMIT="${env.API_RATE_LIMIT}": calls and period must both be greater than 0`);
  }
  try {
    const names = apiKeysOf(env).map((k) => k.name);
    const duplicate = names.find((name, i) => names.indexOf(name) !== i);
    if (duplicate) problems.push(`API_KEYS: the name "${duplicate}" appears twice; each name is one tenant`);
    const unknown = env.API_ADMINS === "" ? [] : env.API_ADMINS.split(",").filter((n) => !names.includes(n));
    if (unknown.length > 0) problems.push(`API_ADMINS names no API key: ${unknown.join(", ")}`);
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
  }
  const [low = 0, high = low] = env.SIMULATED_LATENCY_MS.split("-").map(Number);
  if (high < low)
    problems.push(`SIMULATED_LATENCY_MS="${env.SIMULATED_LATENCY_MS}": the upper bound is below the lower`);
  if (env.JOB_STALL_INTERVAL_MS < 500) problems.push("JOB_STALL_INTERVAL_MS must be at least 500 ms");
  if (env.KAFKA_QUEUE_LOW_WATERMARK >= env.KAFKA_QUEUE_HIGH_WATERMARK) {
    problems.push("KAFKA_QUEUE_LOW_WATERMARK must be below KAFKA_QUEUE_HIGH_WATERMARK");
  }
  if (env.KAFKA_SESSION_TIMEOUT_MS < 6000) problems.push("KAFKA_SESSION_TIMEOUT_MS must be at least 6000 ms");
  if (env.KAFKA_TOPIC_OUT !== "" && env.KAFKA_TOPIC_OUT === env.KAFKA_TOPIC_IN) {
    problems.push("KAFKA_TOPIC_OUT must differ from KAFKA_TOPIC_IN, or results would be consumed as new events");
  }
  return problems;
}

/**
 * Reads and validates the configuration. Throws ConfigError listing every
 * invalid variable; never falls back to a default for a value that was set.
 */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key];
    if (value === undefined) continue;
    // KAFKA_TOPIC_OUT, LLM_RATE_LIMIT, API_KEYS and API_RATE_LIMIT give "" a meaning; elsewhere
    // an empty variable is treated as unset, as shells and .env files produce it.
    if (value.trim() === "" && !["KAFKA_TOPIC_OUT", "LLM_RATE_LIMIT", "API_KEYS", "API_RATE_LIMIT"].includes(key))
      continue;
    raw[key] = value.trim();
  }
  const converted = Value.Default(EnvSchema, toNumbers(raw)) as Record<string, unknown>;

  const problems: string[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(EnvSchema, converted)) {
    const name = error.path.split("/")[1] ?? error.path;
    if (seen.has(name)) continue;
    seen.add(name);
    const given = source[name];
    const schema = (EnvSchema.properties as Record<string, TSchema>)[name];
    problems.push(
      given === undefined
        ? `${name} is required: ${describe(schema)}`
        : `${name}="${given}" is not valid: expected ${describe(schema)}`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const env = converted as Env;
  const semantic = checkSemantics(env);
  if (semantic.length > 0) throw new ConfigError(semantic);

  const routes = new Map(
    env.TASK_ROUTES === "" ? [] : env.TASK_ROUTES.split(",").map((pair) => pair.split("=") as [string, string]),
  );
  const provider: LlmProviderName = env.LLM_PROVIDER ?? (env.OPENAI_API_KEY ? "openai" : "simulated");
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
      consumerThreads: env.KAFKA_CONSUMER_THREADS,
      partitionsConcurrently: env.KAFKA_PARTITIONS_AT_ONCE,
      batchSize: env.KAFKA_BATCH_SIZE,
      queueHighWatermark: env.KAFKA_QUEUE_HIGH_WATERMARK,
      queueLowWatermark: env.KAFKA_QUEUE_LOW_WATERMARK,
      rateLimitPauseMs: env.KAFKA_RATE_LIMIT_PAUSE_MS,
      dedupTtlSeconds: env.KAFKA_DEDUP_TTL_SECONDS,
      sessionTimeoutMs: env.KAFKA_SESSION_TIMEOUT_MS,
      maxBytesPerPartition: 1_048_576,
      resultLingerMs: env.KAFKA_RESULT_LINGER_MS,
    },
    worker: {
      processes: env.WORKER_CONCURRENCY === "auto" ? availableParallelism() : Number(env.WORKER_CONCURRENCY),
      jobsPerProcess: env.WORKER_JOBS_PER_PROCESS,
      queues: workerQueues(env.WORKER_QUEUES, routes),
      maxJobs: env.WORKER_MAX_JOBS,
      maxMemoryMb: env.WORKER_MAX_MEMORY_MB,
      jobTimeoutMs: env.JOB_TIMEOUT_MS,
      retries: env.JOB_RETRIES,
      backoffMs: env.JOB_BACKOFF_MS,
      stallIntervalMs: env.JOB_STALL_INTERVAL_MS,
    },
    routes,
    promptsFile: env.PROMPTS_FILE === "" ? undefined : env.PROMPTS_FILE,
    simulatedLatencyMs: latencyRange(env.SIMULATED_LATENCY_MS),
    maxBodyBytes: env.MAX_BODY_BYTES,
    llm: {
      provider,
      apiKey: env.OPENAI_API_KEY,
      baseUrl: env.OPENAI_BASE_URL,
      model: env.LLM_MODEL,
      embeddingModel: env.EMBEDDING_MODEL,
      embeddingDim: env.EMBEDDING_DIM ?? DEFAULT_EMBEDDING_DIM[provider],
      rateLimit: parseRateLimit(env.LLM_RATE_LIMIT),
    },
    cache: {
      redisUrl: env.CACHE_REDIS_URL ?? env.REDIS_URL,
      prefix: env.CACHE_PREFIX,
      similarityThreshold: env.CACHE_SIMILARITY_THRESHOLD,
      thresholds: new Map(
        env.CACHE_SIMILARITY_THRESHOLDS === ""
          ? []
          : env.CACHE_SIMILARITY_THRESHOLDS.split(",").map((pair) => {
              const [taskType = "", value = "0"] = pair.split("=");
              return [taskType, Number(value)] as const;
            }),
      ),
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
    apiKeys: apiKeysOf(env),
    apiAdmins: new Set(env.API_ADMINS === "" ? [] : env.API_ADMINS.split(",")),
    apiRateLimit: parseRateLimit(env.API_RATE_LIMIT),
    apiMaxPendingTasks: env.API_MAX_PENDING_TASKS,
    logLevel: env.LOG_LEVEL,
  };
}

function workerQueues(spec: string, routes: ReadonlyMap<string, string>): string[] {
  if (spec !== "") return [...new Set(spec.split(","))];
  return [...new Set([...BASE_QUEUES, ...routes.values()])];
}

const PAIR = new RegExp(`^${API_KEY_PAIR}$`);

/** API_KEYS and the lines of API_KEYS_FILE, as name/key pairs. Throws naming the file and line of a bad one. */
function apiKeysOf(env: Env): ApiKey[] {
  const pairs = env.API_KEYS === "" ? [] : env.API_KEYS.split(",");
  if (env.API_KEYS_FILE !== "") {
    let text: string;
    try {
      text = readFileSync(env.API_KEYS_FILE, "utf8");
    } catch (error) {
      throw new Error(`API_KEYS_FILE="${env.API_KEYS_FILE}" cannot be read: ${(error as Error).message}`);
    }
    for (const [i, raw] of text.split("\n").entries()) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      // The line is never echoed: it holds a secret.
      if (!PAIR.test(line)) throw new Error(`API_KEYS_FILE line ${i + 1} is not name:key (a key of 8+ characters)`);
      pairs.push(line);
    }
  }
  return pairs.map((pair) => {
    const separator = pair.indexOf(":");
    return { name: pair.slice(0, separator), key: pair.slice(separator + 1) };
  });
}

const isTrue = (value: string) => value === "true" || value === "1";

function latencyRange(spec: string): { min: number; max: number } {
  const [min = 0, max = min] = spec.split("-").map(Number);
  return { min, max };
}

/** A summary safe to log: no secrets, only whether they are set. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    port: config.port,
    roles: [...config.roles],
    redis: redactUrl(config.redisUrl),
    kafka: { ...config.kafka },
    worker: config.worker,
    routes: Object.fromEntries(config.routes),
    llm: { ...config.llm, apiKey: config.llm.apiKey ? "[set]" : "[unset]" },
    cache: {
      ...config.cache,
      redisUrl: redactUrl(config.cache.redisUrl),
      thresholds: Object.fromEntries(config.cache.thresholds),
    },
    resultTtlSeconds: config.resultTtlSeconds,
    apiKeys: config.apiKeys.map((k) => k.name),
    apiAdmins: [...config.apiAdmins],
    apiRateLimit: config.apiRateLimit,
    apiMaxPendingTasks: config.apiMaxPendingTasks,
    logLevel: config.logLevel,
  };
}
