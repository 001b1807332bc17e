/**
 * The Anthropic and Cohere adapters through their real SDKs over HTTP,
 * against the project's mock servers (issue 17 §1, §7): answers whole and
 * streamed in each provider's wire format, usage, finish reasons in the
 * product's words, error mapping (5xx and 429 retriable with Retry-After,
 * 4xx not), a cut stream retried after a reset, and Cohere's embeddings.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createAnthropicProvider } from "../../src/llm/anthropic-provider";
import { createCohereProvider } from "../../src/llm/cohere-provider";
import { cosineSimilarity } from "../../src/llm/lexical-embedding";
import { type ChatRequest, LlmError, type LlmProvider } from "../../src/llm/provider";
import { createLogger } from "../../src/log";
import { createMockAnthropicServer } from "../../tools/mock-anthropic-server";
import { createMockCohereServer } from "../../tools/mock-cohere-server";
import type { MockServer } from "../../tools/mock-provider-kit";

const logger = createLogger({ level: "silent" });
const chat: ChatRequest = {
  taskType: "general_analysis",
  system: "You analyse.",
  user: "hello there world",
  temperature: 0.2,
  maxTokens: 100,
};
const fastRetry = { retries: 1, baseMs: 5, maxMs: 20, maxInlineWaitMs: 2000 };

const mocks: Record<"anthropic" | "cohere", MockServer> = {} as never;
const providers: Record<"anthropic" | "cohere", () => LlmProvider> = {
  anthropic: () =>
    createAnthropicProvider({
      apiKey: "sk-ant-test",
      baseUrl: mocks.anthropic.url,
      model: "claude-3-5-haiku-latest",
      logger,
      retry: fastRetry,
    }),
  cohere: () =>
    createCohereProvider({
      apiKey: "co-test",
      baseUrl: mocks.cohere.url,
      model: "command-r",
      embeddingModel: "embed-v4.0",
      embeddingDim: 256,
      logger,
      retry: fastRetry,
    }),
};

beforeAll(() => {
  mocks.anthropic = createMockAnthropicServer({ latencyMs: 1 });
  mocks.cohere = createMockCohereServer({ latencyMs: 1, embeddingDim: 256 });
});
afterEach(() => {
  mocks.anthropic.reset();
  mocks.cohere.reset();
});
afterAll(async () => {
  await mocks.anthropic.stop();
  await mocks.cohere.stop();
});

for (const name of ["anthropic", "cohere"] as const) {
  describe(`${name} adapter against its mock, through its SDK`, () => {
    test("a whole answer: the text, the model, the usage, finish reason stop", async () => {
      const result = await providers[name]().chat(chat);
      expect(result.text).toContain("3 words");
      expect(result.model).toBe(name === "anthropic" ? "claude-3-5-haiku-latest" : "command-r");
      expect(result.finishReason).toBe("stop");
      expect(result.usage.promptTokens).toBeGreaterThan(0);
      expect(result.usage.completionTokens).toBeGreaterThan(0);
      expect(result.usage.totalTokens).toBe(result.usage.promptTokens + result.usage.completionTokens);
      expect(mocks[name].counters()).toMatchObject({ chat_requests: 1, chat_streams: 0 });
    });

    test("streamed: onToken gets each token as it comes, they join into the text, usage from the last events", async () => {
      mocks[name].setStream({ tokens: 12, tokenLatencyMs: 2 });
      const pieces: string[] = [];
      const result = await providers[name]().chat({ ...chat, onToken: (piece) => pieces.push(piece) });
      expect(pieces).toHaveLength(12);
      expect(pieces.join("")).toBe(result.text);
      expect(result.finishReason).toBe("stop");
      expect(result.usage.completionTokens).toBeGreaterThan(0);
      expect(result.usage.promptTokens).toBeGreaterThan(0);
      expect(mocks[name].counters()).toMatchObject({ chat_requests: 1, chat_streams: 1 });
      expect(mocks[name].streams()[0]).toMatchObject({ tokens: 12, complete: true });
    });

    test("an answer cut at max_tokens says length (the cache admits only stop)", async () => {
      mocks[name].setStream({ tokens: 50 });
      const result = await providers[name]().chat({ ...chat, maxTokens: 5 });
      expect(result.finishReason).toBe("length");
    });

    test("a 500 is retried inside the call, then fails retriable with the provider's status", async () => {
      mocks[name].setFault({ kind: "500" });
      const error = await providers[name]()
        .chat(chat)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LlmError);
      expect(error).toMatchObject({ code: "LLM_SERVER_ERROR", retriable: true, providerStatus: 500 });
      expect(mocks[name].counters().chat_requests).toBe(2);
    });

    test("a 429 carries its Retry-After; a wait beyond the inline budget goes back to the caller", async () => {
      mocks[name].setFault({ kind: "429", retryAfterSeconds: 30 });
      const error = await providers[name]()
        .chat(chat)
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "LLM_RATE_LIMITED", retriable: true, retryAfterMs: 30_000 });
      expect(mocks[name].counters().chat_requests).toBe(1);
    });

    test("a 400 is the request's fault: not retriable, asked once", async () => {
      mocks[name].setFault({ kind: "400" });
      const error = await providers[name]()
        .chat(chat)
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "LLM_BAD_REQUEST", retriable: false, providerStatus: 400 });
      expect(mocks[name].counters().chat_requests).toBe(1);
    });

    test("a stream cut after some tokens is retried after a reset; the text after it is whole", async () => {
      mocks[name].setStream({ tokens: 8 });
      mocks[name].setFault({ kind: "cut", afterTokens: 3, times: 1 });
      let text = "";
      let resets = 0;
      const result = await providers[name]().chat({
        ...chat,
        onToken: (piece) => {
          text += piece;
        },
        onReset: () => {
          resets++;
          text = "";
        },
      });
      expect(resets).toBe(1);
      expect(text).toBe(result.text);
      expect(mocks[name].counters().chat_requests).toBe(2);
    });

    test("the caller's abort cancels the request and is not turned into a provider error", async () => {
      mocks[name].setFault({ kind: "hang" });
      const error = await providers[name]()
        .chat({ ...chat, signal: AbortSignal.timeout(200) })
        .catch((e: unknown) => e);
      expect(error).not.toBeInstanceOf(LlmError);
    });
  });
}

describe("cohere embeddings through its SDK", () => {
  test("many texts in one call, in order, of the asked dimension", async () => {
    const texts = ["the cat sat on the mat", "quarterly revenue grew", "the cat sat on a mat"];
    const vectors = await providers.cohere().embed(texts);
    expect(vectors.map((v) => v.length)).toEqual([256, 256, 256]);
    expect(cosineSimilarity(vectors[0] as Float32Array, vectors[2] as Float32Array)).toBeGreaterThan(0.7);
    expect(cosineSimilarity(vectors[0] as Float32Array, vectors[1] as Float32Array)).toBeLessThan(0.3);
    expect(mocks.cohere.counters()).toMatchObject({ embedding_requests: 1, embedding_inputs: 3 });
  });

  test("an embeddings 500 fails retriable after the in-call retry", async () => {
    mocks.cohere.setFault({ kind: "500", endpoint: "embeddings" });
    const error = await providers
      .cohere()
      .embed(["x"])
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LLM_SERVER_ERROR", retriable: true });
    expect(mocks.cohere.counters().embedding_requests).toBe(2);
  });
});

test("anthropic has no embeddings: embed refuses, not retriable", async () => {
  await expect(providers.anthropic().embed(["x"])).rejects.toMatchObject({ code: "LLM_NOT_SUPPORTED" });
});
