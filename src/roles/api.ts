/**
 * The API role: producer queues for every queue a route can name, the
 * batched enqueuer, the task waiter, and the Elysia app listening on PORT.
 * Wiring only; the routes are in api/.
 */
import { createApp } from "../api/app";
import { createKeyring } from "../api/auth";
import { createPendingCap } from "../api/client-limits";
import { FINE_TUNE_DEFAULTS } from "../api/fine-tunes";
import { createStreamTokens, loadStreamTokenKey } from "../api/stream-tokens";
import type { CacheAdmin } from "../cache";
import type { Config } from "../config";
import type { EventBus } from "../events";
import { startAutoFineTune } from "../finetune/auto-fine-tune";
import { createFineTuneRecords } from "../finetune/fine-tune-records";
import { createFineTuner, type VariantRegistrar } from "../finetune/fine-tuner";
import type { SystemPromptOf } from "../finetune/training-file";
import type { HealthProbe } from "../health-probe";
import type { Lifecycle } from "../lifecycle";
import { createOpenAiFineTuning, FINE_TUNING_PROVIDERS } from "../llm/fine-tuning";
import { createModelRoutes, parseModel, providerCheck } from "../llm/model-routes";
import { loadPrompts, promptFor } from "../llm/prompts";
import type { Logger } from "../log";
import { JITTER_BACKOFF, queuedJobs, queueKeys } from "../queue/bee-queue-layout";
import { createEnqueuer } from "../queue/enqueuer";
import { createTaskControl } from "../queue/task-control";
import type { RedisClient } from "../redis/client";
import { createEventHub } from "../store/event-hub";
import { createExperimentStore, registerModelVariant, watchExperiments } from "../store/experiments";
import { createTaskStore } from "../store/task-store";
import { createTaskWaiter } from "../store/task-waiter";
import { createTrainingExamples } from "../store/training-examples";
import { producerQueues } from "../task/routing";
import { resolveCallback } from "../webhooks/callback-url";
import { createDeliveryStore } from "../webhooks/delivery-store";
import { createSecrets } from "../webhooks/signing";

export async function startApiRole(deps: {
  config: Config;
  redis: RedisClient;
  bus: EventBus;
  logger: Logger;
  lifecycle: Lifecycle;
  probes: readonly HealthProbe[];
  cacheAdmin: CacheAdmin;
  /** Recycling counts of this node's worker processes, when it runs the worker role. */
  supervisor?: () => { recycled: number; restarted: number };
  startedAt: number;
  /** Registers a fine-tuned model as an experiment's variant; absent: a fine-tune ends without one. */
  fineTuneRegistrar?: VariantRegistrar;
  /** The system prompt of a training example; absent: its task type's current prompt. */
  systemPromptOf?: SystemPromptOf;
}): Promise<{ listen(): void }> {
  const { config, redis, bus, logger, lifecycle } = deps;
  // Producers add to every queue a route can name; workers consume config.worker.queues.
  const queueNames = producerQueues(config.routes, config.worker.queues);
  const prompts = loadPrompts(config.promptsFile);
  // The API writes jobs itself, in Bee-Queue's record format (queue/enqueuer.ts): it needs no Bee-Queue object.
  const queues = new Map(queueNames.map((name) => [name, queueKeys(name)]));
  const waiter = await createTaskWaiter({ redis, logger });
  lifecycle.onShutdown("task waiter", () => waiter.close());
  const hub = await createEventHub({ redis, logger: logger.child({ component: "events" }) });
  lifecycle.onShutdown("event hub", () => hub.close());
  const store = createTaskStore({
    redis,
    resultTtlSeconds: config.resultTtlSeconds,
    queued: queuedJobs(queueNames),
    keepInput: config.resultKeepInput,
  });
  const enqueuer = createEnqueuer({
    redis,
    queues,
    options: { retries: config.worker.retries, backoffStrategy: JITTER_BACKOFF, backoffMs: config.worker.backoffMs },
    bus,
    logger: logger.child({ component: "enqueue" }),
  });
  lifecycle.onShutdown("enqueue", () => enqueuer.flush());
  const streamTokens = createStreamTokens(await loadStreamTokenKey(redis), config.events.streamTokenTtlSeconds);
  const keyring = createKeyring(config.apiKeys, streamTokens);
  // Without keys everyone administers (a private deployment); with them, the tenants named in API_ADMINS.
  const isAdmin = (request: Request) => {
    if (!keyring.enabled) return true;
    const tenant = keyring.tenantOf(request);
    return tenant !== undefined && config.apiAdmins.has(tenant);
  };
  const scope = { tenants: config.apiKeys.map((key) => key.name), tenantOf: keyring.tenantOf, isAdmin };
  const deliveries = createDeliveryStore({ redis });
  const { secret: webhookSecret, allowPrivate } = config.webhooks;
  const modelRoutes = createModelRoutes(config.llm);
  // Experiments: the API reads prompt versions for training files, and a fine-tuned model joins an experiment.
  const experimentStore = createExperimentStore(redis);
  const experimentWatch = watchExperiments({ redis, logger });
  await experimentWatch.refresh();
  lifecycle.onShutdown("experiments", () => experimentWatch.stop());
  const fineTunes = startFineTunes(
    {
      ...deps,
      fineTuneRegistrar: deps.fineTuneRegistrar ?? {
        register: (input) =>
          registerModelVariant(experimentStore, {
            taskType: input.taskType,
            // A fine-tuned model lives at the provider that trained it, whatever LLM_PROVIDER is.
            model: input.model.startsWith("openai/") ? input.model : `openai/${input.model}`,
            share: input.weight,
            source: `fine-tune:${input.fineTuneId}`,
            name: `ft-${input.fineTuneId.slice(-8)}`,
            by: "fine-tunes",
            ...(input.experimentId ? { experimentId: input.experimentId } : {}),
          }),
      },
      // An example is trained with the prompt version its answer was made with (0: the deployment's own).
      systemPromptOf:
        deps.systemPromptOf ??
        ((taskType, result) => {
          const version = result.metadata.prompt_version ?? 0;
          const text = version > 0 ? experimentWatch.current().prompts.get(`${taskType}:${version}`) : undefined;
          return text ?? promptFor(prompts, taskType);
        }),
    },
    prompts,
    modelRoutes,
  );
  // The push channels (task events, token streams) share the event hub and the SSE limits.
  const eventDeps = {
    hub,
    store,
    redis,
    tenantOf: keyring.tenantOf,
    scope,
    logger: logger.child({ component: "events" }),
    sse: {
      heartbeatMs: config.events.heartbeatMs,
      maxBufferBytes: config.events.maxBufferBytes,
      slowClientGraceMs: config.events.slowClientGraceMs,
    },
  };
  const app = createApp({
    logger: logger.child({ component: "api" }),
    probes: deps.probes,
    roles: [...config.roles],
    startedAt: deps.startedAt,
    maxBodyBytes: config.maxBodyBytes,
    tasks: {
      redis,
      enqueuer,
      store,
      waiter,
      bus,
      routes: config.routes,
      taskTypes: new Set(Object.keys(prompts)),
      checkModel: modelRoutes.checkRequested,
      tenantOf: keyring.tenantOf,
      logger,
      pendingCap: createPendingCap({
        redis,
        max: config.apiMaxPendingTasks,
        resultTtlSeconds: config.resultTtlSeconds,
      }),
      ...(webhookSecret
        ? { checkCallback: async (url: string) => (await resolveCallback(url, { allowPrivate })).url.href }
        : {}),
    },
    webhooks: {
      ...(webhookSecret ? { secretOf: createSecrets(webhookSecret) } : {}),
      deliveries,
      store,
      tenantOf: keyring.tenantOf,
    },
    taskList: { redis, store, resultTtlSeconds: config.resultTtlSeconds, scope, deliveries },
    streamTokens,
    events: eventDeps,
    stream: eventDeps,
    graphql: { resultTtlSeconds: config.resultTtlSeconds },
    access: { keyring, isAdmin, redis, rateLimit: config.apiRateLimit },
    operations: {
      redis,
      queues: queueNames.map((queue) => queueKeys(queue)),
      prices: { input: config.cache.prices.input, output: config.cache.prices.output },
      cacheIndex: () => {
        const { name, algorithm, dim } = deps.cacheAdmin.index.status();
        return { name, algorithm, dim };
      },
      ...(deps.supervisor ? { supervisor: deps.supervisor } : {}),
    },
    admin: {
      redis,
      queues: queueNames,
      tasks: createTaskControl({
        redis,
        queues: queueNames,
        store,
        retries: config.worker.retries,
        onFinish: deliveries.onFinish,
      }),
      configuredRateLimit: config.llm.rateLimit,
    },
    consoleAllowRemote: config.consoleAllowRemote,
    experiments: {
      redis,
      store: experimentStore,
      basePrompts: prompts,
      checkModel: providerCheck(config.llm),
      metricsPrefix: "metrics",
    },
    fineTunes: { ...fineTunes, taskTypes: new Set(Object.keys(prompts)) },
    cache: {
      admin: deps.cacheAdmin,
      logger: logger.child({ component: "cache" }),
      mayAdminister: isAdmin,
    },
  });
  return {
    /** Listens on PORT; throws when it cannot. Registered to stop first at shutdown. */
    listen() {
      app.listen({ port: config.port, hostname: "0.0.0.0" });
      // Registered last, so it runs first: stop accepting before anything else closes.
      lifecycle.onShutdown("http server", () => app.stop());
      logger.info({ port: config.port, docs: `http://127.0.0.1:${config.port}/swagger` }, "api listening");
    },
  };
}

/**
 * The feedback → fine-tuning loop in this process: the training examples
 * that feedback feeds, the fine-tuner (following every fine-tune nobody
 * follows, resumed after a restart), and the scheduled mode when
 * FINETUNE_AUTO_INTERVAL_MS is set.
 */
function startFineTunes(
  deps: Parameters<typeof startApiRole>[0],
  prompts: ReturnType<typeof loadPrompts>,
  modelRoutes: ReturnType<typeof createModelRoutes>,
) {
  const { config, redis, lifecycle } = deps;
  const logger = deps.logger.child({ component: "fine-tunes" });
  const settings = config.fineTune;
  const examples = createTrainingExamples({ redis, ttlSeconds: settings.exampleTtlSeconds });
  const records = createFineTuneRecords(redis);
  const apiKey = config.llm.apiKey;
  const tuner = createFineTuner({
    redis,
    records,
    examples,
    maxExamples: settings.maxExamples,
    // Uploads take longer than a chat call: at least two minutes each.
    client: apiKey
      ? createOpenAiFineTuning({
          apiKey,
          baseUrl: config.llm.baseUrl,
          timeoutMs: Math.max(config.llm.requestTimeoutMs, 120_000),
        })
      : undefined,
    parseModel: (model) => parseModel(model, config.llm.provider),
    routedModel: (taskType) => modelRoutes.modelFor(taskType, undefined, undefined),
    fineTunable: FINE_TUNING_PROVIDERS,
    systemPromptOf: deps.systemPromptOf ?? ((taskType) => promptFor(prompts, taskType)),
    ...(deps.fineTuneRegistrar ? { registrar: deps.fineTuneRegistrar } : {}),
    logger,
    timings: {
      pollMinMs: settings.pollMinMs,
      pollMaxMs: settings.pollMaxMs,
      leaseMs: settings.leaseMs,
      scanIntervalMs: settings.leaseMs,
    },
  });
  tuner.resume();
  lifecycle.onShutdown("fine-tunes", () => tuner.close());
  if (settings.autoIntervalMs > 0) {
    const auto = startAutoFineTune({
      redis,
      tuner,
      records,
      examples,
      intervalMs: settings.autoIntervalMs,
      minNewExamples: settings.autoMinNewExamples,
      defaults: FINE_TUNE_DEFAULTS,
      logger,
    });
    lifecycle.onShutdown("fine-tune scheduler", () => auto.stop());
  }
  return { tuner, examples };
}
