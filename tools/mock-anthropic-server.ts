/**
 * A mock of Anthropic's Messages API (issue 17 §7), for tests and the bench:
 * the real `@anthropic-ai/sdk` talks to it over HTTP (ANTHROPIC_BASE_URL is
 * its root). POST /v1/messages answers a Message, or with `stream: true` the
 * server-sent events message_start, content_block_start, ping, one
 * content_block_delta (text_delta) per token, content_block_stop,
 * message_delta (stop_reason, output usage) and message_stop, as the SDK's
 * RawMessageStreamEvent types say. Errors are `{type: "error", error: {type, message}}`.
 * Faults, latency, counters and stream records are the kit's (mock-provider-kit.ts).
 *
 *   bun tools/mock-anthropic-server.ts --port 8101 --latency 20-80 --tokens 200 --token-latency 5
 */
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

const ERROR_TYPES = {
  invalid: "invalid_request_error",
  rate_limit: "rate_limit_error",
  server: "api_error",
  not_found: "not_found_error",
} as const;

const anthropicError: MockErrorFormat = (status, kind, message, headers = {}) =>
  Response.json(
    { type: "error", error: { type: ERROR_TYPES[kind], message } },
    { status, headers: { ...headers, "request-id": `req_mock_${crypto.randomUUID()}` } },
  );

type MessagesBody = {
  model?: unknown;
  max_tokens?: unknown;
  messages?: unknown;
  system?: unknown;
  stream?: unknown;
};

function routes(kit: MockKit) {
  const messages = async (request: Request): Promise<Response> => {
    const opened = await kit.openChat<MessagesBody>(request, (body) =>
      Number.isInteger(body.max_tokens)
        ? chatMessages(body, "model, max_tokens and a non-empty messages array are required")
        : "model, max_tokens and a non-empty messages array are required",
    );
    if (opened instanceof Response) return opened;
    const { body, messages: turns, userText, cut } = opened;
    const streamed = body.stream === true;
    const texts = [...(body.system === undefined ? [] : [textOf(body.system)]), ...turns.map((m) => textOf(m.content))];
    const answer = kit.answer(texts, userText, Number(body.max_tokens), streamed);
    const id = `msg_mock_${kit.counters.chat_requests}`;
    const stopReason = answer.truncated ? "max_tokens" : "end_turn";
    const usage = (outputTokens: number) => ({
      input_tokens: answer.promptTokens,
      output_tokens: outputTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation: null,
      server_tool_use: null,
      service_tier: "standard",
    });
    const message = (content: unknown[], stop: string | null, outputTokens: number) => ({
      id,
      type: "message",
      role: "assistant",
      model: body.model,
      content,
      stop_reason: stop,
      stop_sequence: null,
      container: null,
      usage: usage(outputTokens),
    });
    if (!streamed) {
      if (cut !== undefined) return kit.cutBody();
      return Response.json(
        message([{ type: "text", text: answer.text, citations: null }], stopReason, answer.completionTokens),
      );
    }
    const event = (type: string, data: Record<string, unknown>) => sseFrame({ type, ...data }, type);
    return kit.sse(request, {
      user: userText,
      pieces: answer.pieces,
      head: [
        event("message_start", { message: message([], null, 1) }),
        event("content_block_start", { index: 0, content_block: { type: "text", text: "", citations: null } }),
        event("ping", {}),
      ],
      piece: (text) => event("content_block_delta", { index: 0, delta: { type: "text_delta", text } }),
      tail: [
        event("content_block_stop", { index: 0 }),
        event("message_delta", {
          delta: { stop_reason: stopReason, stop_sequence: null, container: null },
          usage: {
            input_tokens: answer.promptTokens,
            output_tokens: answer.completionTokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            server_tool_use: null,
          },
        }),
        event("message_stop", {}),
      ],
      cut: cut,
    });
  };
  return { "/v1/messages": { POST: messages } };
}

export type MockAnthropicServer = MockServer;

export function createMockAnthropicServer(options: MockServerOptions = {}): MockAnthropicServer {
  return createMockServer({ ...options, error: anthropicError, routes });
}

if (import.meta.main) runMockFromCli("Anthropic", createMockAnthropicServer, 8101);
