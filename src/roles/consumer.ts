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
import type { EventBus } from "../events";
import type { HealthProbe } from "../health-probe";
import { createBackpressure } from "../ingest/backpressure";
import { startLagReporting } from "../ingest/consumer-lag";
import { type ConsumerPool, createConsumerPool } from "../ingest/consumer-pool";
import type { Logger } from "../log";

/** A role whose threads did not all join stops the ones that did within this long. */
const STOP_AFTER_FAILED_START_MS = 10_000;

export interface ConsumerRole {
  pool: ConsumerPool;
  probe: HealthProbe;
  stop(timeoutMs: number): Promise<void>;
}

export async function startConsumerRole(deps: {
  config: Config["kafka"];
  /** GCRA burst tolerance of the global LLM rate limit (LLM_RATE_BURST), ms; absent: 0. */
  limiterToleranceMs?: number;
  redis: Redis;
  bus: EventBus;
  logger: Logger;
  /**
   * Reads the lag from the broker as well: threads report it only after a
   * batch, so a paused or idle consumer would otherwise show a stale figure.
   */
  admin?: Pick<Admin, "fetchTopicOffsets" | "fetchOffsets">;
  env?: Record<string, string>;
  /** The consumer thread's entry file; tests give a stand-in. */
  entry?: string;
  /** How long the threads may take to join before the role gives up. */
  startTimeoutMs?: number;
}): Promise<ConsumerRole> {
  const { config, redis, bus, logger, env, admin } = deps;
  const { entry = join(import.meta.dir, "..", "ingest", "consumer-thread.ts"), startTimeoutMs } = deps;
  const pool = createConsumerPool({
    threads: config.consumerThreads,
    entry,
    bus,
    logger,
    ...(env ? { env } : {}),
    ...(startTimeoutMs === undefined ? {} : { startTimeoutMs }),
    onHighWatermark: (waiting) => backpressure.report(waiting),
  });
  const backpressure = createBackpressure({
    redis,
    settings: {
      highWatermark: config.queueHighWatermark,
      lowWatermark: config.queueLowWatermark,
      rateLimitPauseMs: config.rateLimitPauseMs,
      limiterToleranceMs: deps.limiterToleranceMs ?? 0,
    },
    onChange: (reason) => (reason ? pool.pause(reason) : pool.resume()),
    logger,
  });
  const lagReport = startLagReporting({
    config,
    redis,
    logger,
    current: () => pool.status().lags,
    record: (lags) => pool.recordLags(lags),
    ...(admin ? { admin } : {}),
  });
  try {
    await pool.start();
  } catch (error) {
    // Nothing of a role that did not start may go on: not its threads, not its lag timers.
    await lagReport.stop();
    await pool.stop(STOP_AFTER_FAILED_START_MS);
    throw error;
  }
  backpressure.start();

  return {
    pool,
    probe: {
      name: "kafka_consumer",
      required: true,
      async check() {
        const status = pool.status();
        // A restart loop is degraded, not down, even while no thread is up: the pool restarts them by itself,
        // and what kills them (a poison batch) follows the partition to any process, so taking this one out of
        // service would not help.
        if (status.alive === 0 && status.looping.length === 0) {
          throw new Error(`no consumer thread of ${status.threads} is running`);
        }
        const degraded = [
          ...(status.alive < status.threads
            ? [`${status.threads - status.alive} of ${status.threads} threads down`]
            : []),
          ...status.looping.map((l) => `thread ${l.thread} in a restart loop: ${l.deaths} restarts in a row`),
        ];
        return {
          ...(degraded.length > 0 ? { degraded: degraded.join("; ") } : {}),
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
      try {
        await pool.stop(timeoutMs);
      } finally {
        // After the pool: the threads' last reports are in the final write.
        await lagReport.stop();
      }
    },
  };
}
