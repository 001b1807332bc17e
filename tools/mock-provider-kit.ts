/**
 * What every mock provider server shares (issue 17 §7): the fault injection
 * (429 with Retry-After, 500, 400, a hang, a slow answer, a stream cut after
 * some tokens, a fine-tuning job that fails; for every request or only those whose text contains
 * `textIncludes`, `times` over), the latency, the counters, the streamed
 * answers' records, the answer a mock writes, the SSE body that streams it,
 * and the control routes under /__mock/. Each provider's file
 * (mock-openai-server.ts, mock-anthropic-server.ts, mock-cohere-server.ts)
 * adds only its wire format: its routes, bodies, stream events and error shape.
 */
import { parseArgs } from "node:util";
import { lexicalEmbedding } from "../src/llm/lexical-embedding";
import { estimateTokens } from "../src/llm/provider";
import { tokenPieces } from "../src/llm/simulated-provider";
import { sleep } from "../src/util/backoff";
import { type LatencyDistribution, latencySampler, parseLatency } from "../src/util/latency";

/** What a fault may target: chat, embeddings, file uploads and fine-tuning jobs (OpenAI's), or any request. */
export type MockEndpoint = "chat" | "embeddings" | "files" | "fine_tuning" | "any";

/**
 * Which requests a fault hits: an endpoint, and requests whose text contains textIncludes (a chat's user
 * message, an embedding input, an uploaded file's content or name, a fine-tuning job's model, suffix or
 * training file).
 */
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
  | ({ kind: "cut"; afterTokens?: number } & FaultTarget)
  /**
   * A fine-tuning job created while it is set fails once it runs, with this error (OpenAI's `error` of the
   * job); only job creations take it, and `textIncludes` matches the job's model, suffix or training file.
   */
  | ({ kind: "job_failed"; code?: string; message?: string } & FaultTarget);

const FAULT_KINDS = ["none", "429", "500", "400", "hang", "slow", "cut", "job_failed"] as const;

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
  /** Chat requests asked to stream. */
  chat_streams: number;
  prompt_tokens: number;
  completion_tokens: number;
}

export interface MockServerOptions {
  port?: number;
  hostname?: string;
  /** Added to every answer: fixed, uniform in [min, max], or log-normal ({median, p99}). */
  latencyMs?: number | LatencyDistribution;
  /** Dimension of embeddings when a request does not ask for one. */
  embeddingDim?: number;
  /** Streamed answers: tokens per answer, and the wait between two. */
  stream?: Partial<MockStreamSettings>;
}

/** A mock provider as tests and the bench drive it. */
export interface MockServer {
  /** The base URL its SDK is given (OpenAI's ends in /v1; Anthropic's and Cohere's are the server's root). */
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

/** The error kinds a fault or a bad request produces; each provider words them in its own body. */
export type MockErrorKind = "invalid" | "rate_limit" | "server" | "not_found";
export type MockErrorFormat = (
  status: number,
  kind: MockErrorKind,
  message: string,
  headers?: Record<string, string>,
) => Response;

type Handler = (request: Request) => Response | Promise<Response>;
/** A provider route: one handler, or one per method. */
export type MockRoute = Handler | { GET?: Handler; POST?: Handler; DELETE?: Handler };

/** A mock's answer to one chat request, before its wire format. */
export interface MockAnswer {
  text: string;
  pieces: string[];
  /** Cut at max_tokens, as real APIs do (finish reason "length" or its provider's word for it). */
  truncated: boolean;
  promptTokens: number;
  completionTokens: number;
}

export type ChatMessage = { role?: string; content?: unknown };
export interface OpenedChat<T> {
  body: T;
  messages: ChatMessage[];
  userText: string;
  cut: number | undefined;
}

/** What a provider's routes use: the shared state and helpers. */
export interface MockKit {
  readonly counters: MockCounters;
  readonly embeddingDim: number;
  readonly error: MockErrorFormat;
  readJson<T>(request: Request): Promise<T | Response>;
  /**
   * Reads a chat request: its JSON body, checked by `messagesOf` (the messages, or why the body is refused:
   * a 400 in the provider's words), the user's last text; counts it, serves its fault if one targets it,
   * waits the latency. A Response to send as is (a bad body, a fault), else the request and where a "cut"
   * fault cuts the answer (undefined: not cut).
   */
  openChat<T>(request: Request, messagesOf: (body: T) => ChatMessage[] | string): Promise<Response | OpenedChat<T>>;
  /** The answer to a chat whose messages are `texts` (the user's last), within max_tokens `limit`; counted. */
  answer(texts: readonly string[], userText: string, limit: number, streamed: boolean): MockAnswer;
  /**
   * Serves the fault aimed at a request of `endpoint` whose texts are `texts`, then waits the latency: a
   * Response to send as is (429, 500, 400, a hang), a job_failed fault for the caller to act on, or undefined.
   */
  serve(
    request: Request,
    endpoint: "files" | "fine_tuning",
    texts: readonly string[],
  ): Promise<Response | { jobFailed: { code?: string; message?: string } } | undefined>;
  /** Counts an embeddings call, serves its fault, waits the latency: a Response to send as is, else the vectors. */
  embed(request: Request, inputs: readonly string[], dim: number): Promise<Response | Float32Array[]>;
  /**
   * A streamed answer: `head` frames, one frame per piece (`tokenLatencyMs` apart), then `tail` frames; cut
   * after `cut` pieces when a fault says so. Recorded for GET /__mock/streams.
   */
  sse(
    request: Request,
    stream: {
      user: string;
      pieces: readonly string[];
      head: readonly string[];
      piece: (text: string) => string;
      tail: readonly string[];
      cut: number | undefined;
    },
  ): Response;
  /** A body that breaks off: the client sees its connection cut. */
  cutBody(): Response;
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

/** Epoch ms with sub-ms precision: comparable with another process's on the same machine. */
export const epochMs = () => performance.timeOrigin + performance.now();

/** One server-sent event: `event:` when the wire format names its events, then `data:`. */
export function sseFrame(data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;
}

/** The answer's own words, padded with numbered words or cut to `tokens`. */
function withTokens(text: string, tokens: number | undefined): string {
  if (tokens === undefined) return text;
  const pieces = tokenPieces(text).slice(0, tokens);
  for (let i = pieces.length; i < tokens; i++) pieces.push(` w${i}`);
  return pieces.join("");
}

const encoder = new TextEncoder();

/**
 * A mock provider server: the kit's state, the provider's routes, and the
 * control routes (/__mock/counters, streams, stream, reset, fault) that let
 * another process (the bench) drive it.
 */
export function createMockServer(
  options: MockServerOptions & {
    /** Appended to the server's address in `url` (OpenAI's SDK expects /v1 in its base URL). */
    basePath?: string;
    error: MockErrorFormat;
    routes: (kit: MockKit) => Record<string, MockRoute>;
    /** Runs on reset() (and POST /__mock/reset): a provider's own state (OpenAI's files and jobs) is cleared too. */
    onReset?: () => void;
  },
): MockServer {
  const { hostname = "127.0.0.1", latencyMs = 0, embeddingDim = 1536, error } = options;
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
    options.onReset?.();
  };

  /** The fault this request gets, if any; counts it down. */
  const takeFault = (endpoint: Exclude<MockEndpoint, "any">, texts: readonly string[]): MockFault | undefined => {
    if (fault.kind === "none" || faultsLeft <= 0) return undefined;
    const target = fault.endpoint ?? "any";
    if (target !== "any" && target !== endpoint) return undefined;
    // Only a job's creation can fail a job; the other requests leave the fault for it.
    if (fault.kind === "job_failed" && endpoint !== "fine_tuning") return undefined;
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
  ): Promise<Response | { cutAfter: number } | { jobFailed: { code?: string; message?: string } } | undefined> => {
    const current = takeFault(endpoint, texts);
    if (!current) return undefined;
    switch (current.kind) {
      case "429":
        return error(429, "rate_limit", "Rate limit reached (mock fault)", {
          "retry-after": String(current.retryAfterSeconds ?? 1),
        });
      case "500":
        return error(500, "server", "The server had an error (mock fault)");
      case "400":
        return error(400, "invalid", "Invalid request (mock fault)");
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
      case "job_failed":
        return {
          jobFailed: {
            ...(current.code ? { code: current.code } : {}),
            ...(current.message ? { message: current.message } : {}),
          },
        };
      default:
        return undefined;
    }
  };

  const cutBody = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          // No reason given: Bun would print it; the client sees its connection cut either way.
          setTimeout(() => controller.error(), 5);
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    );

  const wait = async (request: Request) => {
    const ms = latency();
    if (ms > 0) await sleep(ms, request.signal).catch(() => {});
  };

  const kit: MockKit = {
    get counters() {
      return counters;
    },
    embeddingDim,
    error,
    async readJson<T>(request: Request): Promise<T | Response> {
      try {
        return (await request.json()) as T;
      } catch {
        return error(400, "invalid", "We could not parse the JSON body of your request.");
      }
    },
    async openChat<T>(request: Request, messagesOf: (body: T) => ChatMessage[] | string) {
      counters.chat_requests++;
      const body = await kit.readJson<T>(request);
      if (body instanceof Response) return body;
      const messages = messagesOf(body);
      if (typeof messages === "string") return error(400, "invalid", messages);
      const userText = textOf(messages.findLast((m) => m.role === "user")?.content);
      const faulted = await serveFault(request, "chat", [userText]);
      if (faulted instanceof Response) return faulted;
      await wait(request);
      return { body, messages, userText, cut: faulted && "cutAfter" in faulted ? faulted.cutAfter : undefined };
    },
    answer(texts, userText, limit, streamed) {
      const words = userText.split(/\s+/).filter(Boolean);
      const full = withTokens(
        `mock answer: ${words.length} words, starting "${words.slice(0, 8).join(" ")}"`,
        streamSettings.tokens,
      );
      // As the real APIs do: an answer longer than max_tokens is cut, and the finish reason says so.
      const truncated = estimateTokens(full) > limit;
      const text = truncated ? full.slice(0, limit * 4) : full;
      const promptTokens = texts.reduce((sum, t) => sum + estimateTokens(t), 0);
      const completionTokens = Math.min(limit, estimateTokens(text));
      counters.prompt_tokens += promptTokens;
      counters.completion_tokens += completionTokens;
      if (streamed) counters.chat_streams++;
      return { text, pieces: tokenPieces(text), truncated, promptTokens, completionTokens };
    },
    async serve(request, endpoint, texts) {
      const faulted = await serveFault(request, endpoint, texts);
      if (faulted instanceof Response) return faulted;
      await wait(request);
      return faulted && "jobFailed" in faulted ? faulted : undefined;
    },
    async embed(request, inputs, dim) {
      counters.embedding_requests++;
      counters.embedding_inputs += inputs.length;
      counters.embedding_inputs_per_call.push(inputs.length);
      if (counters.embedding_inputs_per_call.length > PER_CALL_KEPT) counters.embedding_inputs_per_call.shift();
      const faulted = await serveFault(request, "embeddings", inputs);
      if (faulted instanceof Response) return faulted;
      if (faulted) return cutBody();
      await wait(request);
      return inputs.map((text) => lexicalEmbedding(text, dim));
    },
    sse(request, stream) {
      const { pieces, cut } = stream;
      const { tokenLatencyMs } = streamSettings;
      const record: MockStreamRecord = {
        user: stream.user.slice(0, 200),
        tokens: 0,
        first_token_at: 0,
        last_token_at: 0,
        complete: false,
      };
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          // Not awaited: start() returns at once, so each frame is sent as soon as it is enqueued.
          void (async () => {
            try {
              for (const frame of stream.head) controller.enqueue(encoder.encode(frame));
              for (const [i, piece] of pieces.entries()) {
                if (i > 0 && tokenLatencyMs > 0) await sleep(tokenLatencyMs, request.signal);
                if (request.signal.aborted) throw request.signal.reason;
                if (cut !== undefined && i >= cut) {
                  // The tokens before the cut reach the client first: an error before the body went out would
                  // fail the request itself, not the stream.
                  await sleep(10);
                  controller.error(); // the connection is cut (see cutBody)
                  return;
                }
                const at = epochMs();
                if (i === 0) record.first_token_at = at;
                record.last_token_at = at;
                record.tokens++;
                controller.enqueue(encoder.encode(stream.piece(piece)));
              }
              for (const frame of stream.tail) controller.enqueue(encoder.encode(frame));
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
    },
    cutBody,
  };

  const server = Bun.serve({
    port: options.port ?? 0,
    hostname,
    idleTimeout: 0, // a "hang" must outlive Bun's default 10 s idle timeout
    routes: {
      ...options.routes(kit),
      "/__mock/counters": () => Response.json(counters),
      "/__mock/streams": () => Response.json(streamRecords),
      "/__mock/stream": {
        POST: async (request) => {
          const body = await kit.readJson<{ tokens?: unknown; token_latency_ms?: unknown }>(request);
          if (body instanceof Response) return body;
          const { tokens, token_latency_ms: tokenLatencyMs } = body;
          const validTokens =
            tokens === undefined || tokens === null || (Number.isInteger(tokens) && Number(tokens) > 0);
          const validLatency =
            tokenLatencyMs === undefined || (typeof tokenLatencyMs === "number" && tokenLatencyMs >= 0);
          if (!validTokens || !validLatency) {
            return error(
              400,
              "invalid",
              "tokens must be a whole number > 0 (or null: the answer's own), token_latency_ms a number >= 0",
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
          const body = await kit.readJson<MockFault>(request);
          if (body instanceof Response) return body;
          if (!(FAULT_KINDS as readonly string[]).includes(String((body as { kind?: unknown }).kind))) {
            return error(400, "invalid", `kind must be one of ${FAULT_KINDS.join(", ")}`);
          }
          setFault(body);
          return Response.json({ ok: true, fault: body });
        },
      },
    },
    fetch: () => error(404, "not_found", "unknown route (mock server)"),
  });
  const port = server.port ?? 0;

  return {
    url: `http://${hostname}:${port}${options.basePath ?? ""}`,
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

/** A chat body's messages when it names a model and has some, else `refusal` (the mock's 400). */
export function chatMessages(body: { model?: unknown; messages?: unknown }, refusal: string): ChatMessage[] | string {
  return typeof body.model === "string" && Array.isArray(body.messages) && body.messages.length > 0
    ? (body.messages as ChatMessage[])
    : refusal;
}

/** The text of a chat message's content: a string, or the text parts of a content array (Anthropic, Cohere). */
export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (part && typeof part === "object" && "text" in part ? String(part.text) : ""))
      .join("");
  }
  return JSON.stringify(content ?? "");
}

function parseLatencyFlag(spec: string): LatencyDistribution {
  const latency = parseLatency(spec);
  if (!latency) throw new Error(`--latency "${spec}": expected ms, a range like 20-80, or lognormal:MEDIAN:P99`);
  return latency;
}

/** The command line every mock takes: --port --hostname --latency --embedding-dim --tokens --token-latency. */
export function runMockFromCli(name: string, create: (options: MockServerOptions) => MockServer, port: number): void {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: String(port) },
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
  const mock = create({
    port: Number(values.port),
    hostname: values.hostname,
    latencyMs: parseLatencyFlag(values.latency ?? "0"),
    embeddingDim: Number(values["embedding-dim"]),
    stream: { ...(tokens === undefined ? {} : { tokens }), tokenLatencyMs },
  });
  process.stdout.write(
    `mock ${name} server on ${mock.url} (counters: GET http://${values.hostname}:${mock.port}/__mock/counters)\n`,
  );
  for (const signal of ["SIGTERM", "SIGINT"] as const)
    process.once(signal, () => void mock.stop().then(() => process.exit(0)));
}
