/**
 * The product as its own gateway (issue 17 §3): one LlmProvider in front of
 * every configured provider. A request's model (`provider/model`, or a bare
 * name of the default provider) picks the adapter; its fallback chain is
 * tried in order when a model fails in a way another model can fix:
 *
 *   - falls back: a retriable LlmError, after the adapter's own in-call
 *     retries (5xx, 429 beyond the inline wait budget, the provider's
 *     request timeout, a lost connection, a stream cut twice), and a model
 *     whose circuit is open;
 *   - never: a 4xx of the request (the next model would refuse it too, and
 *     it is no sign of ill health), the caller's abort (the job's timeout:
 *     its time is up for every model).
 *
 * Before each model: its circuit breaker (circuit-breaker.ts, shared by
 * every process through Redis) and its own rate limit, if set
 * (LLM_MODEL_RATE_LIMITS; the global LLM_RATE_LIMIT is waited before, in
 * pipeline/llm-call.ts). After: its cost at the price table. The result says
 * which provider and model answered, and whether it was a fallback.
 *
 * A streamed answer that broke off on one model starts over on the next:
 * the listener is told (onReset) before the fallback's first token.
 */
import type { EventBus } from "../events";
import type { Logger } from "../log";
import type { CircuitBreaker } from "./circuit-breaker";
import type { ModelTarget } from "./model-routes";
import { modelKey } from "./model-routes";
import { costOf, type ModelPrice, type PriceTable, priceOf } from "./prices";
import { type ChatRequest, type ChatResult, LlmError, type LlmProvider } from "./provider";
import type { RateLimiter } from "./rate-limiter";

export interface ModelRouterDeps {
  /** The adapters by provider name (openai, anthropic, cohere, simulated). */
  providers: ReadonlyMap<string, LlmProvider>;
  /** The provider whose embed() the router's embed() is (the chat default). */
  defaultProvider: string;
  /** The model of a request that names none (LLM_MODEL). */
  defaultModel: string;
  /** A model string → its target (model-routes.ts parseModel, with the default provider). */
  parse: (model: string) => ModelTarget;
  /** The model and those tried after it (model-routes.ts chainOf). */
  chainOf: (model: string) => string[];
  /** The model's limiter (LLM_MODEL_RATE_LIMITS), or undefined when it has none. */
  limiterOf?: (key: string) => RateLimiter | undefined;
  breaker: CircuitBreaker;
  prices: PriceTable;
  /** The price of a model missing from the table. */
  unknownPrice: ModelPrice;
  bus?: EventBus;
  logger: Logger;
}

/** Every model of the chain had its circuit open: the task waits (the queue retries it) rather than failing. */
export class CircuitOpenError extends LlmError {
  constructor(model: string, retryAfterMs: number) {
    super("LLM_CIRCUIT_OPEN", `${model}: its circuit is open after repeated failures; no fallback answered`, {
      retriable: true,
      retryAfterMs,
    });
    this.name = "CircuitOpenError";
  }
}

/** Whether another model may succeed where this one failed. */
function fallsBack(error: unknown, signal: AbortSignal | undefined): boolean {
  return error instanceof LlmError && error.retriable && !signal?.aborted;
}

export function createModelRouter(deps: ModelRouterDeps): LlmProvider {
  const { providers, parse, chainOf, breaker, prices, unknownPrice, bus } = deps;
  const log = deps.logger.child({ component: "llm", provider: "router" });
  const fallbackProvider = providers.get(deps.defaultProvider);
  if (!fallbackProvider) throw new Error(`the default provider ${deps.defaultProvider} is not configured`);
  const adapterOf = (target: ModelTarget) => {
    const adapter = providers.get(target.provider);
    if (!adapter) {
      throw new LlmError("LLM_PROVIDER_UNAVAILABLE", `${modelKey(target)}: provider ${target.provider} has no key`, {
        retriable: false,
      });
    }
    return adapter;
  };

  const breakerChanged = (key: string, change: string | undefined) => {
    if (!change) return;
    bus?.emit("llm.breaker", { model: key, change: change as "opened" | "reopened" | "closed" });
    const line = { model: key, change };
    if (change === "closed") log.info(line, "circuit closed: the model answers again");
    else log.warn(line, "circuit open: calls skip the model until a probe succeeds");
  };

  /** One model's attempt: breaker, its rate limit, the call, the breaker's record. */
  const attempt = async (target: ModelTarget, request: ChatRequest): Promise<ChatResult> => {
    const key = modelKey(target);
    const adapter = adapterOf(target);
    const admission = await deps.breaker.admit(key);
    if (!admission.go) {
      bus?.emit("llm.breaker", { model: key, change: "skipped" });
      throw new CircuitOpenError(key, admission.retryAfterMs);
    }
    await deps.limiterOf?.(key)?.waitForSlot({ signal: request.signal });
    let result: ChatResult;
    try {
      result = await adapter.chat({ ...request, model: target.model, ...(admission.probe ? { noRetry: true } : {}) });
    } catch (error) {
      // Only failures another model could avoid count against this one; a 4xx says nothing of its health.
      if (fallsBack(error, request.signal)) breakerChanged(key, await breaker.record(key, admission, false));
      else if (admission.probe) breakerChanged(key, await breaker.record(key, admission, true));
      throw error;
    }
    breakerChanged(key, await breaker.record(key, admission, true));
    return result;
  };

  return {
    name: "router",
    embeddingModel: fallbackProvider.embeddingModel,
    embeddingDim: fallbackProvider.embeddingDim,
    embed: (texts, options) => fallbackProvider.embed(texts, options),
    async chat(request) {
      const chain = chainOf(request.model || deps.defaultModel);
      let emitted = false;
      const onToken = request.onToken;
      const relay = onToken
        ? {
            onToken: (piece: string) => {
              emitted = true;
              onToken(piece);
            },
          }
        : {};
      let last: unknown;
      for (const [index, spec] of chain.entries()) {
        const target = parse(spec);
        if (index > 0) {
          const from = modelKey(parse(chain[index - 1] as string));
          bus?.emit("llm.fallback", { from, to: modelKey(target), code: (last as LlmError).code });
          log.warn({ from, to: modelKey(target), code: (last as LlmError).code }, "falling back to the next model");
          if (emitted) {
            emitted = false;
            request.onReset?.();
          }
        }
        try {
          const result = await attempt(target, { ...request, ...relay });
          const price = priceOf(prices, target.provider, target.model, unknownPrice);
          return {
            ...result,
            provider: target.provider,
            routedModel: target.model,
            fallback: index > 0,
            costUsd: costOf(price, result.usage),
          };
        } catch (error) {
          if (!fallsBack(error, request.signal)) throw error;
          last = error;
        }
      }
      throw last;
    },
  };
}
