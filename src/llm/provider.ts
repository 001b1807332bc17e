/**
 * The narrow port to a language model: the two calls the product makes.
 * Adapters (OpenAI SDK, simulated) live behind it, so the pipeline and the
 * semantic cache never see an SDK type.
 */
import { AppError } from "../errors";

export interface ChatRequest {
  taskType: string;
  system: string;
  user: string;
  model?: string;
  temperature: number;
  maxTokens: number;
  /** Aborts the call for real: the HTTP request is cancelled, not merely ignored. */
  signal?: AbortSignal;
  /**
   * Given: the answer is streamed, and each piece of text is passed here as
   * the provider sends it. Their concatenation is the result's `text`, or
   * what came since the last onReset.
   */
  onToken?: (text: string) => void;
  /**
   * The text passed to onToken so far is void: a retry inside the call
   * (llm/retry.ts) starts the answer over. Called only after some text was passed.
   */
  onReset?: () => void;
  /**
   * No in-call retry: the model router's probe of a half-open circuit (circuit-breaker.ts) is one
   * request, whose failure says the model is still down.
   */
  noRetry?: boolean;
}

export interface TokenUsage {
  /** Every input token, those read from the provider's prompt cache included. */
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Of promptTokens, those the provider read from its prompt cache (billed at the cached-input price). */
  cachedPromptTokens?: number;
}

export interface ChatResult {
  text: string;
  model: string;
  /** In the product's words (OpenAI's): stop, length, ...; adapters translate their provider's. */
  finishReason: string;
  usage: TokenUsage;
  /** The provider that answered, and its model as routed (no date suffix): set by the model router. */
  provider?: string;
  routedModel?: string;
  /** Answered by a model of the route's fallback chain, not its first (llm/model-router.ts). */
  fallback?: boolean;
  /** What the call cost at the price table (llm/prices.ts), USD. */
  costUsd?: number;
}

/**
 * The semantic cache's port: embeddings alone. Built from EMBEDDING_PROVIDER,
 * apart from chat, so that chat can stay simulated or OpenAI while embeddings
 * come from the local model (issue 14).
 */
export interface Embedder {
  readonly name: string;
  /** With embeddingDim, names the vector index: vectors of two models never share one. */
  readonly embeddingModel: string;
  readonly embeddingDim: number;
  /** One vector per text, in order, L2-normalised, of embeddingDim floats. */
  embed(texts: readonly string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
}

/** A chat model; the adapters also embed (the OpenAI API and the simulated one do both). */
export interface LlmProvider extends Embedder {
  chat(request: ChatRequest): Promise<ChatResult>;
}

export interface LlmErrorOptions {
  retriable: boolean;
  /** The provider's HTTP status, when it answered. */
  providerStatus?: number;
  /** How long the provider asked us to wait (Retry-After), ms. */
  retryAfterMs?: number;
  cause?: unknown;
}

/** A provider call failed. `retriable` decides between a retry and an immediate FAILURE. */
export class LlmError extends AppError {
  readonly providerStatus: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, options: LlmErrorOptions) {
    super(code, message, {
      status: 502,
      retriable: options.retriable,
      cause: options.cause,
      details: options.providerStatus === undefined ? undefined : { provider_status: options.providerStatus },
    });
    this.name = "LlmError";
    this.providerStatus = options.providerStatus;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Rough token count (about four characters a token in English) for providers that do not report usage. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
