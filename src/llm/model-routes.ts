/**
 * Which model answers a task (issue 17 §2). A model string `provider/model`
 * names its provider (anthropic/claude-3-5-haiku-latest, openai/gpt-4o-mini,
 * cohere/command-r); a bare name is the default provider's, so LLM_MODEL and
 * every request of before keep their meaning. Only a known provider's name
 * splits: an OpenAI-compatible server's `meta-llama/Llama-3-8b` stays one name.
 *
 * A task's model is, in order: the request's `model` (if the allow-list
 * lets its tenant name it), its task type's route (LLM_ROUTES, then
 * LLM_ROUTES_FILE), LLM_MODEL. Each model may have a fallback chain
 * (LLM_FALLBACKS, or a route's list in the file), tried in order by the
 * model router (model-router.ts).
 */
import { type Config, LLM_PROVIDERS, type LlmProviderName } from "../config";
import { AppError } from "../errors";
import { TASK_TYPE_PATTERN } from "../task/contract";
import { readJsonSettings } from "../util/json-file";

export interface ModelTarget {
  provider: LlmProviderName;
  /** The provider's own name for the model. */
  model: string;
}

export function parseModel(spec: string, defaultProvider: LlmProviderName): ModelTarget {
  const at = spec.indexOf("/");
  const head = spec.slice(0, at);
  if (at > 0 && (LLM_PROVIDERS as readonly string[]).includes(head))
    return { provider: head as LlmProviderName, model: spec.slice(at + 1) };
  return { provider: defaultProvider, model: spec };
}

/** `provider/model`: one name per model, whichever way it was written (breaker keys, rate limit keys, prices). */
export const modelKey = (target: ModelTarget) => `${target.provider}/${target.model}`;

export interface ModelRoutes {
  /** The model of a task; a request's model its tenant may not name throws MODEL_NOT_ALLOWED (422). */
  modelFor(taskType: string, requested: string | undefined, tenant: string | undefined): string;
  /** Throws MODEL_NOT_ALLOWED (422) when the tenant may not name the model. */
  checkRequested(model: string, tenant: string | undefined): void;
  /** The model and the models tried after it, in order. */
  chainOf(model: string): string[];
}

/** LLM_ROUTES_FILE: `{ "task_type": "model" | ["model", "fallback", ...] }`. A bad file stops the process. */
function readRoutesFile(path: string): { routes: Map<string, string>; fallbacks: Map<string, string[]> } {
  const { entries, fail } = readJsonSettings(
    "LLM_ROUTES_FILE",
    path,
    "ROUTES_FILE_INVALID",
    "a JSON object of task_type: model or [model, fallback, ...]",
  );
  const routes = new Map<string, string>();
  const fallbacks = new Map<string, string[]>();
  for (const [taskType, value] of entries) {
    if (!TASK_TYPE_PATTERN.test(taskType)) fail(`task type "${taskType}" must match ${TASK_TYPE_PATTERN.source}`);
    const chain = typeof value === "string" ? [value] : value;
    if (!Array.isArray(chain) || chain.length === 0 || !chain.every((m) => typeof m === "string" && m !== ""))
      fail(`"${taskType}": expected a model, or a non-empty list of models`);
    const [head, ...rest] = chain as [string, ...string[]];
    routes.set(taskType, head);
    if (rest.length > 0) fallbacks.set(head, rest);
  }
  return { routes, fallbacks };
}

/** The providers this deployment can call: those with a key, and the simulated one. */
export function availableProviders(llm: Config["llm"]): ReadonlySet<LlmProviderName> {
  const keys: Record<LlmProviderName, string | undefined> = {
    openai: llm.apiKey,
    anthropic: llm.anthropic.apiKey,
    cohere: llm.cohere.apiKey,
    simulated: "none needed",
  };
  return new Set(LLM_PROVIDERS.filter((provider) => keys[provider] !== undefined));
}

/** A check that throws MODEL_PROVIDER_UNAVAILABLE (422) for a model whose provider has no key here. */
export function providerCheck(llm: Config["llm"]): (model: string) => void {
  const available = availableProviders(llm);
  return (model) => {
    const { provider } = parseModel(model, llm.provider);
    if (!available.has(provider)) {
      throw new AppError("MODEL_PROVIDER_UNAVAILABLE", `model: the provider '${provider}' has no API key here`, {
        status: 422,
        details: { field: "model" },
      });
    }
  };
}

export function createModelRoutes(llm: Config["llm"]): ModelRoutes {
  const file = llm.routesFile ? readRoutesFile(llm.routesFile) : undefined;
  // The environment's routes win over the file's: the file is the deployment's, the variable the operator's.
  const routes = new Map([...(file?.routes ?? []), ...llm.routes]);
  const fallbacks = new Map([...(file?.fallbacks ?? []), ...llm.fallbacks]);
  const key = (spec: string) => modelKey(parseModel(spec, llm.provider));
  // Chains are found by the model's one name, so `gpt-4o-mini` and `openai/gpt-4o-mini` share one.
  const chains = new Map([...fallbacks].map(([head, rest]) => [key(head), rest]));
  const allowed = llm.allowedModels;
  const allows = (set: ReadonlySet<string> | undefined, model: string) =>
    set !== undefined && (set.has("*") || set.has(model) || [...set].some((entry) => key(entry) === key(model)));

  const checkProvider = providerCheck(llm);
  const checkRequested = (model: string, tenant: string | undefined) => {
    checkProvider(model);
    if (!allowed) return;
    if (allows(allowed.everyone, model) || (tenant !== undefined && allows(allowed.byTenant.get(tenant), model)))
      return;
    throw new AppError("MODEL_NOT_ALLOWED", `model: '${model}' is not in LLM_ALLOWED_MODELS for this API key`, {
      status: 422,
      details: { field: "model" },
    });
  };

  return {
    modelFor(taskType, requested, tenant) {
      if (requested !== undefined) {
        checkRequested(requested, tenant);
        return requested;
      }
      return routes.get(taskType) ?? llm.model;
    },
    checkRequested,
    chainOf: (model) => [model, ...(chains.get(key(model)) ?? [])],
  };
}
