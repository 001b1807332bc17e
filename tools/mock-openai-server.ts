/**
 * An OpenAI-compatible HTTP server owned by the project, for tests and the
 * bench: the real `openai` client talks to it over HTTP. It answers
 * /v1/chat/completions (whole, or streamed with `stream: true` in OpenAI's
 * wire format: `data: {chat.completion.chunk}` events, a last usage chunk
 * with `stream_options.include_usage`, then `data: [DONE]`) and
 * /v1/embeddings (array input, float or base64), and the files and
 * fine-tuning jobs endpoints (mock-openai-fine-tuning.ts; its chat answers a
 * fine-tuned model's name like any other). Faults, latency, counters
 * and stream records are the kit's (mock-provider-kit.ts), shared with the
 * Anthropic and Cohere mocks, all reachable over HTTP under /__mock/ so that
 * another process (the bench) can drive it.
 *
 *   bun tools/mock-openai-server.ts --port 8100 --latency 20-80 --embedding-dim 1536 --tokens 200 --token-latency 5
 */
import { estimateTokens } from "../src/llm/provider";
import { createFineTuningMock, type MockFineTuning, type MockFineTuningTimings } from "./mock-openai-fine-tuning";
import {
  chatMessages,
  createMockServer,
  type MockErrorFormat,
  type MockKit,
  type MockServer,
  type MockServerOptions,
  runMockFromCli,
  sseFrame,
  textOf,
} from "./mock-provider-kit";

export type { MockFile, MockFineTuning, MockFineTuningTimings } from "./mock-openai-fine-tuning";
export {
  epochMs,
  type MockCounters,
  type MockEndpoint,
  type MockFault,
  type MockStreamRecord,
  type MockStreamSettings,
} from "./mock-provider-kit";

export interface MockOpenAiServerOptions extends MockServerOptions {
  /** How long a fine-tuning job stays validating, queued and running (ms); also POST /__mock/fine-tuning. */
  fineTuning?: Partial<MockFineTuningTimings>;
}
export interface MockOpenAiServer extends MockServer {
  /** The uploaded files and the fine-tuning jobs, and their timings. */
  readonly fineTuning: MockFineTuning;
}

const ERROR_TYPES = {
  invalid: "invalid_request_error",
  rate_limit: "rate_limit_error",
  server: "server_error",
  not_found: "invalid_request_error",
} as const;

/** OpenAI's error body: `{error: {message, type, param, code}}`. */
const openAiError: MockErrorFormat = (status, kind, message, headers = {}) =>
  Response.json({ error: { message, type: ERROR_TYPES[kind], param: null, code: null } }, { status, headers });

function encodeBase64(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString("base64");
}

type ChatBody = {
  model?: unknown;
  messages?: unknown;
  max_completion_tokens?: unknown;
  max_tokens?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: unknown } | null;
};

type EmbeddingsBody = { model?: unknown; input?: unknown; encoding_format?: unknown; dimensions?: unknown };

function routes(kit: MockKit) {
  const chat = async (request: Request): Promise<Response> => {
    const opened = await kit.openChat<ChatBody>(request, (body) =>
      chatMessages(body, "'model' and a non-empty 'messages' array are required"),
    );
    if (opened instanceof Response) return opened;
    const { body, messages, userText, cut } = opened;
    const streamed = body.stream === true;
    const limit = Number(body.max_completion_tokens ?? body.max_tokens ?? Number.POSITIVE_INFINITY);
    const answer = kit.answer(
      messages.map((m) => textOf(m.content)),
      userText,
      limit,
      streamed,
    );
    const id = `chatcmpl-mock-${kit.counters.chat_requests}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = {
      prompt_tokens: answer.promptTokens,
      completion_tokens: answer.completionTokens,
      total_tokens: answer.promptTokens + answer.completionTokens,
    };
    const finishReason = answer.truncated ? "length" : "stop";
    if (!streamed) {
      if (cut !== undefined) return kit.cutBody();
      return Response.json({
        id,
        object: "chat.completion",
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: answer.text },
            finish_reason: finishReason,
            logprobs: null,
          },
        ],
        usage,
      });
    }
    /*
     * OpenAI's streaming wire format: `chat.completion.chunk`s (the role first, then one per token, then the
     * finish reason), a last chunk with empty choices and the usage when the request asked for it, then
     * `[DONE]`. Every chunk has `usage: null` when usage was asked for, as the real API sends it.
     */
    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      sseFrame({
        id,
        object: "chat.completion.chunk",
        created,
        model: body.model,
        system_fingerprint: null,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        ...(includeUsage ? { usage: null } : {}),
      });
    const usageChunk = sseFrame({
      id,
      object: "chat.completion.chunk",
      created,
      model: body.model,
      system_fingerprint: null,
      choices: [],
      usage,
    });
    return kit.sse(request, {
      user: userText,
      pieces: answer.pieces,
      head: [chunk({ role: "assistant", content: "" }, null)],
      piece: (text) => chunk({ content: text }, null),
      tail: [chunk({}, finishReason), ...(includeUsage ? [usageChunk] : []), sseFrame("[DONE]")],
      cut: cut,
    });
  };

  const embeddings = async (request: Request): Promise<Response> => {
    const body = await kit.readJson<EmbeddingsBody>(request);
    if (body instanceof Response) return body;
    const input = typeof body.input === "string" ? [body.input] : body.input;
    if (typeof body.model !== "string" || !Array.isArray(input) || input.length === 0) {
      kit.counters.embedding_requests++;
      return openAiError(400, "invalid", "'model' and a non-empty 'input' are required");
    }
    if (!input.every((item): item is string => typeof item === "string")) {
      kit.counters.embedding_requests++;
      return openAiError(400, "invalid", "this mock accepts string inputs only");
    }
    const dim = typeof body.dimensions === "number" ? body.dimensions : kit.embeddingDim;
    const vectors = await kit.embed(request, input, dim);
    if (vectors instanceof Response) return vectors;
    const base64 = body.encoding_format === "base64";
    const tokens = input.reduce((sum, text) => sum + estimateTokens(text), 0);
    return Response.json({
      object: "list",
      model: body.model,
      data: vectors.map((vector, index) => ({
        object: "embedding",
        index,
        embedding: base64 ? encodeBase64(vector) : Array.from(vector),
      })),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  };

  return {
    "/v1/chat/completions": { POST: chat },
    "/v1/embeddings": { POST: embeddings },
    "/v1/models": () => Response.json({ object: "list", data: [{ id: "mock-model", object: "model" }] }),
  };
}

export function createMockOpenAiServer(options: MockOpenAiServerOptions = {}): MockOpenAiServer {
  const fineTuning = createFineTuningMock(options.fineTuning);
  const server = createMockServer({
    ...options,
    basePath: "/v1",
    error: openAiError,
    routes: (kit) => ({ ...routes(kit), ...fineTuning.routes(kit) }),
    onReset: fineTuning.reset,
  });
  return Object.assign(server, { fineTuning: fineTuning.control });
}

if (import.meta.main) runMockFromCli("OpenAI", createMockOpenAiServer, 8100);
