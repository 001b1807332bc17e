/**
 * Embeddings for the semantic tier, coalesced: concurrent requests of a
 * process within a few ms become one embeddings call with array input (one
 * HTTP round trip and one rate-limit slot instead of N), identical texts are
 * embedded once, and recent embeddings are reused from memory (a retried or
 * repeated text costs nothing).
 */
import type { EventBus } from "../events";
import { type Embedder, estimateTokens } from "../llm/provider";
import { createBatcher } from "../util/batcher";

export interface EmbedBatcher {
  embed(text: string): Promise<Float32Array>;
}

export interface EmbedBatcherOptions {
  provider: Pick<Embedder, "name" | "embeddingModel" | "embed">;
  bus: EventBus;
  /** How long the first text of a batch waits for company, ms. */
  windowMs: number;
  /** Texts per embeddings call at most. */
  maxSize: number;
  /** Recent embeddings kept (LRU); 0 disables the memo. */
  memoSize: number;
  /** USD per million embedding tokens, for the cost the cache's savings are net of. */
  pricePerMTok?: number;
  /** One embeddings call may take this long before its callers fail (and go to the LLM without the cache). */
  timeoutMs?: number;
}

export function createEmbedBatcher(options: EmbedBatcherOptions): EmbedBatcher {
  const { provider, bus, windowMs, maxSize, memoSize, timeoutMs = 10_000, pricePerMTok = 0 } = options;
  // A Map iterates in insertion order: deleting and re-setting on use makes it an LRU.
  const memo = new Map<string, Float32Array>();
  const remember = (text: string, vector: Float32Array) => {
    if (memoSize === 0) return;
    memo.delete(text);
    memo.set(text, vector);
    if (memo.size > memoSize) memo.delete(memo.keys().next().value as string);
  };
  const inFlight = new Map<string, Promise<Float32Array>>();

  const batcher = createBatcher<string, Float32Array>({
    lingerMs: windowMs,
    maxSize,
    run: async (texts) => {
      const started = performance.now();
      const vectors = await provider.embed(texts, { signal: AbortSignal.timeout(timeoutMs) });
      const tokens = texts.reduce((sum, text) => sum + estimateTokens(text), 0);
      bus.emit("llm.embed", {
        provider: provider.name,
        model: provider.embeddingModel,
        ms: performance.now() - started,
        inputs: texts.length,
        tokens,
        cost_nano_usd: tokens * pricePerMTok * 1000,
      });
      return vectors;
    },
  });

  return {
    embed(text) {
      const known = memo.get(text);
      if (known) {
        remember(text, known);
        return Promise.resolve(known);
      }
      // The same text asked twice before its batch returns is one input of one call.
      const pending = inFlight.get(text);
      if (pending) return pending;
      const promise = batcher.add(text).then(
        (vector) => {
          inFlight.delete(text);
          remember(text, vector);
          return vector;
        },
        (error: unknown) => {
          inFlight.delete(text);
          throw error;
        },
      );
      inFlight.set(text, promise);
      return promise;
    },
  };
}
