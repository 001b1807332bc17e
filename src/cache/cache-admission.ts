/**
 * What goes into the cache after a miss: only an answer the model finished
 * (`finish_reason: stop`) and that is not empty; errors never reach here
 * (compute throws). An answer of a fallback model is not stored either: the
 * entry's scope names the route's model, and answers of different models
 * stay apart (issue 17 §3). The entry is stored with its vector when the semantic
 * index is available, and the single-flight lock is released in the same
 * round trip. A Redis error is counted, never thrown: the task has its
 * answer already.
 */
import type { EventBus } from "../events";
import type { ChatResult } from "../llm/provider";
import { answerOf, type CacheEntries } from "./cache-entries";
import type { CacheKeys, CacheRequest } from "./cache-key";
import type { VectorIndex } from "./vector-index";

const ADMITTED_FINISH = "stop";
/** An index lost to FLUSHALL or FT.DROPINDEX is re-created on a later store, at most this often. */
const ENSURE_INDEX_EVERY_MS = 30_000;

export type CacheFailure = (
  stage: "lookup" | "embed" | "knn" | "store" | "lock",
  error: unknown,
  context: object,
) => void;

export interface Offer {
  request: CacheRequest;
  scope: string;
  hash: string;
  answer: ChatResult;
  vector: Float32Array | undefined;
  lock?: { lock: string; token: string };
}

/** Returns a function that stores an admitted answer and resolves to its entry id, or to undefined with the reason counted. */
export function createAdmission(deps: {
  entries: CacheEntries;
  keys: CacheKeys;
  index: VectorIndex;
  bus: EventBus;
  failed: CacheFailure;
}): (offer: Offer) => Promise<string | undefined> {
  const { entries, keys, index, bus, failed } = deps;
  let lastEnsure = 0;

  return async ({ request, scope, hash, answer, vector, lock }) => {
    const reason =
      answer.finishReason !== ADMITTED_FINISH
        ? `finish_reason ${answer.finishReason}`
        : answer.text.trim() === ""
          ? "empty answer"
          : answer.fallback
            ? "fallback model"
            : undefined;
    try {
      if (reason) {
        bus.emit("cache.store", { stored: false, reason });
        if (lock) await entries.unlock(lock.lock, lock.token);
        return undefined;
      }
      if (!index.status().available && Date.now() - lastEnsure > ENSURE_INDEX_EVERY_MS) {
        lastEnsure = Date.now();
        await index.ensure();
      }
      const semanticOn = index.status().available && vector !== undefined;
      await entries.store(
        keys.entry(hash, request.taskType),
        {
          ...answerOf(request.text, answer),
          taskType: request.taskType,
          scope,
          ...(semanticOn ? { embedding: vector, embeddingModel: index.modelTag } : {}),
        },
        lock,
      );
      bus.emit("cache.store", { stored: true, reason: semanticOn ? "exact and semantic" : "exact only" });
      return keys.entryId(hash, request.taskType);
    } catch (error) {
      failed("store", error, { task_type: request.taskType });
      return undefined;
    }
  };
}
