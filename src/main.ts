/**
 * Entry point: load the configuration, connect to Redis and Kafka (failing
 * fast, in one line, when either is unreachable), start the roles of this
 * process, and shut down cleanly on SIGTERM/SIGINT.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import type { Admin } from "kafkajs";
import { createApp } from "./api/app";
import { createKeyring } from "./api/auth";
import { createPendingCap } from "./api/client-limits";
import { createCacheAdmin } from "./cache";
import { BASE_QUEUES, type Config, ConfigError, describeConfig, loadConfig } from "./config";
import { AppError, errorMessage } from "./errors";
import { createEventBus } from "./events";
import type { HealthProbe } from "./health";
import { startConsumerRole } from "./ingest/consumer-role";
import { connectAdmin, createKafka, ensureTopics, kafkaProbe, requiredTopics } from "./ingest/kafka";
import { createLifecycle, handleSignals } from "./lifecycle";
import { loadPrompts } from "./llm/prompts";
import { createLogger } from "./log";
import { createEnqueuer } from "./queue/enqueuer";
import { createProducerQueue, JITTER_BACKOFF } from "./queue/queues";
import { createSupervisor, type Supervisor } from "./queue/supervisor";
import { createMetricsRecorder } from "./store/metrics";
import { connectRedis, logConnectionErrors, redisProbe, redisServerInfo } from "./store/redis";
import { createTaskStore } from "./store/task-store";
import { createTaskWaiter } from "./store/task-waiter";
import { APP_NAME, APP_VERSION } from "./version";

/** One line on stderr and exit 1: what a user sees when a setting or a service is wrong. */
function die(message: string): never {
  process.stderr.write(`${APP_NAME}: ${message}\n`);
  process.exit(1);
}

function loadConfigOrDie(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) die(error.message);
    throw error;
  }
}

/** Kafka is needed by the consumer role, and by workers when results go to a topic. */
function needsKafka(config: Config): boolean {
  return config.roles.has("consumer") || (config.roles.has("worker") && config.kafka.topicOut !== undefined);
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const config = loadConfigOrDie();
  const logger = createLogger({ level: config.logLevel });
  const lifecycle = createLifecycle(logger);
  handleSignals(lifecycle);
  logger.info({ version: APP_VERSION, bun: Bun.version, config: describeConfig(config) }, "starting");

  const hint = "start local services with `bun run services:up`, or point the variable at yours";
  const redis = await connectRedis(config.redisUrl).catch((error: unknown) => die(`${errorMessage(error)}; ${hint}`));
  lifecycle.onShutdown("redis", () => redis.quit());
  const warn = logger.warn.bind(logger);
  logConnectionErrors(redis, warn, "main");
  const redisInfo = await redisServerInfo(redis);
  if (!redisInfo.searchVersion) {
    logger.warn(
      "Redis has no Query Engine (search module): vector search is unavailable; the semantic cache degrades to exact matches",
    );
  }
  // The cache may live on another Redis: the Query Engine indexes database 0 only.
  const cacheRedis =
    config.cache.redisUrl === config.redisUrl
      ? redis
      : await connectRedis(config.cache.redisUrl).catch((error: unknown) =>
          die(`${errorMessage(error).replace("REDIS_URL", "CACHE_REDIS_URL")}; ${hint}`),
        );
  if (cacheRedis !== redis) {
    lifecycle.onShutdown("cache redis", () => cacheRedis.quit());
    logConnectionErrors(cacheRedis, warn, "cache");
  }
  const cacheAdmin = createCacheAdmin({
    redis: cacheRedis,
    config: config.cache,
    embedding: { model: config.llm.embeddingModel, dim: config.llm.embeddingDim },
  });
  const probes: HealthProbe[] = [redisProbe(redis), cacheAdmin.probe()];

  let kafkaCluster: { brokers: number; created: string[] } | undefined;
  let kafkaAdmin: Admin | undefined;
  if (needsKafka(config)) {
    // Few, quick retries: `bun start` must fail fast when the broker is away, and /health must answer quickly.
    const kafka = createKafka(config.kafka, logger, { retry: { retries: 2, initialRetryTime: 200 } });
    const admin = await connectAdmin(kafka, config.kafka.brokers).catch((error: unknown) =>
      die(`${errorMessage(error)}; ${hint}`),
    );
    lifecycle.onShutdown("kafka admin", () => admin.disconnect());
    const created = await ensureTopics(admin, requiredTopics(config.kafka));
    const cluster = await admin.describeCluster();
    kafkaCluster = { brokers: cluster.brokers.length, created };
    probes.push(kafkaProbe(admin, config.roles.has("consumer")));
    kafkaAdmin = admin;
  }
  logger.info(
    {
      redis: { version: redisInfo.version, search: redisInfo.searchVersion ?? "unavailable" },
      kafka: kafkaCluster ?? "not used by these roles",
    },
    "connected",
  );

  const bus = createEventBus();
  const metrics = createMetricsRecorder({ redis, bus, processId: `${hostname()}-${process.pid}-main`, logger });
  lifecycle.onShutdown("metrics", () => metrics.close());

  // Producers add to every queue a route can name; workers consume config.worker.queues.
  const queueNames = [...new Set([...BASE_QUEUES, ...config.routes.values(), ...config.worker.queues])];

  let supervisor: Supervisor | undefined;
  if (config.roles.has("worker")) {
    supervisor = createSupervisor({
      count: config.worker.processes,
      entry: join(import.meta.dir, "queue", "worker-process.ts"),
      logger: logger.child({ component: "supervisor" }),
      drainTimeoutMs: 10_000,
    });
    const running = supervisor;
    lifecycle.onShutdown("worker processes", () => running.stop(12_000));
    await supervisor.start().catch((error: unknown) => die(`worker processes did not start: ${errorMessage(error)}`));
  }

  if (config.roles.has("consumer")) {
    const consumer = await startConsumerRole({
      config: config.kafka,
      redis,
      bus,
      logger: logger.child({ component: "ingest" }),
      ...(kafkaAdmin ? { admin: kafkaAdmin } : {}),
    }).catch((error: unknown) => die(`Kafka consumer threads did not start: ${errorMessage(error)}`));
    // Registered after metrics and the worker processes, so it runs before both: ingestion stops first
    // (each thread finishes its batch, commits, leaves the group), its last stats are still recorded.
    lifecycle.onShutdown("kafka consumer threads", () => consumer.stop(10_000));
    probes.push(consumer.probe);
    logger.info({ threads: config.kafka.consumerThreads, topic: config.kafka.topicIn }, "kafka consumer running");
  }
  if (config.roles.has("api")) {
    const queues = new Map(queueNames.map((name) => [name, createProducerQueue(name, { redis })]));
    for (const [name, queue] of queues) logConnectionErrors(queue, warn, `queue ${name}`);
    await Promise.all([...queues.values()].map((queue) => queue.ready()));
    lifecycle.onShutdown("producer queues", () => Promise.all([...queues.values()].map((queue) => queue.close())));
    const waiter = await createTaskWaiter({ redis, logger });
    lifecycle.onShutdown("task waiter", () => waiter.close());
    const enqueuer = createEnqueuer({
      queues,
      options: { retries: config.worker.retries, backoffStrategy: JITTER_BACKOFF, backoffMs: config.worker.backoffMs },
      bus,
      logger: logger.child({ component: "enqueue" }),
    });
    lifecycle.onShutdown("enqueue", () => enqueuer.flush());
    const keyring = createKeyring(config.apiKeys);
    const app = createApp({
      logger: logger.child({ component: "api" }),
      probes,
      roles: [...config.roles],
      startedAt,
      maxBodyBytes: config.maxBodyBytes,
      tasks: {
        redis,
        enqueuer,
        store: createTaskStore({ redis, resultTtlSeconds: config.resultTtlSeconds, queues: queueNames }),
        waiter,
        bus,
        routes: config.routes,
        taskTypes: new Set(Object.keys(loadPrompts(config.promptsFile))),
        tenantOf: keyring.tenantOf,
        logger,
        pendingCap: createPendingCap({
          redis,
          max: config.apiMaxPendingTasks,
          resultTtlSeconds: config.resultTtlSeconds,
        }),
      },
      access: { keyring, redis, rateLimit: config.apiRateLimit },
      operations: { redis, queues: queueNames, ...(supervisor ? { supervisor: supervisor.counts } : {}) },
      cache: {
        admin: cacheAdmin,
        logger: logger.child({ component: "cache" }),
        mayAdminister: (request) => {
          if (!keyring.enabled) return true;
          const tenant = keyring.tenantOf(request);
          return tenant !== undefined && config.apiAdmins.has(tenant);
        },
      },
    });
    try {
      app.listen({ port: config.port, hostname: "0.0.0.0" });
    } catch (error) {
      die(`cannot listen on port ${config.port} (PORT): ${errorMessage(error)}`);
    }
    // Registered last, so it runs first: stop accepting before anything else closes.
    lifecycle.onShutdown("http server", () => app.stop());
    logger.info({ port: config.port, docs: `http://127.0.0.1:${config.port}/swagger` }, "api listening");
  }
  logger.info({ roles: [...config.roles], startup_ms: Date.now() - startedAt }, "ready");
}

main().catch((error: unknown) => {
  if (error instanceof AppError) die(error.message);
  process.stderr.write(
    `${APP_NAME}: fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
