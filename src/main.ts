/**
 * Entry point: load the configuration, connect to Redis and Kafka (failing
 * fast, in one line, when either is unreachable), start the roles of this
 * process, and shut down cleanly on SIGTERM/SIGINT.
 */
import { createApp } from "./api/app";
import { type Config, ConfigError, describeConfig, loadConfig } from "./config";
import { AppError, errorMessage } from "./errors";
import type { HealthProbe } from "./health";
import { connectAdmin, createKafka, ensureTopics, kafkaProbe, requiredTopics } from "./ingest/kafka";
import { createLifecycle, handleSignals } from "./lifecycle";
import { createLogger } from "./log";
import { connectRedis, redisProbe, redisServerInfo, vectorSearchProbe } from "./store/redis";
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
  const redisInfo = await redisServerInfo(redis);
  if (!redisInfo.searchVersion) {
    logger.warn(
      "Redis has no Query Engine (search module): vector search is unavailable; the semantic cache degrades to exact matches",
    );
  }
  const probes: HealthProbe[] = [redisProbe(redis), vectorSearchProbe(redis)];

  let kafkaCluster: { brokers: number; created: string[] } | undefined;
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
  }
  logger.info(
    {
      redis: { version: redisInfo.version, search: redisInfo.searchVersion ?? "unavailable" },
      kafka: kafkaCluster ?? "not used by these roles",
    },
    "connected",
  );

  for (const role of ["consumer", "worker"] as const) {
    if (config.roles.has(role)) {
      logger.warn(
        { role },
        `the '${role}' role is not implemented in this version yet; only its connections are checked`,
      );
    }
  }

  if (config.roles.has("api")) {
    const app = createApp({ logger: logger.child({ component: "api" }), probes, roles: [...config.roles], startedAt });
    try {
      app.listen({ port: config.port, hostname: "0.0.0.0" });
    } catch (error) {
      die(`cannot listen on port ${config.port} (PORT): ${errorMessage(error)}`);
    }
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
