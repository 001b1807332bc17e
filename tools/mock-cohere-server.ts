/**
 * A mock of Cohere's v2 API (issue 17 §7), for tests and the bench: the real
 * `cohere-ai` SDK (CohereClientV2) talks to it over HTTP (COHERE_BASE_URL is
 * its root). POST /v2/chat answers `{id, finish_reason, message: {role,
 * content: [{type: "text", text}]}, usage: {billed_units, tokens,
 * cached_tokens}}`, or with `stream: true` the server-sent events
 * message-start, content-start, one content-delta per token, content-end and
 * message-end (finish_reason, usage), as the SDK's V2ChatStreamResponse says;
 * POST /v2/embed answers embeddings by type (`float`). Errors are `{id, message}`.
 * Faults, latency, counters and stream records are the kit's (mock-provider-kit.ts).
 *
 *   bun tools/mock-cohere-server.ts --port 8102 --latency 20-80 --embedding-dim 1024
 */
import { estimateTokens } from "../src/llm/provider";
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

const cohereError: MockErrorFormat = (status, _kind, message, headers = {}) =>
  Response.json({ id: crypto.randomUUID(), message }, { status, headers });

type ChatBody = { model?: unknown; messages?: unknown; max_tokens?: unknown; stream?: unknown };
type EmbedBody = { model?: unknown; texts?: unknown; input_type?: unknown; output_dimension?: unknown };

function routes(kit: MockKit) {
  const chat = async (request: Request): Promise<Response> => {
    const opened = await kit.openChat<ChatBody>(request, (body) =>
      chatMessages(body, "invalid request: model and a non-empty messages array are required"),
    );
    if (opened instanceof Response) return opened;
    const { body, messages, userText, cut } = opened;
    const streamed = body.stream === true;
    const limit = Number(body.max_tokens ?? Number.POSITIVE_INFINITY);
    const answer = kit.answer(
      messages.map((m) => textOf(m.content)),
      userText,
      limit,
      streamed,
    );
    const id = crypto.randomUUID();
    const finishReason = answer.truncated ? "MAX_TOKENS" : "COMPLETE";
    const tokens = { input_tokens: answer.promptTokens, output_tokens: answer.completionTokens };
    const usage = { billed_units: tokens, tokens, cached_tokens: 0 };
    if (!streamed) {
      if (cut !== undefined) return kit.cutBody();
      return Response.json({
        id,
        finish_reason: finishReason,
        message: { role: "assistant", content: [{ type: "text", text: answer.text }] },
        usage,
      });
    }
    const event = (type: string, data: Record<string, unknown>) => sseFrame({ type, ...data }, type);
    return kit.sse(request, {
      user: userText,
      pieces: answer.pieces,
      head: [
        event("message-start", {
          id,
          delta: { message: { role: "assistant", content: [], tool_plan: "", tool_calls: [], citations: [] } },
        }),
        event("content-start", { index: 0, delta: { message: { content: { type: "text", text: "" } } } }),
      ],
      piece: (text) => event("content-delta", { index: 0, delta: { message: { content: { text } } } }),
      tail: [
        event("content-end", { index: 0 }),
        event("message-end", { delta: { finish_reason: finishReason, usage } }),
      ],
      cut: cut,
    });
  };

  const embed = async (request: Request): Promise<Response> => {
    const body = await kit.readJson<EmbedBody>(request);
    if (body instanceof Response) return body;
    const texts = body.texts;
    if (
      typeof body.model !== "string" ||
      typeof body.input_type !== "string" ||
      !Array.isArray(texts) ||
      texts.length === 0 ||
      !texts.every((text): text is string => typeof text === "string")
    ) {
      kit.counters.embedding_requests++;
      return cohereError(400, "invalid", "invalid request: model, input_type and a non-empty texts array are required");
    }
    const dim = typeof body.output_dimension === "number" ? body.output_dimension : kit.embeddingDim;
    const vectors = await kit.embed(request, texts, dim);
    if (vectors instanceof Response) return vectors;
    return Response.json({
      id: crypto.randomUUID(),
      response_type: "embeddings_by_type",
      embeddings: { float: vectors.map((vector) => Array.from(vector)) },
      texts,
      meta: {
        api_version: { version: "2" },
        billed_units: { input_tokens: texts.reduce((sum, text) => sum + estimateTokens(text), 0) },
      },
    });
  };

  return { "/v2/chat": { POST: chat }, "/v2/embed": { POST: embed } };
}

export type MockCohereServer = MockServer;

export function createMockCohereServer(options: MockServerOptions = {}): MockCohereServer {
  return createMockServer({ ...options, embeddingDim: options.embeddingDim ?? 1024, error: cohereError, routes });
}

if (import.meta.main) runMockFromCli("Cohere", createMockCohereServer, 8102);
