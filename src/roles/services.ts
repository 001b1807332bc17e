/**
 * The outside services a process's roles need, connected at start: Redis
 * (and the cache's Redis, when CACHE_REDIS_URL names another), Kafka when a
 * role uses it. Each connection failure becomes one line that names the
 * variable and how to start local services; each connection is closed at
 * shutdown and reports to /health.
 */
import type { Admin } from "kafkajs";
import { type CacheAdmin, createCacheAdmin } from "../cache";
import type { Config } from "../config";
import { errorMessage } from "../errors";
import type { HealthProbe } from "../health-probe";
import { connectAdmin, createKafka, ensureTopics, kafkaProbe, requiredTopics } from "../ingest/kafka";
import type { Lifecycle } from "../lifecycle";
import { embeddingSpaceOf } from "../llm";
import type { Logger } from "../log";
import { connectRedis, logConnectionErrors, type RedisClient, redisProbe, redisServerInfo } from "../redis/client";

const HINT = "start local services with `bun run services:up`, or point the variable at yours";

/** A service that cannot be reached: main prints the message and exits 1. */
export class ServiceUnreachableError extends Error {
  override name = "ServiceUnreachableError";
}

/** Kafka is needed by the consumer role, and by workers when results go to a topic. */
function needsKafka(config: Config): boolean {
  return config.roles.has("consumer") || (config.roles.has("worker") && config.kafka.topicOut !== undefined);
}

export interface Services {
  redis: RedisClient;
  cacheAdmin: CacheAdmin;
  /** Present when a role of this process uses Kafka. */
  kafkaAdmin: Admin | undefined;
  probes: HealthProbe[];
}

export async function connectServices(config: Config, logger: Logger, lifecycle: Lifecycle): Promise<Services> {
  const unreachable = (error: unknown, message = errorMessage(error)): never => {
    throw new ServiceUnreachableError(`${message}; ${HINT}`);
  };
  const warn = logger.warn.bind(logger);
  const redis = await connectRedis(config.redisUrl).catch((error: unknown) => unreachable(error));
  lifecycle.onShutdown("redis", () => redis.quit());
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
          unreachable(error, errorMessage(error).replace("REDIS_URL", "CACHE_REDIS_URL")),
        );
  if (cacheRedis !== redis) {
    lifecycle.onShutdown("cache redis", () => cacheRedis.quit());
    logConnectionErrors(cacheRedis, warn, "cache");
  }
  const cacheAdmin = createCacheAdmin({
    redis: cacheRedis,
    config: config.cache,
    embedding: embeddingSpaceOf(config.embedding),
  });
  const probes: HealthProbe[] = [redisProbe(redis), cacheAdmin.probe()];

  let kafkaAdmin: Admin | undefined;
  let kafkaCluster: { brokers: number; created: string[] } | undefined;
  if (needsKafka(config)) {
    // Few, quick retries: `bun start` must fail fast when the broker is away, and /health must answer quickly.
    const kafka = createKafka(config.kafka, logger, { retry: { retries: 2, initialRetryTime: 200 } });
    const admin = await connectAdmin(kafka, config.kafka.brokers).catch((error: unknown) => unreachable(error));
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
  return { redis, cacheAdmin, kafkaAdmin, probes };
}
