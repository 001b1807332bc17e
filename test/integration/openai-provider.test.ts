/**
 * The openai adapter through the real `openai` SDK over HTTP, against the
 * project's mock OpenAI server: answers, batching, error mapping, Retry-After,
 * and a timeout that really aborts the request.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { cosineSimilarity } from "../../src/llm/lexical-embedding";
import { createOpenAiProvider } from "../../src/llm/openai-provider";
import { LlmError } from "../../src/llm/provider";
import { createLogger } from "../../src/log";
import { createMockOpenAiServer, type MockCounters, type MockOpenAiServer } from "../../tools/mock-openai-server";

let mock: MockOpenAiServer;
const logger = createLogger({ level: "silent" });
const chat = {
  taskType: "general_analysis",
  system: "You analyse.",
  user: "hello there world",
  temperature: 0.2,
  maxTokens: 100,
};

function provider(embeddingModel = "text-embedding-3-small", embeddingDim = 256) {
  return createOpenAiProvider({
    apiKey: "sk-test",
    baseUrl: mock.url,
    model: "mock-model",
    embeddingModel,
    embeddingDim,
    logger,
  });
}

beforeAll(() => {
  mock = createMockOpenAiServer({ latencyMs: 1, embeddingDim: 256 });
});
afterEach(() => mock.reset());
afterAll(() => mock.stop());

describe("openai provider against the mock server", () => {
  test("a chat completion returns the text, the model and the token usage", async () => {
    const result = await provider().chat(chat);
    expect(result.model).toBe("mock-model");
    expect(result.text).toContain("3 words");
    expect(result.usage.promptTokens).toBeGreaterThan(0);
    expect(result.usage.totalTokens).toBe(result.usage.promptTokens + result.usage.completionTokens);
    expect(mock.counters().chat_requests).toBe(1);
  });

  test("embeddings of many texts go in one call and come back in order (SDK's base64 encoding)", async () => {
    const texts = ["the cat sat on the mat", "quarterly revenue grew", "the cat sat on a mat"];
    const vectors = await provider().embed(texts);
    expect(vectors).toHaveLength(3);
    expect(vectors[0]).toHaveLength(256);
    expect(cosineSimilarity(vectors[0] as Float32Array, vectors[2] as Float32Array)).toBeGreaterThan(0.7);
    expect(cosineSimilarity(vectors[0] as Float32Array, vectors[1] as Float32Array)).toBeLessThan(0.3);
    expect(mock.counters()).toMatchObject({
      embedding_requests: 1,
      embedding_inputs: 3,
      embedding_inputs_per_call: [3],
    });
  });

  test("a dimension other than EMBEDDING_DIM is refused, not stored in a mismatched index", async () => {
    // A model outside the text-embedding-3 family gets no `dimensions` parameter: the server's default (256) comes back.
    await expect(provider("custom-embedder", 128).embed(["x"])).rejects.toThrow("expected 128 dimensions");
  });

  test("429 with Retry-After: 1 is retried after the wait, inside the call", async () => {
    mock.setFault({ kind: "429", retryAfterSeconds: 1, times: 1, endpoint: "chat" });
    const started = performance.now();
    const result = await provider().chat(chat);
    expect(result.model).toBe("mock-model");
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
    expect(mock.counters().chat_requests).toBe(2);
  });

  test("a Retry-After longer than the in-call wait goes back to the caller, retriable, with the wait", async () => {
    mock.setFault({ kind: "429", retryAfterSeconds: 30, endpoint: "chat" });
    const error = await provider()
      .chat(chat)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmError);
    expect(error).toMatchObject({
      code: "LLM_RATE_LIMITED",
      retriable: true,
      retryAfterMs: 30_000,
      providerStatus: 429,
    });
    expect(mock.counters().chat_requests).toBe(1);
  });

  test("500 is retried; a 500 that persists ends retriable", async () => {
    mock.setFault({ kind: "500", times: 1, endpoint: "chat" });
    expect((await provider().chat(chat)).model).toBe("mock-model");
    mock.reset();
    mock.setFault({ kind: "500", endpoint: "chat" });
    const error = await provider()
      .chat(chat)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LLM_SERVER_ERROR", retriable: true });
    expect(mock.counters().chat_requests).toBe(2);
  });

  test("400 fails at once, not retriable", async () => {
    mock.setFault({ kind: "400", endpoint: "chat" });
    const error = await provider()
      .chat(chat)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LLM_BAD_REQUEST", retriable: false, providerStatus: 400 });
    expect(mock.counters().chat_requests).toBe(1);
  });

  test("an aborted signal really cancels a hanging request", async () => {
    mock.setFault({ kind: "hang", endpoint: "chat" });
    const started = performance.now();
    const error = await provider()
      .chat({ ...chat, signal: AbortSignal.timeout(300) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(mock.counters().chat_requests).toBe(1);
  });

  test("faults and counters are reachable over HTTP, for the bench in another process", async () => {
    const base = mock.url.replace(/\/v1$/, "");
    const set = await fetch(`${base}/__mock/fault`, {
      method: "POST",
      body: JSON.stringify({ kind: "400", times: 1, endpoint: "embeddings" }),
    });
    expect(set.status).toBe(200);
    await expect(provider().embed(["a"])).rejects.toMatchObject({ code: "LLM_BAD_REQUEST" });
    await provider().embed(["a", "b"]);
    const counters = (await (await fetch(`${base}/__mock/counters`)).json()) as MockCounters;
    expect(counters).toMatchObject({ embedding_requests: 2, embedding_inputs_per_call: [1, 2], faults_served: 1 });
    const refused = await fetch(`${base}/__mock/fault`, { method: "POST", body: JSON.stringify({ kind: "teapot" }) });
    expect(refused.status).toBe(400);
  });
});
