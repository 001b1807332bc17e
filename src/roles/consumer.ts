/**
 * The consumer role of a process: the pool of consumer threads, the
 * backpressure controller that pauses and resumes them, the consumer lag per
 * partition written to Redis for /metrics (any process answers it), and a
 * health probe for /health.
 */
import { join } from "node:path";
import type Redis from "ioredis";
import type { Admin } from "kafkajs";
import type { Config } from "../config";
import { errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { HealthProbe } from "../health-probe";
import { createBackpressure } from "../ingest/backpressure";
import { type ConsumerPool, createConsumerPool } from "../ingest/consumer-pool";
import type { Logger } from "../log";
import { metricsKeys } from "../metrics/keys";

const LAG_WRITE_INTERVAL_MS = 1000;
/** The group's committed offsets against the log end, read by the admin client this often. */
const LAG_POLL_INTERVAL_MS = 5000;
/** Lag entries of partitions no thread reports any more (revoked, group gone) fade out. */
const LAG_TTL_SECONDS = 300;

export interface ConsumerRole {
  pool: ConsumerPool;
  probe: HealthProbe;
  stop(timeoutMs: number): Promise<void>;
}

export async function startConsumerRole(deps: {
  config: Config["kafka"];
  redis: Redis;
  bus: EventBus;
  logger: Logger;
  /**
   * Reads the lag from the broker as well: threads report it only after a
   * batch, so a paused or idle consumer would otherwise show a stale figure.
   */
  admin?: Pick<Admin, "fetchTopicOffsets" | "fetchOffsets">;
  env?: Record<string, string>;
}): Promise<ConsumerRole> {
  const { config, redis, bus, logger, env, admin } = deps;
  const pool = createConsumerPool({
    threads: config.consumerThreads,
    entry: join(import.meta.dir, "..", "ingest", "consumer-thread.ts"),
    bus,
    logger,
    ...(env ? { env } : {}),
    onHighWatermark: (waiting) => backpressure.report(waiting),
  });
  const backpressure = createBackpressure({
    redis,
    settings: {
      highWatermark: config.queueHighWatermark,
      lowWatermark: config.queueLowWatermark,
      rateLimitPauseMs: config.rateLimitPauseMs,
    },
    onChange: (reason) => (reason ? pool.pause(reason) : pool.resume()),
    logger,
  });
  const lagKey = metricsKeys().kafkaLag;
  const pollLag = async () => {
    if (!admin) return;
    const [ends, [committed]] = await Promise.all([
      admin.fetchTopicOffsets(config.topicIn),
      admin.fetchOffsets({ groupId: config.groupId, topics: [config.topicIn] }),
    ]);
    const at = Date.now();
    const lags = ends.map((end) => {
      const offset = committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? "-1";
      // -1: nothing committed yet; the whole partition (from its low watermark) is lag.
      const from = offset === "-1" ? BigInt(end.low) : BigInt(offset);
      const lag = Number(BigInt(end.high) - from);
      return { topic: config.topicIn, partition: end.partition, lag: Math.max(0, lag), committed: offset, at };
    });
    pool.recordLags(lags);
  };
  const writeLag = async () => {
    const lags = pool.status().lags;
    if (lags.length === 0) return;
    const fields = Object.fromEntries(
      lags.map((l) => [`${l.topic}:${l.partition}`, JSON.stringify({ lag: l.lag, committed: l.committed, at: l.at })]),
    );
    await redis.pipeline().hset(lagKey, fields).expire(lagKey, LAG_TTL_SECONDS).exec();
  };
  const lagTimer = setInterval(() => {
    writeLag().catch((error: unknown) =>
      logger.warn({ error: errorMessage(error) }, "writing the consumer lag failed"),
    );
  }, LAG_WRITE_INTERVAL_MS);
  const lagPollTimer = setInterval(() => {
    pollLag().catch((error: unknown) =>
      logger.debug({ error: errorMessage(error) }, "reading the consumer lag failed"),
    );
  }, LAG_POLL_INTERVAL_MS);

  await pool.start();
  backpressure.start();

  return {
    pool,
    probe: {
      name: "kafka_consumer",
      required: true,
      async check() {
        const status = pool.status();
        if (status.alive === 0) throw new Error(`no consumer thread of ${status.threads} is running`);
        return {
          threads: status.threads,
          alive: status.alive,
          restarts: status.restarts,
          paused: status.paused ?? false,
          assigned_partitions: status.assigned,
          consumed: status.totals.consumed,
          enqueued: status.totals.enqueued,
          lag: Object.fromEntries(status.lags.map((l) => [`${l.topic}:${l.partition}`, l.lag])),
        };
      },
    },
    async stop(timeoutMs) {
      backpressure.stop();
      clearInterval(lagTimer);
      clearInterval(lagPollTimer);
      await pool.stop(timeoutMs);
      await writeLag().catch(() => {});
    },
  };
}
