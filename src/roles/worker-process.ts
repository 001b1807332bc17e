/**
 * Entry of one worker process (started by the supervisor, or alone with
 * `bun src/roles/worker-process.ts`): connects, runs jobs of the configured
 * queues, sends heartbeats and metrics, asks to be recycled past its job or
 * memory limit, and drains on a `drain` message, SIGTERM or its parent's death.
 */

import { hostname } from "node:os";
import { createCache } from "../cache";
import { loadConfig } from "../config";
import { errorMessage } from "../errors";
import { createEventBus } from "../events";
import { startResultPublisher, withResultsOut } from "../ingest/publish-kafka-results";
import { createEmbedder, createLlmProvider } from "../llm";
import { createModelRoutes } from "../llm/model-routes";
import { loadPrompts, promptFor } from "../llm/prompts";
import { createRateLimiter } from "../llm/rate-limiter";
import { createLogger } from "../log";
import { createMetricsRecorder } from "../metrics/recorder";
import { createTaskProcessor } from "../pipeline/process-task";
import { createAdaptiveConcurrency, fixedConcurrencyStatus } from "../queue/adaptive-concurrency";
import { queuedJobs, queueKeys } from "../queue/bee-queue-layout";
import { createFailedJobRetention } from "../queue/failed-jobs";
import { TakeGate } from "../queue/take-gate";
import type { FromWorker, ToWorker } from "../queue/worker-protocol";
import { createWorkerHeartbeat, listWorkers } from "../queue/worker-registry";
import { createWorkerRunner } from "../queue/worker-runner";
import { connectRedis, logConnectionErrors } from "../redis/client";
import { type ControlState, control, watchControl } from "../store/control";
import { planTask, watchExperiments } from "../store/experiments";
import { createTaskStore, startScriptArgs } from "../store/task-store";
import { createTokenLog } from "../store/task-tokens";
import { APP_NAME, APP_VERSION } from "../version";
import { createDeliverer } from "../webhooks/deliverer";
import { createDeliveryStore } from "../webhooks/delivery-store";
import { createSecrets } from "../webhooks/signing";

const config = loadConfig();
const workerId = process.env.WORKER_ID ?? `${hostname()}-${process.pid}`;
const logger = createLogger({ level: config.logLevel, base: { component: "worker", worker_id: workerId } });
const send = (message: FromWorker) => process.send?.(message);
const rssMb = () => Math.round(process.memoryUsage.rss() / 1024 / 1024);

try {
  const redis = await connectRedis(config.redisUrl);
  logConnectionErrors(redis, logger.warn.bind(logger), "worker");
  const bus = createEventBus();
  // Jobs in flight: adaptive (WORKER_JOBS_PER_PROCESS=auto, the default) or fixed per queue.
  const jobsPerProcess = config.worker.jobsPerProcess;
  const gate = jobsPerProcess === "auto" ? new TakeGate(1) : undefined;
  let onThrottled = () => {};
  const routes = createModelRoutes(config.llm);
  const provider = createLlmProvider(config.llm, {
    logger,
    simulatedLatencyMs: config.simulatedLatencyMs,
    simulatedTokenLatencyMs: config.simulatedTokenLatencyMs,
    embedding: config.embedding,
    onThrottled: () => onThrottled(),
    redis,
    bus,
    routes,
    unknownPrice: { input: config.cache.prices.input, output: config.cache.prices.output },
  });
  const embedder = createEmbedder(config.embedding, {
    apiKey: config.llm.apiKey,
    cohereApiKey: config.llm.cohere.apiKey,
    logger,
  });
  const prompts = loadPrompts(config.promptsFile);
  // What an operator changed at run time (store/control.ts): read before any job is taken, then every second.
  let applyControl: (state: ControlState, previous: ControlState) => void = () => {};
  const controlWatch = watchControl({ redis, logger, onChange: (state, previous) => applyControl(state, previous) });
  const initialControl = await controlWatch.refresh();
  // Prompt versions and experiments (store/experiments.ts): a snapshot read before any job, then within a second of a change.
  const experiments = watchExperiments({ redis, logger });
  await experiments.refresh();
  // The operator's limit, when set, replaces LLM_RATE_LIMIT for the next call (PUT /admin/rate-limit).
  const limiterLimit = () => {
    const override = controlWatch.current().rateLimit;
    return override ? { calls: override.calls, periodMs: override.period_ms } : config.llm.rateLimit;
  };
  const limiter = createRateLimiter({ redis, limit: limiterLimit, burst: config.llm.rateBurst });
  // A task with a callback_url gets its webhook delivery in the pipeline that records its end (issue 15 §4).
  const deliveries = createDeliveryStore({ redis });
  const store = createTaskStore({
    redis,
    resultTtlSeconds: config.resultTtlSeconds,
    queued: queuedJobs(config.worker.queues),
    eventsMaxLen: config.events.streamMaxLen,
    onFinish: deliveries.onFinish,
    keepInput: config.resultKeepInput,
    // A success takes its job out of the queue in the same script (issue 18 §2); the runner then skips
    // Bee-Queue's own finish of it.
    runningJobs: (queue) => queueKeys(queue),
    onJobReleased: (queue, taskId) => runner.jobReleased(queue, taskId),
  });
  // Without WEBHOOK_SECRET nothing can be signed: deliveries wait in Redis for a worker that has it.
  const webhookSecret = config.webhooks.secret;
  const deliverer = webhookSecret
    ? createDeliverer({
        store: deliveries,
        secretOf: createSecrets(webhookSecret),
        allowPrivate: config.webhooks.allowPrivate,
        maxAttempts: config.webhooks.maxAttempts,
        retryBaseMs: config.webhooks.retryBaseMs,
        retryMaxMs: config.webhooks.retryMaxMs,
        timeoutMs: config.webhooks.timeoutMs,
        concurrency: config.webhooks.concurrency,
        logger: logger.child({ component: "webhooks" }),
        bus,
        userAgent: `${APP_NAME}-webhooks/${APP_VERSION}`,
      })
    : undefined;
  const metrics = createMetricsRecorder({ redis, bus, processId: workerId, logger });
  // The cache may live on another Redis (the Query Engine indexes database 0 only).
  const cacheRedis = config.cache.redisUrl === config.redisUrl ? redis : await connectRedis(config.cache.redisUrl);
  const { cache, ensure: ensureCacheIndex } = createCache({
    redis: cacheRedis,
    config: config.cache,
    embedder,
    bus,
    logger,
    jobTimeoutMs: config.worker.jobTimeoutMs,
  });
  await ensureCacheIndex();
  // Results of Kafka events also go to KAFKA_TOPIC_OUT when it is set (issue 6).
  const publisher = await startResultPublisher({ config: config.kafka, bus, logger });

  let recycleAsked = false;
  const askRecycle = (reason: "max_jobs" | "memory" | "operator", processed: number) => {
    if (recycleAsked || !process.send) return;
    recycleAsked = true;
    send({ type: "recycle", reason, processed, rss_mb: rssMb() });
  };

  const processTask = createTaskProcessor({
    provider,
    systemPrompt: (taskType) => promptFor(prompts, taskType),
    limiter,
    store,
    bus,
    logger,
    jobTimeoutMs: config.worker.jobTimeoutMs,
    defaultModel: config.llm.model,
    modelFor: routes.modelFor,
    cache,
    tokens: createTokenLog({ redis, ttlSeconds: config.resultTtlSeconds }),
    // Every retry, plus three re-runs after a dead worker or a drain that gave the job back.
    maxAttempts: config.worker.retries + 4,
    plan: (task) => planTask(experiments.current(), task),
  });
  // The live worker processes that share the rate limit, for this one's share of it (read every 5 s when limited).
  let liveWorkers = 1;
  const countWorkers = () => {
    if (!limiterLimit()) return;
    listWorkers({ redis }).then(
      (workers) => {
        liveWorkers = Math.max(1, workers.length);
      },
      () => {},
    );
  };
  const workersTimer = gate ? setInterval(countWorkers, 5000) : undefined;
  workersTimer?.unref();
  const adaptive = gate
    ? createAdaptiveConcurrency({
        gate,
        settings: {
          max: config.worker.maxJobsPerProcess,
          memoryBudgetMb: config.worker.maxMemoryMb > 0 ? Math.floor(config.worker.maxMemoryMb * 0.8) : 2048,
        },
        rateLimit: limiterLimit,
        workers: () => liveWorkers,
        rssMb: () => process.memoryUsage.rss() / 1024 / 1024,
        logger,
      })
    : undefined;
  const jobsInFlight =
    adaptive ??
    fixedConcurrencyStatus((jobsPerProcess as number) * config.worker.queues.length, () => runner.stats().active);
  onThrottled = () => jobsInFlight.onThrottled();
  bus.on("llm.call", (e) => {
    if (e.status === 429) jobsInFlight.onThrottled();
  });
  if (adaptive) bus.on("llm.rate_limited", (e) => adaptive.onRateLimitWait(e.wait_ms));
  const runner = createWorkerRunner({
    redis,
    queues: config.worker.queues,
    // Auto: Bee-Queue runs at the ceiling per queue, and the gate decides how many are taken.
    concurrency: jobsPerProcess === "auto" ? config.worker.maxJobsPerProcess : jobsPerProcess,
    ...(gate && adaptive ? { gate, onJobEnd: adaptive.onJobEnd } : {}),
    // Each task starts in the script that takes its job (issue 18 §2).
    taskStart: startScriptArgs(redis),
    processTask: publisher ? withResultsOut(processTask, { publisher, store, bus, logger }) : processTask,
    backoff: { baseMs: config.worker.backoffMs, maxMs: Math.max(config.worker.backoffMs, 60_000) },
    stallIntervalMs: config.worker.stallIntervalMs,
    failedJobs: createFailedJobRetention({
      redis,
      queues: config.worker.queues,
      keep: config.worker.failedJobs.keep,
      maxAgeMs: config.worker.failedJobs.maxAgeMs,
      logger,
    }),
    logger,
    onJobDone: (stats) => {
      if (config.worker.maxJobs > 0 && stats.processed >= config.worker.maxJobs)
        askRecycle("max_jobs", stats.processed);
    },
  });

  const heartbeat = createWorkerHeartbeat({
    redis,
    logger,
    info: {
      id: workerId,
      host: hostname(),
      pid: process.pid,
      queues: [...config.worker.queues],
      concurrency: jobsInFlight.status().limit,
      started_at: Date.now(),
    },
    stats: () => {
      const stats = runner.stats();
      const status = jobsInFlight.status();
      return {
        active_jobs: stats.active,
        processed: stats.processed,
        failed: stats.failed,
        rss_mb: rssMb(),
        concurrency: status.limit,
        jobs_in_flight: status,
        stall_check: runner.stallTiming(),
      };
    },
  });

  let draining: Promise<void> | undefined;
  const drain = (reason: string, timeoutMs: number) => {
    draining ??= (async () => {
      logger.info({ reason, timeout_ms: timeoutMs, ...runner.stats() }, "draining");
      // Attempts in flight get a few seconds; the rest are given back to Redis, due at once for another process.
      await Promise.all([runner.drain(timeoutMs), deliverer?.stop(Math.min(timeoutMs / 2, 5000))]);
      await publisher?.close();
      controlWatch.stop();
      experiments.stop();
      jobsInFlight.stop();
      clearInterval(workersTimer);
      await heartbeat.stop();
      await metrics.close();
      if (cacheRedis !== redis) await cacheRedis.quit().catch(() => cacheRedis.disconnect());
      await redis.quit().catch(() => redis.disconnect());
      logger.info({ ...runner.stats() }, "worker stopped");
      logger.flush();
      process.exit(0);
    })().catch((error: unknown) => {
      logger.error({ error: errorMessage(error) }, "drain failed");
      logger.flush();
      process.exit(1);
    });
    return draining;
  };

  process.on("message", (message: ToWorker) => {
    if (message.type === "drain") void drain("recycle or shutdown", message.timeout_ms);
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void drain(signal, 10_000));

  const parent = process.ppid;
  setInterval(() => {
    // An orphan (the supervisor was killed -9) must not keep taking jobs.
    if (process.send && process.ppid !== parent) void drain("parent process gone", 10_000);
    if (config.worker.maxMemoryMb > 0 && rssMb() > config.worker.maxMemoryMb)
      askRecycle("memory", runner.stats().processed);
  }, 1000).unref();

  applyControl = (state, previous) => {
    for (const queue of config.worker.queues) {
      const paused = queue in state.pausedQueues;
      if (paused === runner.pausedQueues().includes(queue)) continue;
      const change = paused ? runner.pause(queue) : runner.resume(queue);
      change.then(
        (changed) => {
          if (changed)
            logger.info(
              { queue, by: (state.pausedQueues[queue] ?? previous.pausedQueues[queue])?.by },
              paused ? "queue paused by an operator: taking no new jobs" : "queue resumed by an operator",
            );
        },
        (error: unknown) => logger.error({ queue, err: error }, "could not apply an operator's pause or resume"),
      );
    }
    const rate = state.rateLimit;
    if (JSON.stringify(rate) !== JSON.stringify(previous.rateLimit))
      logger.info(
        rate
          ? { calls: rate.calls, period_ms: rate.period_ms, by: rate.by }
          : { limit: config.llm.rateLimit ?? "none" },
        rate ? "LLM rate limit set by an operator" : "LLM rate limit back to LLM_RATE_LIMIT",
      );
    const recycle = state.recycle[workerId];
    if (recycle && !previous.recycle[workerId]) {
      void control.takeRecycle(redis, workerId).catch(() => {});
      logger.info({ by: recycle.by }, "recycle asked by an operator");
      // Under a supervisor, a replacement starts first; alone, the process drains and exits for its orchestrator.
      if (process.send) askRecycle("operator", runner.stats().processed);
      else void drain("recycled by an operator", 10_000);
    }
  };

  await runner.start(Object.keys(initialControl.pausedQueues));
  if (Object.keys(initialControl.pausedQueues).length > 0)
    logger.info(
      { paused: Object.keys(initialControl.pausedQueues) },
      "queues paused by an operator: not taking their jobs",
    );
  deliverer?.start();
  jobsInFlight.start();
  countWorkers();
  heartbeat.start();
  logger.info(
    {
      queues: config.worker.queues,
      jobs_per_process: jobsPerProcess === "auto" ? `auto (max ${config.worker.maxJobsPerProcess})` : jobsPerProcess,
      provider: provider.name,
      webhooks: deliverer ? "delivering" : "off (no WEBHOOK_SECRET)",
    },
    "worker ready",
  );
  send({ type: "ready", worker_id: workerId, pid: process.pid });
} catch (error) {
  process.stderr.write(`ai-eventstream worker: ${errorMessage(error)}\n`);
  process.exit(1);
}
