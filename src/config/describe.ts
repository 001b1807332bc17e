/**
 * The configuration as the process logs it at start: every setting, with the
 * secrets (provider key, API keys, the webhook secret, passwords in Redis URLs) replaced by whether
 * they are set, so that a log line can be shared without leaking one.
 */

import { redactUrl } from "../util/redact-url";
import type { Config } from "./types";

/** Webhook settings without the master secret: only whether it is set, which is whether webhooks are on. */
function webhooksOf({ secret, ...settings }: Config["webhooks"]): Record<string, unknown> {
  return { enabled: secret !== undefined, ...settings };
}

const isSet = (secret: string | undefined) => (secret ? "[set]" : "[unset]");

/** The LLM settings with every provider's key replaced by whether it is set; maps as objects. */
function llmOf(llm: Config["llm"]): Record<string, unknown> {
  return {
    ...llm,
    apiKey: isSet(llm.apiKey),
    anthropic: { ...llm.anthropic, apiKey: isSet(llm.anthropic.apiKey) },
    cohere: { ...llm.cohere, apiKey: isSet(llm.cohere.apiKey) },
    routes: Object.fromEntries(llm.routes),
    fallbacks: Object.fromEntries(llm.fallbacks),
    modelRateLimits: Object.fromEntries(llm.modelRateLimits),
    allowedModels: llm.allowedModels && {
      everyone: [...llm.allowedModels.everyone],
      byTenant: Object.fromEntries([...llm.allowedModels.byTenant].map(([tenant, models]) => [tenant, [...models]])),
    },
  };
}

/** A summary safe to log: no secrets, only whether they are set. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    port: config.port,
    roles: [...config.roles],
    redis: redactUrl(config.redisUrl),
    kafka: { ...config.kafka },
    worker: config.worker,
    routes: Object.fromEntries(config.routes),
    llm: llmOf(config.llm),
    embedding: { ...config.embedding, baseUrl: config.embedding.baseUrl && redactUrl(config.embedding.baseUrl) },
    cache: {
      ...config.cache,
      redisUrl: redactUrl(config.cache.redisUrl),
      thresholds: Object.fromEntries(config.cache.thresholds),
    },
    resultTtlSeconds: config.resultTtlSeconds,
    resultKeepInput: config.resultKeepInput,
    fineTune: config.fineTune,
    events: config.events,
    apiKeys: config.apiKeys.map((k) => k.name),
    apiAdmins: [...config.apiAdmins],
    apiRateLimit: config.apiRateLimit,
    apiMaxPendingTasks: config.apiMaxPendingTasks,
    webhooks: webhooksOf(config.webhooks),
    logLevel: config.logLevel,
  };
}
