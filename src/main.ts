/**
 * Entry point: load the configuration, connect to Redis and Kafka (failing
 * fast, in one line, when either is unreachable), start the roles of this
 * process (roles/), and shut down cleanly on SIGTERM/SIGINT.
 */
import { hostname } from "node:os";
import { type Config, ConfigError, describeConfig, loadConfig } from "./config";
import { AppError, errorMessage } from "./errors";
import { createEventBus } from "./events";
import { createLifecycle, handleSignals } from "./lifecycle";
import { burstToleranceMs } from "./llm/rate-limiter";
import { createLogger } from "./log";
import { createMetricsRecorder } from "./metrics/recorder";
import type { Supervisor } from "./queue/supervisor";
import { startApiRole } from "./roles/api";
import { startConsumerRole } from "./roles/consumer";
import { connectServices, ServiceUnreachableError } from "./roles/services";
import { startWorkerRole } from "./roles/worker";
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

async function main(): Promise<void> {
  const startedAt = Date.now();
  const config = loadConfigOrDie();
  const logger = createLogger({ level: config.logLevel });
  const lifecycle = createLifecycle(logger);
  handleSignals(lifecycle);
  logger.info({ version: APP_VERSION, bun: Bun.version, config: describeConfig(config) }, "starting");

  const { redis, cacheAdmin, kafkaAdmin, probes } = await connectServices(config, logger, lifecycle);
  const bus = createEventBus();
  const metrics = createMetricsRecorder({ redis, bus, processId: `${hostname()}-${process.pid}-main`, logger });
  lifecycle.onShutdown("metrics", () => metrics.close());

  let supervisor: Supervisor | undefined;
  if (config.roles.has("worker")) {
    supervisor = await startWorkerRole({ config: config.worker, logger, lifecycle }).catch((error: unknown) =>
      die(`worker processes did not start: ${errorMessage(error)}`),
    );
  }
  if (config.roles.has("consumer")) {
    const consumer = await startConsumerRole({
      config: config.kafka,
      // With LLM_RATE_BURST, the limiter's state may lie this far ahead and still admit calls now (at the configured
      // limit's interval: an operator's PUT /admin/rate-limit changes the interval, not this tolerance).
      limiterToleranceMs: config.llm.rateLimit
        ? burstToleranceMs(config.llm.rateBurst, config.llm.rateLimit.periodMs / config.llm.rateLimit.calls)
        : 0,
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
    const api = await startApiRole({
      config,
      redis,
      bus,
      logger,
      lifecycle,
      probes,
      cacheAdmin,
      startedAt,
      ...(supervisor ? { supervisor: supervisor.counts } : {}),
    });
    try {
      api.listen();
    } catch (error) {
      die(`cannot listen on port ${config.port} (PORT): ${errorMessage(error)}`);
    }
  }
  logger.info({ roles: [...config.roles], startup_ms: Date.now() - startedAt }, "ready");
}

main().catch((error: unknown) => {
  if (error instanceof AppError || error instanceof ServiceUnreachableError) die(error.message);
  process.stderr.write(
    `${APP_NAME}: fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
