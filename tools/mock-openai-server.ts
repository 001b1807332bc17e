/**
 * An OpenAI-compatible HTTP server owned by the project, for tests and the
 * bench: the real `openai` client talks to it over HTTP. It answers
 * /v1/chat/completions and /v1/embeddings (array input, float or base64),
 * with a configurable latency, injectable faults (429 with Retry-After, 500,
 * 400, a hang, a slow answer; for every request, or only those whose text
 * contains `textIncludes`) and counters, all reachable over HTTP under
 * /__mock/ so that another process (the bench) can drive it.
 *
 *   bun tools/mock-openai-server.ts --port 8100 --latency 20-80 --embedding-dim 1536
 */
import { parseArgs } from "node:util";
import { lexicalEmbedding } from "../src/llm/lexical-embedding";
import { estimateTokens } from "../src/llm/provider";
import { sleep } from "../src/util/backoff";

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
  | ({ kind: "slow"; slowMs: number } & FaultTarget);

export interface MockCounters {
  chat_requests: number;
  embedding_requests: number;
  embedding_inputs: number;
  /** Inputs of each embeddings call, oldest first (the last 10,000): shows whether callers batch. */
  embedding_inputs_per_call: number[];
  faults_served: number;
  prompt_tokens: number;
  completion_tokens: number;
}

export interface MockOpenAiServerOptions {
  port?: number;
  hostname?: string;
  /** Added to every answer: fixed, or uniform in [min, max]. */
  latencyMs?: number | { min: number; max: number };
  /** Dimension of embeddings when a request does not ask for one. */
  embeddingDim?: number;
}

export interface MockOpenAiServer {
  /** The base URL for OPENAI_BASE_URL, ending in /v1. */
  readonly url: string;
  readonly port: number;
  setFault(fault: MockFault): void;
  counters(): MockCounters;
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

type ChatBody = { model?: unknown; messages?: unknown; max_completion_tokens?: unknown; max_tokens?: unknown };
type EmbeddingsBody = { model?: unknown; input?: unknown; encoding_format?: unknown; dimensions?: unknown };

export function createMockOpenAiServer(options: MockOpenAiServerOptions = {}): MockOpenAiServer {
  const { hostname = "127.0.0.1", latencyMs = 0, embeddingDim = 1536 } = options;
  let fault: MockFault = { kind: "none" };
  let faultsLeft = Number.POSITIVE_INFINITY;
  let counters = emptyCounters();
  const hanging = new Set<() => void>();

  const latency = () =>
    typeof latencyMs === "number" ? latencyMs : latencyMs.min + Math.random() * (latencyMs.max - latencyMs.min);

  const setFault = (next: MockFault) => {
    fault = next;
    faultsLeft = next.kind === "none" ? 0 : (next.times ?? Number.POSITIVE_INFINITY);
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

  /** Serves the fault, or undefined to answer normally (after a "slow" delay). */
  const serveFault = async (
    request: Request,
    endpoint: Exclude<MockEndpoint, "any">,
    texts: readonly string[],
  ): Promise<Response | undefined> => {
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
      default:
        return undefined;
    }
  };

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
    if (faulted) return faulted;
    const ms = latency();
    if (ms > 0) await sleep(ms, request.signal).catch(() => {});
    const promptTokens = messages.reduce((sum, m) => sum + estimateTokens(String(m.content ?? "")), 0);
    const words = userText.split(/\s+/).filter(Boolean);
    const full = `mock answer: ${words.length} words, starting "${words.slice(0, 8).join(" ")}"`;
    const limit = Number(body.max_completion_tokens ?? body.max_tokens ?? Number.POSITIVE_INFINITY);
    // As the real API does: an answer longer than max_tokens is cut, and finish_reason says so.
    const truncated = estimateTokens(full) > limit;
    const text = truncated ? full.slice(0, limit * 4) : full;
    const completionTokens = Math.min(limit, estimateTokens(text));
    counters.prompt_tokens += promptTokens;
    counters.completion_tokens += completionTokens;
    return Response.json({
      id: `chatcmpl-mock-${counters.chat_requests}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: text },
          finish_reason: truncated ? "length" : "stop",
          logprobs: null,
        },
      ],
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
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
    if (faulted) return faulted;
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
      "/__mock/reset": {
        POST: () => {
          counters = emptyCounters();
          setFault({ kind: "none" });
          return Response.json({ ok: true });
        },
      },
      "/__mock/fault": {
        POST: async (request) => {
          const body = await readJson<MockFault>(request);
          if (body instanceof Response) return body;
          if (!["none", "429", "500", "400", "hang", "slow"].includes(String((body as { kind?: unknown }).kind))) {
            return openAiError(400, "kind must be one of none, 429, 500, 400, hang, slow", "invalid_request_error");
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
    counters: () => ({ ...counters, embedding_inputs_per_call: [...counters.embedding_inputs_per_call] }),
    reset() {
      counters = emptyCounters();
      setFault({ kind: "none" });
    },
    async stop() {
      for (const release of [...hanging]) release();
      await server.stop(true);
    },
  };
}

function parseLatency(spec: string): number | { min: number; max: number } {
  const [low, high] = spec.split("-").map(Number);
  if (low === undefined || Number.isNaN(low) || (high !== undefined && Number.isNaN(high))) {
    throw new Error(`--latency "${spec}": expected ms, or a range like 20-80`);
  }
  return high === undefined ? low : { min: low, max: high };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8100" },
      hostname: { type: "string", default: "127.0.0.1" },
      latency: { type: "string", default: "0" },
      "embedding-dim": { type: "string", default: "1536" },
    },
  });
  const mock = createMockOpenAiServer({
    port: Number(values.port),
    hostname: values.hostname,
    latencyMs: parseLatency(values.latency),
    embeddingDim: Number(values["embedding-dim"]),
  });
  process.stdout.write(
    `mock OpenAI server on ${mock.url} (counters: GET ${mock.url.replace(/\/v1$/, "")}/__mock/counters)\n`,
  );
  for (const signal of ["SIGTERM", "SIGINT"] as const)
    process.once(signal, () => void mock.stop().then(() => process.exit(0)));
}
