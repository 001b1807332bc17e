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
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface ChatResult {
  text: string;
  model: string;
  finishReason: string;
  usage: TokenUsage;
}

export interface LlmProvider {
  readonly name: string;
  readonly embeddingModel: string;
  readonly embeddingDim: number;
  chat(request: ChatRequest): Promise<ChatResult>;
  /** One vector per text, in order, L2-normalised, of embeddingDim floats. */
  embed(texts: readonly string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
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
