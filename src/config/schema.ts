/**
 * The environment variables the process reads, as one TypeBox schema: the
 * type, the accepted values and the default of each. The `description` of a
 * variable is what an error message shows as the accepted values, so it must
 * say what the schema enforces.
 */

import { type Static, Type as T } from "@sinclair/typebox";
import { LLM_PROVIDERS, LOG_LEVELS, ROLES } from "./types";

const TOPIC = "^[a-zA-Z0-9._-]{1,249}$";
const HOST_PORT = "[a-zA-Z0-9.-]+:[0-9]{1,5}";
const DURATION = "[0-9]+(ms|s|m|h)";
/** One name:key pair of API_KEYS, and one line of API_KEYS_FILE. */
export const API_KEY_PAIR = "[a-zA-Z0-9_.-]+:[^,:\\s]{8,}";
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
export const EnvSchema = T.Object({
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
export type Env = Static<typeof EnvSchema>;

/** Every variable the configuration reads. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(EnvSchema.properties);
