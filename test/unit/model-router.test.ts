/**
 * The model router's decisions with stand-in adapters (the HTTP side is
 * providers-e2e.test.ts): what falls back and what does not, the listener
 * of a streamed answer reset before a fallback's first token, every model's
 * circuit open → a retriable error for the queue, and the answer's provider,
 * fallback flag and cost.
 */
import { describe, expect, test } from "bun:test";
import { type CircuitBreaker, NO_BREAKER } from "../../src/llm/circuit-breaker";
import { createModelRouter } from "../../src/llm/model-router";
import { parseModel } from "../../src/llm/model-routes";
import { DEFAULT_PRICES } from "../../src/llm/prices";
import { type ChatRequest, type ChatResult, LlmError, type LlmProvider } from "../../src/llm/provider";
import { createLogger } from "../../src/log";

const usage = { promptTokens: 100, completionTokens: 50, totalTokens: 150 };

function stub(name: string, behave: (request: ChatRequest) => Promise<ChatResult>): LlmProvider & { calls: number } {
  const adapter = {
    name,
    embeddingModel: "none",
    embeddingDim: 0,
    calls: 0,
    chat: (request: ChatRequest) => {
      adapter.calls++;
      return behave(request);
    },
    embed: async () => [],
  };
  return adapter;
}

const answer = (text: string) => async (request: ChatRequest) => {
  request.onToken?.(text);
  return { text, model: request.model ?? "", finishReason: "stop", usage };
};
const failing = (error: unknown) => async (request: ChatRequest) => {
  request.onToken?.("half an answer");
  throw error;
};

function router(adapters: LlmProvider[], breaker: CircuitBreaker = NO_BREAKER) {
  return createModelRouter({
    providers: new Map(adapters.map((a) => [a.name, a])),
    defaultProvider: "openai",
    defaultModel: "gpt-4o-mini",
    parse: (model) => parseModel(model, "openai"),
    chainOf: (model) => [model, "anthropic/claude-3-5-haiku-latest", "cohere/command-r"],
    breaker,
    prices: DEFAULT_PRICES,
    unknownPrice: { input: 0, output: 0 },
    logger: createLogger({ level: "silent" }),
  });
}

const request: ChatRequest = { taskType: "summarization", system: "s", user: "u", temperature: 0, maxTokens: 10 };
const serverError = new LlmError("LLM_SERVER_ERROR", "500", { retriable: true, providerStatus: 500 });

describe("model router", () => {
  test("a retriable failure falls back; the streamed listener is reset before the fallback's tokens", async () => {
    const openai = stub("openai", failing(serverError));
    const anthropic = stub("anthropic", answer("from claude"));
    const cohere = stub("cohere", answer("from cohere"));
    let shown = "";
    let resets = 0;
    const result = await router([openai, anthropic, cohere]).chat({
      ...request,
      model: "gpt-4o-mini",
      onToken: (piece) => {
        shown += piece;
      },
      onReset: () => {
        resets++;
        shown = "";
      },
    });
    expect(shown).toBe("from claude");
    expect(resets).toBe(1);
    expect(result).toMatchObject({ provider: "anthropic", routedModel: "claude-3-5-haiku-latest", fallback: true });
    expect(result.costUsd).toBeCloseTo((100 * 0.8 + 50 * 4) / 1e6, 15);
    expect([openai.calls, anthropic.calls, cohere.calls]).toEqual([1, 1, 0]);
  });

  test("a 4xx of the request, a bug, or the caller's abort never falls back", async () => {
    const badRequest = new LlmError("LLM_BAD_REQUEST", "400", { retriable: false, providerStatus: 400 });
    for (const error of [badRequest, new TypeError("a bug")]) {
      const anthropic = stub("anthropic", answer("never"));
      const thrown = await router([stub("openai", failing(error)), anthropic])
        .chat({ ...request, model: "gpt-4o-mini" })
        .catch((e: unknown) => e);
      expect(thrown).toBe(error);
      expect(anthropic.calls).toBe(0);
    }
    const controller = new AbortController();
    controller.abort();
    const anthropic = stub("anthropic", answer("never"));
    const thrown = await router([stub("openai", failing(serverError)), anthropic])
      .chat({ ...request, model: "gpt-4o-mini", signal: controller.signal })
      .catch((e: unknown) => e);
    expect(thrown).toBe(serverError);
    expect(anthropic.calls).toBe(0);
  });

  test("every model's circuit open: a retriable LLM_CIRCUIT_OPEN with the wait, and no adapter is asked", async () => {
    const open: CircuitBreaker = {
      admit: async () => ({ go: false, retryAfterMs: 700 }),
      record: async () => undefined,
    };
    const adapters = ["openai", "anthropic", "cohere"].map((name) => stub(name, answer(name)));
    const thrown = await router(adapters, open)
      .chat({ ...request, model: "gpt-4o-mini" })
      .catch((e: unknown) => e);
    expect(thrown).toMatchObject({ code: "LLM_CIRCUIT_OPEN", retriable: true, retryAfterMs: 700 });
    expect(adapters.map((a) => a.calls)).toEqual([0, 0, 0]);
  });

  test("a request that names no model gets LLM_MODEL of the default provider", async () => {
    const result = await router([stub("openai", answer("ok"))]).chat(request);
    expect(result).toMatchObject({ provider: "openai", routedModel: "gpt-4o-mini", model: "gpt-4o-mini" });
  });

  test("the first model answering is no fallback; its cost is its own price's", async () => {
    const result = await router([stub("openai", answer("ok"))]).chat({ ...request, model: "openai/gpt-4o-mini" });
    expect(result).toMatchObject({ provider: "openai", routedModel: "gpt-4o-mini", fallback: false });
    expect(result.costUsd).toBeCloseTo((100 * 0.15 + 50 * 0.6) / 1e6, 15);
  });
});
