/**
 * Issue 17's pure pieces: model strings name their provider; routes, chains
 * and the allow-list; the price table and the cost of known token counts for
 * every provider's usage (cached input included); the prices file.
 */
import { describe, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config";
import { anthropicUsage } from "../../src/llm/anthropic-provider";
import { cohereUsage } from "../../src/llm/cohere-provider";
import { createModelRoutes, parseModel } from "../../src/llm/model-routes";
import { costOf, DEFAULT_PRICES, loadPrices, priceOf } from "../../src/llm/prices";

const FLAT = { input: 9, output: 9 };

describe("model strings", () => {
  test("provider/model names its provider; a bare name is the default provider's; other slashes stay in the name", () => {
    expect(parseModel("anthropic/claude-3-5-haiku-latest", "openai")).toEqual({
      provider: "anthropic",
      model: "claude-3-5-haiku-latest",
    });
    expect(parseModel("gpt-4o-mini", "openai")).toEqual({ provider: "openai", model: "gpt-4o-mini" });
    expect(parseModel("meta-llama/Llama-3-8b", "openai")).toEqual({
      provider: "openai",
      model: "meta-llama/Llama-3-8b",
    });
  });

  test("a task's model: the request's, else its task type's route, else LLM_MODEL; chains by the model's one name", () => {
    const { llm } = loadConfig({
      OPENAI_API_KEY: "sk-x",
      ANTHROPIC_API_KEY: "sk-ant-x",
      LLM_ROUTES: "summarization=anthropic/claude-3-5-haiku-latest",
      LLM_FALLBACKS: "openai/gpt-4o-mini>anthropic/claude-3-5-haiku-latest",
    });
    const routes = createModelRoutes(llm);
    expect(routes.modelFor("summarization", undefined, undefined)).toBe("anthropic/claude-3-5-haiku-latest");
    expect(routes.modelFor("classification", undefined, undefined)).toBe("gpt-4o-mini");
    expect(routes.modelFor("summarization", "gpt-4o", undefined)).toBe("gpt-4o");
    // `gpt-4o-mini` and `openai/gpt-4o-mini` are one model: one chain.
    expect(routes.chainOf("gpt-4o-mini")).toEqual(["gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"]);
    expect(routes.chainOf("anthropic/claude-3-5-haiku-latest")).toEqual(["anthropic/claude-3-5-haiku-latest"]);
  });

  test("the allow-list: models for every tenant, tenant=model for one; a provider without a key is refused", () => {
    const { llm } = loadConfig({
      OPENAI_API_KEY: "sk-x",
      ANTHROPIC_API_KEY: "sk-ant-x",
      LLM_ALLOWED_MODELS: "gpt-4o-mini,acme=anthropic/claude-3-5-haiku-latest",
    });
    const routes = createModelRoutes(llm);
    expect(() => routes.checkRequested("openai/gpt-4o-mini", undefined)).not.toThrow();
    expect(() => routes.checkRequested("anthropic/claude-3-5-haiku-latest", "acme")).not.toThrow();
    expect(() => routes.checkRequested("anthropic/claude-3-5-haiku-latest", "other")).toThrow(/LLM_ALLOWED_MODELS/);
    expect(() => routes.modelFor("summarization", "gpt-4o", "acme")).toThrow(/LLM_ALLOWED_MODELS/);
    expect(() => routes.checkRequested("cohere/command-r", "acme")).toThrow(/no API key/);
  });

  test("a routes file: a model, or a model and its fallbacks; LLM_ROUTES wins over it", async () => {
    const path = join(tmpdir(), `aies-routes-${process.pid}.json`);
    await Bun.write(
      path,
      JSON.stringify({ summarization: ["gpt-4o", "anthropic/claude-3-5-haiku-latest"], classification: "gpt-4o" }),
    );
    try {
      const { llm } = loadConfig({
        OPENAI_API_KEY: "sk-x",
        ANTHROPIC_API_KEY: "sk-ant-x",
        LLM_ROUTES_FILE: path,
        LLM_ROUTES: "classification=gpt-4o-mini",
      });
      const routes = createModelRoutes(llm);
      expect(routes.modelFor("summarization", undefined, undefined)).toBe("gpt-4o");
      expect(routes.chainOf("gpt-4o")).toEqual(["gpt-4o", "anthropic/claude-3-5-haiku-latest"]);
      expect(routes.modelFor("classification", undefined, undefined)).toBe("gpt-4o-mini");
      await Bun.write(path, JSON.stringify({ Summarization: "gpt-4o" }));
      expect(() => createModelRoutes(llm)).toThrow(/LLM_ROUTES_FILE=.*Summarization/);
    } finally {
      await rm(path, { force: true });
    }
  });
});

describe("costs at the price table (issue 17 §4)", () => {
  test("every provider's usage with known token counts costs what the table says", () => {
    // OpenAI: prompt_tokens include the cached ones.
    const openai = {
      promptTokens: 1_000_000,
      completionTokens: 500_000,
      totalTokens: 1_500_000,
      cachedPromptTokens: 200_000,
    };
    expect(costOf(priceOf(DEFAULT_PRICES, "openai", "gpt-4o-mini", FLAT), openai)).toBeCloseTo(
      0.8 * 0.15 + 0.2 * 0.075 + 0.5 * 0.6,
      10,
    );
    // Anthropic: input_tokens exclude cache reads and writes; the usage adds them back, reads are the cached part.
    const anthropic = anthropicUsage({
      input_tokens: 600_000,
      output_tokens: 100_000,
      cache_read_input_tokens: 300_000,
      cache_creation_input_tokens: 100_000,
    });
    expect(anthropic).toEqual({
      promptTokens: 1_000_000,
      completionTokens: 100_000,
      totalTokens: 1_100_000,
      cachedPromptTokens: 300_000,
    });
    expect(costOf(priceOf(DEFAULT_PRICES, "anthropic", "claude-3-5-haiku-latest", FLAT), anthropic)).toBeCloseTo(
      0.7 * 0.8 + 0.3 * 0.08 + 0.1 * 4,
      10,
    );
    // Cohere: usage.tokens, falling back to billed_units.
    const cohere = cohereUsage({ billedUnits: { inputTokens: 2_000_000, outputTokens: 1_000_000 } });
    expect(costOf(priceOf(DEFAULT_PRICES, "cohere", "command-r", FLAT), cohere)).toBeCloseTo(2 * 0.15 + 0.6, 10);
    // Small counts, as tasks have: 120 in, 40 out on claude-3-5-haiku.
    const small = { promptTokens: 120, completionTokens: 40, totalTokens: 160 };
    expect(costOf(priceOf(DEFAULT_PRICES, "anthropic", "claude-3-5-haiku-latest", FLAT), small)).toBeCloseTo(
      (120 * 0.8 + 40 * 4) / 1e6,
      15,
    );
  });

  test("a dated model name is priced by its family's entry; an unknown model at the flat prices", () => {
    expect(priceOf(DEFAULT_PRICES, "openai", "gpt-4o-mini-2024-07-18", FLAT)).toBe(
      DEFAULT_PRICES.get("openai/gpt-4o-mini") as never,
    );
    expect(priceOf(DEFAULT_PRICES, "anthropic", "claude-3-5-haiku-20241022", FLAT)).toBe(
      DEFAULT_PRICES.get("anthropic/claude-3-5-haiku-latest") as never,
    );
    // gpt-4o-mini is not priced as gpt-4o: the longest matching entry wins.
    expect(priceOf(DEFAULT_PRICES, "openai", "gpt-4o-mini", FLAT).input).toBe(0.15);
    expect(priceOf(DEFAULT_PRICES, "openai", "my-finetune", FLAT)).toBe(FLAT);
    expect(priceOf(DEFAULT_PRICES, "cohere", "gpt-4o-mini", FLAT)).toBe(FLAT);
  });

  test("LLM_PRICES_FILE adds and replaces entries; a bad one stops the process naming the file and the entry", async () => {
    const path = join(tmpdir(), `aies-prices-unit-${process.pid}.json`);
    try {
      await Bun.write(path, JSON.stringify({ "openai/gpt-4o-mini": { input: 1, output: 2, cached_input: 0.5 } }));
      expect(loadPrices(path).get("openai/gpt-4o-mini")).toEqual({ input: 1, output: 2, cachedInput: 0.5 });
      expect(loadPrices(path).get("cohere/command-r")).toEqual(DEFAULT_PRICES.get("cohere/command-r") as never);
      await Bun.write(path, JSON.stringify({ "gpt-4o-mini": { input: 1, output: 2 } }));
      expect(() => loadPrices(path)).toThrow(/LLM_PRICES_FILE=.*provider\/model/);
      await Bun.write(path, JSON.stringify({ "openai/x": { input: -1, output: 2 } }));
      expect(() => loadPrices(path)).toThrow(/"openai\/x".input/);
    } finally {
      await rm(path, { force: true });
    }
  });
});
