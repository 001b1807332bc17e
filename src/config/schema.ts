/**
 * The environment variables the process reads, as one TypeBox schema: the
 * type, the accepted values and the default of each. The `description` of a
 * variable is what an error message shows as the accepted values, so it must
 * say what the schema enforces.
 */

import { type Static, Type as T } from "@sinclair/typebox";
import { LATENCY_DESCRIPTION, LATENCY_PATTERN } from "../util/latency";
import { EMBEDDING_PROVIDERS, LLM_PROVIDERS, LOG_LEVELS, ROLES } from "./types";

const TOPIC = "^[a-zA-Z0-9._-]{1,249}$";
const TOPIC_NAME = "a Kafka topic name of 1..249 letters, digits, '.', '_' or '-'";
const HOST_PORT = "[a-zA-Z0-9.-]+:[0-9]{1,5}";
/** A whole number above 0; leading zeros allowed, as Number() reads them. */
const ABOVE_ZERO = "0*[1-9][0-9]*";
/** calls/period, both above 0: a rate of 0 calls or a period of 0 ms means nothing. */
const RATE = `${ABOVE_ZERO}/${ABOVE_ZERO}(ms|s|m|h)`;
/** One name:key pair of API_KEYS, and one line of API_KEYS_FILE. */
export const API_KEY_PAIR = "[a-zA-Z0-9_.-]+:[^,:\\s]{8,}";
const QUEUE = "[a-z][a-z0-9_]{0,63}";
const ROUTE = "[a-z_]+=[a-z][a-z0-9_]{0,63}";
const THRESHOLD = "(0(\\.[0-9]+)?|1(\\.0+)?)";
const TASK_THRESHOLD = `[a-z_]+=${THRESHOLD}`;
/** A model string: `provider/model` or a bare model of the default provider (the contract's `model` pattern). */
const MODEL = "[A-Za-z0-9._:/-]{1,128}";
const MODEL_ROUTE = `[a-z_]+=${MODEL}`;
const CHAIN = `${MODEL}(>${MODEL})+`;
const ALLOWED = `([a-zA-Z0-9_.-]+=)?(${MODEL}|\\*)`;
const MODEL_RATE = `${MODEL}=${RATE}`;
const BOOLEAN = { pattern: "^(true|false|1|0)$", description: "true or false" } as const;

/**
 * Numbers get their description from their bounds, so the range an error
 * message states is the range the schema enforces. Written by hand, the two
 * drifted: MAX_BODY_BYTES said 1024.. and accepted 1, and two minimums were
 * re-checked outside the schema (issue 12 §3).
 */
const range = (kind: "integer" | "number", min: number, max: number, what: string, defaultValue?: number) => ({
  minimum: min,
  maximum: max,
  description: `${kind === "integer" ? "an integer" : "a number"} ${min}..${max} (${what})`,
  ...(defaultValue === undefined ? {} : { default: defaultValue }),
});
const integer = (min: number, max: number, what: string, defaultValue?: number) =>
  T.Integer(range("integer", min, max, what, defaultValue));
const number = (min: number, max: number, what: string, defaultValue?: number) =>
  T.Number(range("number", min, max, what, defaultValue));
const price = (what: string, defaultValue: number) =>
  number(0, 1_000_000, `USD per million ${what} tokens`, defaultValue);

/**
 * The environment as strings go in, typed values come out. `description` is
 * what the error message shows as the accepted values. A rule between two
 * variables cannot be stated here; load.ts checks those after the schema.
 */
export const EnvSchema = T.Object({
  PORT: integer(1, 65535, "HTTP port", 8000),
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
  KAFKA_TOPIC_IN: T.String({ pattern: TOPIC, default: "datos_crudos", description: TOPIC_NAME }),
  KAFKA_TOPIC_OUT: T.String({
    pattern: `^$|${TOPIC}`,
    default: "datos_procesados",
    description: `${TOPIC_NAME}, or empty to disable results to Kafka`,
  }),
  KAFKA_GROUP_ID: T.String({
    minLength: 1,
    maxLength: 255,
    default: "ai_eventstream_consumers",
    description: "a consumer group id of 1..255 characters",
  }),
  KAFKA_TENANT: T.String({
    pattern: "^$|^[a-zA-Z0-9_.-]+$",
    default: "",
    description: "the name of an API key (letters, digits, '_', '.', '-'), or empty",
  }),
  KAFKA_CONSUMER_THREADS: integer(1, 64, "consumer worker threads", 1),
  KAFKA_PARTITIONS_AT_ONCE: integer(1, 64, "partitions one consumer thread works at once", 3),
  KAFKA_BATCH_SIZE: integer(1, 10_000, "events per enqueue pipeline and commit", 500),
  KAFKA_QUEUE_HIGH_WATERMARK: integer(1, 100_000_000, "kafka_events waiting jobs that pause consumption", 20_000),
  KAFKA_QUEUE_LOW_WATERMARK: integer(
    1,
    100_000_000,
    "kafka_events waiting jobs below which consumption resumes",
    10_000,
  ),
  KAFKA_RATE_LIMIT_PAUSE_MS: integer(0, 3_600_000, "ms with no LLM rate budget before pausing; 0: never", 30_000),
  KAFKA_DEDUP_TTL_SECONDS: integer(
    1,
    31_536_000,
    "seconds an event id is remembered against redelivery",
    7 * 24 * 3600,
  ),
  // 6000 is the brokers' default group.min.session.timeout.ms: below it, joining the group fails.
  KAFKA_SESSION_TIMEOUT_MS: integer(6000, 300_000, "consumer group session timeout, ms", 30_000),
  KAFKA_RESULT_LINGER_MS: integer(0, 60_000, "ms results wait to be produced together", 20),
  WORKER_CONCURRENCY: T.String({
    pattern: "^(auto|[1-9][0-9]{0,2})$",
    default: "1",
    description: "a number of worker processes 1..999, or auto (one per CPU core)",
  }),
  WORKER_JOBS_PER_PROCESS: T.String({
    pattern: "^(auto|0*[1-9][0-9]{0,3}|0*10000)$",
    default: "auto",
    description:
      "auto (jobs in flight per worker process follow the LLM rate limit × latency, 429s and the event loop), or a fixed number 1..10000 per worker process and queue",
  }),
  WORKER_MAX_JOBS_PER_PROCESS: integer(
    8,
    100_000,
    "the most jobs in flight per worker process with WORKER_JOBS_PER_PROCESS=auto",
    4096,
  ),
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
  WORKER_MAX_JOBS: integer(0, 100_000_000, "jobs before a worker process is recycled; 0: never", 0),
  WORKER_MAX_MEMORY_MB: integer(0, 1_000_000, "MB of RSS above which a worker process is recycled; 0: no ceiling", 0),
  JOB_TIMEOUT_MS: integer(1, 3_600_000, "ms one attempt of a job may take", 60_000),
  JOB_RETRIES: integer(0, 100, "retries after a retriable failure", 3),
  JOB_BACKOFF_MS: integer(1, 3_600_000, "base ms of exponential backoff", 1000),
  JOB_STALL_INTERVAL_MS: integer(500, 600_000, "ms before a dead worker's job is re-run", 5000),
  JOB_FAILED_KEEP: integer(1, 100_000_000, "failed jobs kept per queue for inspection, newest first", 10_000),
  JOB_FAILED_MAX_AGE_SECONDS: integer(60, 31_536_000, "seconds a failed job is kept for inspection", 7 * 24 * 3600),
  PROMPTS_FILE: T.String({ default: "", description: "a path to a JSON file of task_type: system prompt, or empty" }),
  SIMULATED_LATENCY_MS: T.String({
    pattern: `^(${LATENCY_PATTERN})$`,
    default: "50",
    description: LATENCY_DESCRIPTION,
  }),
  SIMULATED_TOKEN_LATENCY_MS: integer(
    0,
    60_000,
    "ms between two tokens of a streamed answer of the simulated provider",
    0,
  ),
  MAX_BODY_BYTES: integer(1024, 104_857_600, "bytes of the largest request body", 1_048_576),
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
  ANTHROPIC_API_KEY: T.Optional(T.String({ minLength: 1, description: "an Anthropic API key" })),
  ANTHROPIC_BASE_URL: T.Optional(
    T.String({ pattern: "^https?://", description: "an http(s):// URL of the Anthropic API (or its mock)" }),
  ),
  COHERE_API_KEY: T.Optional(T.String({ minLength: 1, description: "a Cohere API key" })),
  COHERE_BASE_URL: T.Optional(
    T.String({ pattern: "^https?://", description: "an http(s):// URL of the Cohere API (or its mock)" }),
  ),
  LLM_ROUTES: T.String({
    pattern: `^$|^${MODEL_ROUTE}(,${MODEL_ROUTE})*$`,
    default: "",
    description: "comma-separated task_type=model pairs such as summarization=anthropic/claude-3-5-haiku-latest",
  }),
  LLM_ROUTES_FILE: T.String({
    default: "",
    description: "a path to a JSON file of task_type: model or [model, fallback, ...], or empty",
  }),
  LLM_FALLBACKS: T.String({
    pattern: `^$|^${CHAIN}(,${CHAIN})*$`,
    default: "",
    description: "comma-separated chains such as openai/gpt-4o-mini>anthropic/claude-3-5-haiku-latest, or empty",
  }),
  LLM_ALLOWED_MODELS: T.String({
    pattern: `^$|^${ALLOWED}(,${ALLOWED})*$`,
    default: "",
    description:
      "comma-separated models a request's model may name (tenant=model for one tenant only, * for any), or empty for any",
  }),
  LLM_MODEL_RATE_LIMITS: T.String({
    pattern: `^$|^${MODEL_RATE}(,${MODEL_RATE})*$`,
    default: "",
    description: "comma-separated model=calls/period pairs such as anthropic/claude-3-5-haiku-latest=50/1m, or empty",
  }),
  LLM_BREAKER_FAILURES: integer(0, 1000, "consecutive failures that open a model's circuit; 0: no breaker", 5),
  LLM_BREAKER_COOLDOWN_MS: integer(100, 3_600_000, "ms an open circuit waits before one probe", 30_000),
  LLM_PRICES_FILE: T.String({
    default: "",
    description:
      "a path to a JSON file of model: {input, output, cached_input, embedding} USD per million tokens, or empty",
  }),
  LLM_REQUEST_TIMEOUT_MS: integer(
    100,
    3_600_000,
    "ms one provider request may take before it fails (and falls back)",
    120_000,
  ),
  EMBEDDING_PROVIDER: T.Optional(
    T.Union(
      EMBEDDING_PROVIDERS.map((p) => T.Literal(p)),
      { description: EMBEDDING_PROVIDERS.join(", ") },
    ),
  ),
  EMBEDDING_BASE_URL: T.Optional(
    T.String({ pattern: "^https?://", description: "an http(s):// URL of an OpenAI-compatible embeddings API" }),
  ),
  EMBEDDING_MODEL: T.Optional(T.String({ minLength: 1, description: "an embeddings model name" })),
  EMBEDDING_DIM: T.Optional(integer(1, 8192, "embedding dimension")),
  CACHE_SIMILARITY_THRESHOLD: number(0, 1, "cosine similarity of a semantic hit", 0.9),
  CACHE_SIMILARITY_THRESHOLDS: T.String({
    pattern: `^$|^${TASK_THRESHOLD}(,${TASK_THRESHOLD})*$`,
    default: "",
    description: "comma-separated task_type=similarity pairs such as translation=0.97, or empty",
  }),
  CACHE_TTL_SECONDS: integer(1, 31_536_000, "seconds a cache entry lives", 3600),
  CACHE_TTL_EXTEND_ON_HIT: T.String({ ...BOOLEAN, default: "false" }),
  CACHE_MAX_TEMPERATURE: number(0, 2, "temperature above which answers are neither looked up nor stored", 1),
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
  CACHE_HNSW_EF_RUNTIME: integer(1, 4096, "HNSW candidates examined per query", 64),
  EMBED_BATCH_WINDOW_MS: integer(0, 1000, "ms an embedding request waits for company", 2),
  EMBED_BATCH_MAX: integer(1, 2048, "texts per embeddings call", 64),
  EMBED_MEMO_SIZE: integer(0, 1_000_000, "recent embeddings kept in memory per process", 2048),
  LLM_PRICE_INPUT_PER_MTOK: price("prompt", 0.15),
  LLM_PRICE_OUTPUT_PER_MTOK: price("completion", 0.6),
  EMBEDDING_PRICE_PER_MTOK: price("embedding", 0.02),
  RESULT_TTL_SECONDS: integer(1, 31_536_000, "seconds a task result stays readable", 3600),
  RESULT_KEEP_INPUT: T.String({
    ...BOOLEAN,
    default: "true",
    description:
      "keep a finished task's text in its record for RESULT_TTL_SECONDS (task detail, fine-tuning files); false: only while it is queued",
  }),
  FINETUNE_EXAMPLE_TTL_DAYS: integer(1, 3650, "days a positively rated task is kept as a fine-tuning example", 90),
  FINETUNE_MAX_EXAMPLES: integer(
    10,
    10_000_000,
    "the newest this many positively rated examples go into a training file (it is built in memory)",
    50_000,
  ),
  FINETUNE_POLL_MIN_MS: integer(
    100,
    3_600_000,
    "ms before the first poll of a fine-tuning job; doubles while it waits",
    5000,
  ),
  FINETUNE_POLL_MAX_MS: integer(100, 86_400_000, "the longest ms between two polls of a fine-tuning job", 60_000),
  FINETUNE_LEASE_MS: integer(
    1000,
    600_000,
    "ms a process holds a fine-tune it follows; another takes over that long after it dies",
    30_000,
  ),
  FINETUNE_AUTO_INTERVAL_MS: integer(
    0,
    2_592_000_000,
    "ms between two checks for task types with enough new positive examples to fine-tune; 0: off",
    0,
  ),
  FINETUNE_AUTO_NEW_EXAMPLES: integer(
    10,
    10_000_000,
    "new positive examples since a task type's last fine-tune that start the next one",
    200,
  ),
  EVENTS_STREAM_MAXLEN: integer(
    100,
    100_000_000,
    "completions kept per tenant for clients that reconnect with Last-Event-ID",
    50_000,
  ),
  SSE_HEARTBEAT_MS: integer(1000, 600_000, "ms between keep-alive comments on an idle event stream", 15_000),
  SSE_MAX_BUFFER_BYTES: integer(
    16_384,
    1_073_741_824,
    "bytes of events waiting for one slow client before it is dropped",
    1_048_576,
  ),
  SSE_SLOW_CLIENT_GRACE_MS: integer(
    0,
    600_000,
    "ms a dropped client has to read its last event before its connection is closed",
    30_000,
  ),
  STREAM_TOKEN_TTL_SECONDS: integer(
    60,
    604_800,
    "seconds a token from GET /auth/stream-token opens the streaming routes",
    3600,
  ),
  LLM_RATE_LIMIT: T.String({
    pattern: `^$|^${RATE}$`,
    default: "",
    description: "calls per period, both above 0, such as 60/60s or 500/1m, or empty for no limit",
  }),
  LLM_RATE_BURST: integer(
    0,
    1_000_000,
    "calls that may go at once above LLM_RATE_LIMIT's even spacing (any window of its period then sees at most the limit plus this many); 0: evenly spaced",
    0,
  ),
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
    description:
      "comma-separated API key names that read what spans tenants and take operator actions (/admin/*, the cache), or empty",
  }),
  API_RATE_LIMIT: T.String({
    pattern: `^$|^${RATE}$`,
    default: "",
    description:
      "requests per period per API key (per address without keys), both above 0, such as 100/1s, or empty for none",
  }),
  API_MAX_PENDING_TASKS: integer(0, 100_000_000, "tasks per API key accepted but not finished; 0: no cap", 0),
  WEBHOOK_SECRET: T.Optional(
    T.String({
      minLength: 32,
      description: "a master secret of 32+ characters from which each tenant's signing secret is derived, or unset",
    }),
  ),
  WEBHOOK_MAX_ATTEMPTS: integer(1, 100, "delivery attempts of one webhook before it fails", 15),
  WEBHOOK_RETRY_BASE_MS: integer(
    100,
    3_600_000,
    "ms before the first retry of a webhook; doubles, capped at 1 h",
    2000,
  ),
  WEBHOOK_TIMEOUT_MS: integer(100, 120_000, "ms one webhook attempt may take", 10_000),
  WEBHOOK_CONCURRENCY: integer(1, 1000, "webhook deliveries in flight per worker process", 16),
  WEBHOOK_ALLOW_PRIVATE: T.String({ ...BOOLEAN, default: "false" }),
  CONSOLE_ALLOW_REMOTE: T.String({
    ...BOOLEAN,
    default: "false",
    description:
      "without API_KEYS, /dashboard and /admin/* answer only loopback clients unless this is true (behind a trusted proxy)",
  }),
  LOG_LEVEL: T.Union(
    LOG_LEVELS.map((l) => T.Literal(l)),
    { default: "info", description: LOG_LEVELS.join(", ") },
  ),
});
export type Env = Static<typeof EnvSchema>;

/** Every variable the configuration reads. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(EnvSchema.properties);
