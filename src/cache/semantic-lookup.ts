/**
 * The semantic tier of one process: texts are embedded in micro-batches, and
 * the KNN queries of the lookups woken by one embeddings batch go to Redis in
 * one pipeline. A candidate is served only above the task type's similarity
 * threshold and when the false-hit guard accepts it; the nearest candidate
 * that passes wins.
 */
import type { EventBus } from "../events";
import { createBatcher } from "../util/batcher";
import type { EmbedBatcher } from "./embed-batcher";
import { checkSemanticHit } from "./false-hit-guard";
import type { KnnMatch, KnnQuery, VectorIndex } from "./vector-index";

/** Nearest candidates fetched per lookup, so that one refused by the guard does not hide a valid one. */
const CANDIDATES = 3;

/** A failure inside the semantic tier, naming the stage for the cache's error counts. */
export class CacheStageError extends Error {
  constructor(
    readonly stage: "embed" | "knn",
    cause: unknown,
  ) {
    super(`semantic cache ${stage} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "CacheStageError";
  }
}

export interface SemanticLookupResult {
  readonly vector: Float32Array;
  readonly match?: KnnMatch;
  /** Redis round trips this lookup accounts for: 1 / (queries in its pipeline). */
  readonly roundTrips: number;
}

export interface SemanticLookup {
  /** The text's vector alone (through the same batcher and memo). */
  embed(text: string): Promise<Float32Array>;
  lookup(request: { text: string; scope: string; taskType: string; threshold: number }): Promise<SemanticLookupResult>;
}

export function createSemanticLookup(options: {
  embedder: EmbedBatcher;
  index: VectorIndex;
  bus: EventBus;
  falseHitGuard: boolean;
  /** Max KNN queries per pipeline. */
  maxBatch?: number;
}): SemanticLookup {
  const { embedder, index, bus, falseHitGuard, maxBatch = 256 } = options;

  // Window 0: lookups whose embeddings arrived together (one embeddings batch) share one pipeline.
  const knn = createBatcher<KnnQuery, { matches: KnnMatch[]; share: number }>({
    lingerMs: 0,
    maxSize: maxBatch,
    run: async (queries) => {
      const started = performance.now();
      const results = await index.knn(queries, CANDIDATES);
      bus.emit("cache.knn_batch", { queries: queries.length, ms: performance.now() - started });
      return results.map((matches) => ({ matches, share: 1 / queries.length }));
    },
  });

  return {
    embed: (text) => embedder.embed(text),
    async lookup({ text, scope, taskType, threshold }) {
      const vector = await embedder.embed(text).catch((error: unknown) => {
        throw new CacheStageError("embed", error);
      });
      const { matches, share } = await knn.add({ vector, scope, taskType }).catch((error: unknown) => {
        throw new CacheStageError("knn", error);
      });
      for (const match of matches) {
        // Sorted nearest first: once one is below the threshold, all the rest are.
        if (match.similarity < threshold) break;
        if (falseHitGuard) {
          const verdict = checkSemanticHit(text, match.query);
          if (!verdict.ok) {
            bus.emit("cache.guard_refused", { reason: verdict.reason, similarity: match.similarity });
            continue;
          }
        }
        return { vector, match, roundTrips: share };
      }
      return { vector, roundTrips: share };
    },
  };
}
