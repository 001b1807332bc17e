/**
 * Streamed chat completions between the project's mock OpenAI server and the
 * real `openai` SDK (over HTTP on 127.0.0.1, no other service): the mock
 * speaks OpenAI's wire format (chunks, the usage chunk, [DONE]) closely
 * enough for the SDK to parse it, keeps its token count and per-token
 * latency, and the openai adapter relays tokens, their usage, and a reset
 * when a retry inside the call restarts an answer that broke off.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { createOpenAiProvider } from "../../src/llm/openai-provider";
import { createSimulatedProvider, simulatedAnswer } from "../../src/llm/simulated-provider";
import { createLogger } from "../../src/log";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";

let mock: MockOpenAiServer;
let client: OpenAI;

beforeAll(() => {
  mock = createMockOpenAiServer({ port: 0 });
  client = new OpenAI({ apiKey: "sk-test", baseURL: mock.url, maxRetries: 0 });
});
afterEach(() => mock.reset());
afterAll(() => mock.stop());

const messages = [
  { role: "system" as const, content: "You analyse." },
  { role: "user" as const, content: "the quick brown fox jumps" },
];

function provider() {
  return createOpenAiProvider({
    apiKey: "sk-test",
    baseUrl: mock.url,
    model: "mock-model",
    embeddingModel: "text-embedding-3-small",
    embeddingDim: 8,
    logger: createLogger({ level: "silent" }),
  });
}

describe("the mock's stream, read by the openai SDK", () => {
  test("chunks of chat.completion.chunk: the role, one per token, the finish reason, then the usage alone", async () => {
    mock.setStream({ tokens: 12 });
    const stream = await client.chat.completions.create({
      model: "mock-model",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0]?.id)).toBe(true);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: "assistant", content: "" });
    const contents = chunks.slice(1, -2).map((c) => c.choices[0]?.delta.content);
    expect(contents).toHaveLength(12);
    expect(contents.every((text) => typeof text === "string" && text.length > 0)).toBe(true);
    expect(chunks.at(-2)?.choices[0]).toMatchObject({ delta: {}, finish_reason: "stop" });
    // Usage: null on every chunk but the last, which has no choices.
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    const last = chunks.at(-1) as OpenAI.ChatCompletionChunk;
    expect(last.choices).toEqual([]);
    const usage = last.usage as OpenAI.CompletionUsage;
    expect(usage.prompt_tokens).toBeGreaterThan(0);
    expect(usage.completion_tokens).toBeGreaterThan(0);
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);

    // The same request unstreamed answers the same text.
    const whole = await client.chat.completions.create({ model: "mock-model", messages });
    expect(contents.join("")).toBe(whole.choices[0]?.message.content as string);
    expect(mock.counters()).toMatchObject({ chat_requests: 2, chat_streams: 1 });
  });

  test("on the wire: data lines of JSON, each event ended by a blank line, and data: [DONE] last", async () => {
    const response = await fetch(`${mock.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages, stream: true }),
    });
    expect(response.headers.get("content-type")).toStartWith("text/event-stream");
    const events = (await response.text()).split("\n\n").filter(Boolean);
    expect(events.at(-1)).toBe("data: [DONE]");
    for (const event of events.slice(0, -1)) {
      expect(event).toStartWith("data: {");
      const chunk = JSON.parse(event.slice("data: ".length)) as Record<string, unknown>;
      // Without stream_options.include_usage, no usage field at all.
      expect("usage" in chunk).toBe(false);
    }
  });

  test("tokens go out token-latency apart, and the mock records when the first and last left", async () => {
    mock.setStream({ tokens: 20, tokenLatencyMs: 10 });
    const started = performance.timeOrigin + performance.now();
    const stream = await client.chat.completions.create({ model: "m", messages, stream: true });
    const arrivals: number[] = [];
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) arrivals.push(performance.timeOrigin + performance.now());
    }
    expect(arrivals).toHaveLength(20);
    // 19 gaps of 10 ms: the tokens arrive spread out, not in one burst at the end.
    expect((arrivals.at(-1) as number) - (arrivals[0] as number)).toBeGreaterThanOrEqual(180);
    const [record] = mock.streams();
    expect(record).toMatchObject({ user: "the quick brown fox jumps", tokens: 20, complete: true });
    expect(record?.first_token_at).toBeGreaterThanOrEqual(started);
    expect(record?.first_token_at).toBeLessThanOrEqual(arrivals[0] as number);
    expect((record?.last_token_at ?? 0) - (record?.first_token_at ?? 0)).toBeGreaterThanOrEqual(180);
  });

  test("/__mock/stream sets the stream over HTTP and refuses bad values", async () => {
    const base = mock.url.replace(/\/v1$/, "");
    const post = (body: unknown) =>
      fetch(`${base}/__mock/stream`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await post({ tokens: 0 })).status).toBe(400);
    expect((await post({ token_latency_ms: -1 })).status).toBe(400);
    expect(await (await post({ tokens: 3, token_latency_ms: 1 })).json()).toMatchObject({
      stream: { tokens: 3, tokenLatencyMs: 1 },
    });
    const whole = await client.chat.completions.create({ model: "m", messages });
    expect(whole.choices[0]?.message.content).toBe("mock answer: 5");
  });
});

const request = {
  taskType: "general_analysis",
  system: "You analyse.",
  user: "the quick brown fox jumps",
  temperature: 0,
  maxTokens: 500,
};

describe("the openai adapter, streaming", () => {
  test("onToken gets each token as it comes; they join into the text; usage comes from the last chunk", async () => {
    mock.setStream({ tokens: 30, tokenLatencyMs: 2 });
    const tokens: string[] = [];
    const result = await provider().chat({ ...request, onToken: (text) => tokens.push(text) });
    expect(tokens).toHaveLength(30);
    expect(tokens.join("")).toBe(result.text);
    expect(result).toMatchObject({ model: "mock-model", finishReason: "stop" });
    expect(result.usage.completionTokens).toBeGreaterThan(0);
    expect(result.usage.totalTokens).toBe(result.usage.promptTokens + result.usage.completionTokens);
  });

  test("an answer cut mid-stream is retried inside the call, after a reset: the text after it is whole", async () => {
    mock.setStream({ tokens: 10 });
    mock.setFault({ kind: "cut", afterTokens: 4, times: 1, endpoint: "chat" });
    const seen: string[] = [];
    const result = await provider().chat({
      ...request,
      onToken: (text) => seen.push(text),
      onReset: () => seen.push("<reset>"),
    });
    const reset = seen.indexOf("<reset>");
    expect(reset).toBe(4);
    expect(seen.lastIndexOf("<reset>")).toBe(reset);
    expect(seen.slice(reset + 1).join("")).toBe(result.text);
    expect(seen.slice(reset + 1)).toHaveLength(10);
    expect(mock.counters()).toMatchObject({ chat_streams: 2, faults_served: 1 });
  });

  test("an answer cut twice fails retriable (the queue retries it), not as an internal error", async () => {
    mock.setFault({ kind: "cut", afterTokens: 2, endpoint: "chat" });
    const error = await provider()
      .chat({ taskType: "t", system: "s", user: "u v w", temperature: 0, maxTokens: 50, onToken: () => {} })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LLM_STREAM_INTERRUPTED", retriable: true });
  });
});

describe("the simulated provider, streaming", () => {
  test("sends its answer word by word, token-latency apart; the words join into the text", async () => {
    const simulated = createSimulatedProvider({ embeddingDim: 8, tokenLatencyMs: 5 });
    const arrivals: { text: string; at: number }[] = [];
    const user = "I love this product, it is great and fast";
    const result = await simulated.chat({
      taskType: "general_analysis",
      system: "s",
      user,
      temperature: 0,
      maxTokens: 500,
      onToken: (text) => arrivals.push({ text, at: performance.now() }),
    });
    expect(result.text).toBe(simulatedAnswer("general_analysis", user));
    expect(arrivals.map((a) => a.text).join("")).toBe(result.text);
    expect(arrivals.length).toBeGreaterThan(10);
    const spread = (arrivals.at(-1)?.at ?? 0) - (arrivals[0]?.at ?? 0);
    expect(spread).toBeGreaterThanOrEqual((arrivals.length - 1) * 5 - 5);
  });
});
