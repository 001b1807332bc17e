/**
 * An OpenAI-compatible HTTP server owned by the project, for tests and the
 * bench: the real `openai` client talks to it over HTTP. It answers
 * /v1/chat/completions (whole, or streamed with `stream: true` in OpenAI's
 * wire format: `data: {chat.completion.chunk}` events, a last usage chunk
 * with `stream_options.include_usage`, then `data: [DONE]`) and
 * /v1/embeddings (array input, float or base64), with a configurable latency
 * (before the first token) and, for streams, a token count and a latency per
 * token; injectable faults (429 with Retry-After, 500, 400, a hang, a slow
 * answer, a stream cut after some tokens; for every request, or only those
 * whose text contains `textIncludes`), counters, and when each stream sent
 * its first and last token (epoch ms, comparable across processes of one
 * machine), all reachable over HTTP under /__mock/ so that another process
 * (the bench) can drive it.
 *
 *   bun tools/mock-openai-server.ts --port 8100 --latency 20-80 --embedding-dim 1536 --tokens 200 --token-latency 5
 */
import { parseArgs } from "node:util";
import { lexicalEmbedding } from "../src/llm/lexical-embedding";
import { estimateTokens } from "../src/llm/provider";
import { tokenPieces } from "../src/llm/simulated-provider";
import { sleep } from "../src/util/backoff";
import { type LatencyDistribution, latencySampler, parseLatency } from "../src/util/latency";

export type MockEndpoint = "chat" | "embeddings" | "any";

/** Which requests a fault hits: an endpoint, and requests whose text (a chat's user message, an embedding input) contains textIncludes. */
interface FaultTarget {
  times?: number;
  endpoint?: MockEndpoint;
  textIncludes?: string;
}

export type MockFault =
  | { kind: "none" }
  | ({ kind: "429"; retryAfterSeconds?: number } & FaultTarget)
  | ({ kind: "500" | "400" | "hang" } & FaultTarget)
  | ({ kind: "slow"; slowMs: number } & FaultTarget)
  /** A streamed answer breaks off (the connection is cut) after `afterTokens` tokens; a whole answer at once. */
  | ({ kind: "cut"; afterTokens?: number } & FaultTarget);

const FAULT_KINDS = ["none", "429", "500", "400", "hang", "slow", "cut"] as const;

/** How streamed answers are sent. */
export interface MockStreamSettings {
  /** Tokens of every answer, streamed or not (padded or cut to it); undefined: the answer's own words. */
  tokens?: number;
  /** Wait between two tokens, ms (the first one waits `latencyMs`). */
  tokenLatencyMs: number;
}

/** One streamed answer: when its tokens left (epoch ms, `performance.timeOrigin + performance.now()`). */
export interface MockStreamRecord {
  /** The start of the request's user message (200 characters at most), to find a task's stream. */
  user: string;
  tokens: number;
  first_token_at: number;
  last_token_at: number;
  /** Cut by a fault, or by the client going away. */
  complete: boolean;
}

export interface MockCounters {
  chat_requests: number;
  embedding_requests: number;
  embedding_inputs: number;
  /** Inputs of each embeddings call, oldest first (the last 10,000): shows whether callers batch. */
  embedding_inputs_per_call: number[];
  faults_served: number;
  /** Chat completions asked with `stream: true`. */
  chat_streams: number;
  prompt_tokens: number;
  completion_tokens: number;
}

export interface MockOpenAiServerOptions {
  port?: number;
  hostname?: string;
  /** Added to every answer: fixed, uniform in [min, max], or log-normal ({median, p99}). */
  latencyMs?: number | LatencyDistribution;
  /** Dimension of embeddings when a request does not ask for one. */
  embeddingDim?: number;
  /** Streamed answers: tokens per answer, and the wait between two. */
  stream?: Partial<MockStreamSettings>;
}

export interface MockOpenAiServer {
  /** The base URL for OPENAI_BASE_URL, ending in /v1. */
  readonly url: string;
  readonly port: number;
  setFault(fault: MockFault): void;
  setStream(settings: Partial<MockStreamSettings>): void;
  counters(): MockCounters;
  /** The streamed answers, oldest first (the last 10,000). */
  streams(): MockStreamRecord[];
  reset(): void;
  stop(): Promise<void>;
}

const PER_CALL_KEPT = 10_000;

function emptyCounters(): MockCounters {
  return {
    chat_requests: 0,
    embedding_requests: 0,
    embedding_inputs: 0,
    embedding_inputs_per_call: [],
    faults_served: 0,
    chat_streams: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
  };
}

function openAiError(status: number, message: string, type: string, headers: Record<string, string> = {}): Response {
  return Response.json({ error: { message, type, param: null, code: null } }, { status, headers });
}

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

/** Epoch ms with sub-ms precision: comparable with another process's on the same machine. */
export const epochMs = () => performance.timeOrigin + performance.now();

/** The answer's own words, padded with numbered words or cut to `tokens`. */
function withTokens(text: string, tokens: number | undefined): string {
  if (tokens === undefined) return text;
  const pieces = tokenPieces(text).slice(0, tokens);
  for (let i = pieces.length; i < tokens; i++) pieces.push(` w${i}`);
  return pieces.join("");
}

const encoder = new TextEncoder();

type EmbeddingsBody = { model?: unknown; input?: unknown; encoding_format?: unknown; dimensions?: unknown };

export function createMockOpenAiServer(options: MockOpenAiServerOptions = {}): MockOpenAiServer {
  const { hostname = "127.0.0.1", latencyMs = 0, embeddingDim = 1536 } = options;
  let fault: MockFault = { kind: "none" };
  let faultsLeft = Number.POSITIVE_INFINITY;
  let counters = emptyCounters();
  const hanging = new Set<() => void>();
  const initialStream: MockStreamSettings = { tokenLatencyMs: 0, ...options.stream };
  let streamSettings: MockStreamSettings = { ...initialStream };
  let streamRecords: MockStreamRecord[] = [];

  const latency = typeof latencyMs === "number" ? () => latencyMs : latencySampler(latencyMs);

  const setFault = (next: MockFault) => {
    fault = next;
    faultsLeft = next.kind === "none" ? 0 : (next.times ?? Number.POSITIVE_INFINITY);
  };

  const setStream = (settings: Partial<MockStreamSettings>) => {
    streamSettings = { ...streamSettings, ...settings };
    if ("tokens" in settings && settings.tokens === undefined) delete streamSettings.tokens;
  };

  /** Counters, fault and streamed answers cleared; stream settings back to the options'. */
  const reset = () => {
    counters = emptyCounters();
    streamRecords = [];
    streamSettings = { ...initialStream };
    setFault({ kind: "none" });
  };

  /** The fault this request gets, if any; counts it down. */
  const takeFault = (endpoint: Exclude<MockEndpoint, "any">, texts: readonly string[]): MockFault | undefined => {
    if (fault.kind === "none" || faultsLeft <= 0) return undefined;
    const target = fault.endpoint ?? "any";
    if (target !== "any" && target !== endpoint) return undefined;
    const needle = fault.textIncludes;
    if (needle !== undefined && !texts.some((text) => text.includes(needle))) return undefined;
    faultsLeft--;
    counters.faults_served++;
    return fault;
  };

  /** Serves the fault, or undefined to answer normally (after a "slow" delay), or where to cut the answer. */
  const serveFault = async (
    request: Request,
    endpoint: Exclude<MockEndpoint, "any">,
    texts: readonly string[],
  ): Promise<Response | { cutAfter: number } | undefined> => {
    const current = takeFault(endpoint, texts);
    if (!current) return undefined;
    switch (current.kind) {
      case "429":
        return openAiError(429, "Rate limit reached (mock fault)", "rate_limit_error", {
          "retry-after": String(current.retryAfterSeconds ?? 1),
        });
      case "500":
        return openAiError(500, "The server had an error (mock fault)", "server_error");
      case "400":
        return openAiError(400, "Invalid request (mock fault)", "invalid_request_error");
      case "hang":
        // Never answers; the connection is released when the client gives up or the server stops.
        await new Promise<void>((resolve) => {
          const release = () => {
            hanging.delete(release);
            resolve();
          };
          hanging.add(release);
          request.signal.addEventListener("abort", release, { once: true });
        });
        return new Response(null, { status: 499 });
      case "slow":
        await sleep(current.slowMs, request.signal).catch(() => {});
        return undefined;
      case "cut":
        return { cutAfter: current.afterTokens ?? 0 };
      default:
        return undefined;
    }
  };

  /** A body that breaks off: the client sees its connection cut after `pieces` went out. */
  const cutBody = (pieces: Uint8Array[]) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (const piece of pieces) controller.enqueue(piece);
          // No reason given: Bun would print it; the client sees its connection cut either way.
          setTimeout(() => controller.error(), 5);
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    );

  const readJson = async <T>(request: Request): Promise<T | Response> => {
    try {
      return (await request.json()) as T;
    } catch {
      return openAiError(400, "We could not parse the JSON body of your request.", "invalid_request_error");
    }
  };

  const chat = async (request: Request): Promise<Response> => {
    counters.chat_requests++;
    const body = await readJson<ChatBody>(request);
    if (body instanceof Response) return body;
    if (typeof body.model !== "string" || !Array.isArray(body.messages) || body.messages.length === 0) {
      return openAiError(400, "'model' and a non-empty 'messages' array are required", "invalid_request_error");
    }
    const messages = body.messages as { role?: string; content?: unknown }[];
    const user = messages.findLast((m) => m.role === "user")?.content;
    const userText = typeof user === "string" ? user : JSON.stringify(user ?? "");
    const faulted = await serveFault(request, "chat", [userText]);
    if (faulted instanceof Response) return faulted;
    const cut = faulted?.cutAfter;
    const ms = latency();
    if (ms > 0) await sleep(ms, request.signal).catch(() => {});
    const promptTokens = messages.reduce((sum, m) => sum + estimateTokens(String(m.content ?? "")), 0);
    const words = userText.split(/\s+/).filter(Boolean);
    const streamed = body.stream === true;
    const full = withTokens(
      `mock answer: ${words.length} words, starting "${words.slice(0, 8).join(" ")}"`,
      streamSettings.tokens,
    );
    const limit = Number(body.max_completion_tokens ?? body.max_tokens ?? Number.POSITIVE_INFINITY);
    // As the real API does: an answer longer than max_tokens is cut, and finish_reason says so.
    const truncated = estimateTokens(full) > limit;
    const text = truncated ? full.slice(0, limit * 4) : full;
    const completionTokens = Math.min(limit, estimateTokens(text));
    counters.prompt_tokens += promptTokens;
    counters.completion_tokens += completionTokens;
    const id = `chatcmpl-mock-${counters.chat_requests}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    };
    const finishReason = truncated ? "length" : "stop";
    if (streamed) {
      counters.chat_streams++;
      const includeUsage = body.stream_options?.include_usage === true;
      return streamAnswer(request, {
        id,
        created,
        model: body.model,
        user: userText,
        pieces: tokenPieces(text),
        finishReason,
        usage: includeUsage ? usage : undefined,
        cut,
      });
    }
    if (cut !== undefined) return cutBody([]);
    return Response.json({
      id,
      object: "chat.completion",
      created,
      model: body.model,
      choices: [
        { index: 0, message: { role: "assistant", content: text }, finish_reason: finishReason, logprobs: null },
      ],
      usage,
    });
  };

  /**
   * OpenAI's streaming wire format: server-sent events whose data is a
   * `chat.completion.chunk` (the role first, then one per token, then the
   * finish reason), a last chunk with empty choices and the usage when the
   * request asked for it, then `[DONE]`. Every chunk has `usage: null` when
   * usage was asked for, as the real API sends it.
   */
  const streamAnswer = (
    request: Request,
    answer: {
      id: string;
      created: number;
      model: string;
      user: string;
      pieces: string[];
      finishReason: string;
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | undefined;
      cut: number | undefined;
    },
  ): Response => {
    const { pieces, usage, cut } = answer;
    const frame = (data: unknown) => encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
    const chunk = (delta: Record<string, unknown>, finishReason: string | null, withUsage = usage) => ({
      id: answer.id,
      object: "chat.completion.chunk",
      created: answer.created,
      model: answer.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(withUsage ? { usage: null } : {}),
    });
    const { tokenLatencyMs } = streamSettings;
    const record: MockStreamRecord = {
      user: answer.user.slice(0, 200),
      tokens: 0,
      first_token_at: 0,
      last_token_at: 0,
      complete: false,
    };
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        // Not awaited: start() returns at once, so each chunk is sent as soon as it is enqueued.
        void (async () => {
          try {
            controller.enqueue(frame(chunk({ role: "assistant", content: "" }, null)));
            for (const [i, piece] of pieces.entries()) {
              if (i > 0 && tokenLatencyMs > 0) await sleep(tokenLatencyMs, request.signal);
              if (request.signal.aborted) throw request.signal.reason;
              if (cut !== undefined && i >= cut) {
                // The tokens before the cut reach the client first: an error before the body went out would fail
                // the request itself, not the stream.
                await sleep(10);
                controller.error(); // the connection is cut (see cutBody)
                return;
              }
              const at = epochMs();
              if (i === 0) record.first_token_at = at;
              record.last_token_at = at;
              record.tokens++;
              controller.enqueue(frame(chunk({ content: piece }, null)));
            }
            controller.enqueue(frame(chunk({}, answer.finishReason)));
            if (usage) {
              controller.enqueue(
                frame({
                  id: answer.id,
                  object: "chat.completion.chunk",
                  created: answer.created,
                  model: answer.model,
                  system_fingerprint: null,
                  choices: [],
                  usage,
                }),
              );
            }
            controller.enqueue(encoder.encode("data: [DONE]\n\n"));
            record.complete = true;
            controller.close();
          } catch {
            // The client went away (its abort): nothing more to send.
            try {
              controller.close();
            } catch {}
          } finally {
            if (record.tokens > 0) {
              streamRecords.push(record);
              if (streamRecords.length > PER_CALL_KEPT) streamRecords.shift();
            }
          }
        })();
      },
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
    });
  };

  const embeddings = async (request: Request): Promise<Response> => {
    counters.embedding_requests++;
    const body = await readJson<EmbeddingsBody>(request);
    if (body instanceof Response) return body;
    const input = typeof body.input === "string" ? [body.input] : body.input;
    if (typeof body.model !== "string" || !Array.isArray(input) || input.length === 0) {
      return openAiError(400, "'model' and a non-empty 'input' are required", "invalid_request_error");
    }
    if (!input.every((item): item is string => typeof item === "string")) {
      return openAiError(400, "this mock accepts string inputs only", "invalid_request_error");
    }
    counters.embedding_inputs += input.length;
    counters.embedding_inputs_per_call.push(input.length);
    if (counters.embedding_inputs_per_call.length > PER_CALL_KEPT) counters.embedding_inputs_per_call.shift();
    const faulted = await serveFault(request, "embeddings", input);
    if (faulted instanceof Response) return faulted;
    if (faulted) return cutBody([]);
    const ms = latency();
    if (ms > 0) await sleep(ms, request.signal).catch(() => {});
    const dim = typeof body.dimensions === "number" ? body.dimensions : embeddingDim;
    const base64 = body.encoding_format === "base64";
    const tokens = input.reduce((sum, text) => sum + estimateTokens(text), 0);
    return Response.json({
      object: "list",
      model: body.model,
      data: input.map((text, index) => {
        const vector = lexicalEmbedding(text, dim);
        return { object: "embedding", index, embedding: base64 ? encodeBase64(vector) : Array.from(vector) };
      }),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  };

  const server = Bun.serve({
    port: options.port ?? 0,
    hostname,
    idleTimeout: 0, // a "hang" must outlive Bun's default 10 s idle timeout
    routes: {
      "/v1/chat/completions": { POST: chat },
      "/v1/embeddings": { POST: embeddings },
      "/v1/models": () => Response.json({ object: "list", data: [{ id: "mock-model", object: "model" }] }),
      "/__mock/counters": () => Response.json(counters),
      "/__mock/streams": () => Response.json(streamRecords),
      "/__mock/stream": {
        POST: async (request) => {
          const body = await readJson<{ tokens?: unknown; token_latency_ms?: unknown }>(request);
          if (body instanceof Response) return body;
          const { tokens, token_latency_ms: tokenLatencyMs } = body;
          const validTokens =
            tokens === undefined || tokens === null || (Number.isInteger(tokens) && Number(tokens) > 0);
          const validLatency =
            tokenLatencyMs === undefined || (typeof tokenLatencyMs === "number" && tokenLatencyMs >= 0);
          if (!validTokens || !validLatency) {
            return openAiError(
              400,
              "tokens must be a whole number > 0 (or null: the answer's own), token_latency_ms a number >= 0",
              "invalid_request_error",
            );
          }
          setStream({
            ...(tokens === undefined ? {} : { tokens: tokens === null ? undefined : Number(tokens) }),
            ...(tokenLatencyMs === undefined ? {} : { tokenLatencyMs: Number(tokenLatencyMs) }),
          });
          return Response.json({ ok: true, stream: streamSettings });
        },
      },
      "/__mock/reset": {
        POST: () => {
          reset();
          return Response.json({ ok: true });
        },
      },
      "/__mock/fault": {
        POST: async (request) => {
          const body = await readJson<MockFault>(request);
          if (body instanceof Response) return body;
          if (!(FAULT_KINDS as readonly string[]).includes(String((body as { kind?: unknown }).kind))) {
            return openAiError(400, `kind must be one of ${FAULT_KINDS.join(", ")}`, "invalid_request_error");
          }
          setFault(body);
          return Response.json({ ok: true, fault: body });
        },
      },
    },
    fetch: () => openAiError(404, "unknown route (mock OpenAI server)", "invalid_request_error"),
  });
  const port = server.port ?? 0;

  return {
    url: `http://${hostname}:${port}/v1`,
    port,
    setFault,
    setStream,
    counters: () => ({ ...counters, embedding_inputs_per_call: [...counters.embedding_inputs_per_call] }),
    streams: () => streamRecords.map((record) => ({ ...record })),
    reset,
    async stop() {
      for (const release of [...hanging]) release();
      await server.stop(true);
    },
  };
}

function parseLatencyFlag(spec: string): LatencyDistribution {
  const latency = parseLatency(spec);
  if (!latency) throw new Error(`--latency "${spec}": expected ms, a range like 20-80, or lognormal:MEDIAN:P99`);
  return latency;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8100" },
      hostname: { type: "string", default: "127.0.0.1" },
      latency: { type: "string", default: "0" },
      "embedding-dim": { type: "string", default: "1536" },
      tokens: { type: "string" },
      "token-latency": { type: "string", default: "0" },
    },
  });
  const tokens = values.tokens === undefined ? undefined : Number(values.tokens);
  if (tokens !== undefined && !(Number.isInteger(tokens) && tokens > 0))
    throw new Error(`--tokens "${values.tokens}": expected a whole number > 0`);
  const tokenLatencyMs = Number(values["token-latency"]);
  if (!(tokenLatencyMs >= 0)) throw new Error(`--token-latency "${values["token-latency"]}": expected ms >= 0`);
  const mock = createMockOpenAiServer({
    port: Number(values.port),
    hostname: values.hostname,
    latencyMs: parseLatencyFlag(values.latency),
    embeddingDim: Number(values["embedding-dim"]),
    stream: { ...(tokens === undefined ? {} : { tokens }), tokenLatencyMs },
  });
  process.stdout.write(
    `mock OpenAI server on ${mock.url} (counters: GET ${mock.url.replace(/\/v1$/, "")}/__mock/counters)\n`,
  );
  for (const signal of ["SIGTERM", "SIGINT"] as const)
    process.once(signal, () => void mock.stop().then(() => process.exit(0)));
}
