/**
 * The semantic cache in front of the LLM (admission in cache-admission.ts,
 * the cross-process lock in flight-lock.ts). For one request:
 *
 *   1. exact tier: one HMGET of the computed key; a hit costs no embedding.
 *   2. same key already in flight in this process → wait for that answer.
 *   3. semantic tier: embed (micro-batched) → KNN (pipelined), threshold and
 *      false-hit guard.
 *   4. single-flight across processes: SET NX a lock (and re-read the entry,
 *      same round trip); the holder calls the LLM and stores; the others poll
 *      until the entry appears or the lock goes.
 *   5. store on miss, under the admission policy: finish reason `stop`, a
 *      non-empty answer, temperature at most CACHE_MAX_TEMPERATURE; errors
 *      never reach here (compute throws).
 *
 * The cache never fails a task: a Redis or embeddings error is counted and
 * the request goes to the LLM as if it had missed.
 */

import { errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { ChatResult } from "../llm/provider";
import type { Logger } from "../log";
import { type CacheFailure, createAdmission } from "./cache-admission";
import { answerOf, type CachedAnswer, type CachedMetadata, type CacheEntries, parseMetadata } from "./cache-entries";
import { type CacheKeys, type CacheRequest, exactHash, scopeOf } from "./cache-key";
import { computeUnderLease, followLeader } from "./flight-lock";
import { CacheStageError, type SemanticLookup } from "./semantic-lookup";
import type { VectorIndex } from "./vector-index";

export type CacheTier = "exact" | "semantic" | "single_flight";

export interface CacheHit {
  readonly tier: CacheTier;
  /** The entry served (`{hash}:{task_type}`), for DELETE /cache/:id. */
  readonly id: string;
  readonly similarity?: number;
  readonly answer: CachedAnswer;
}

export type Resolution =
  | { readonly fromCache: true; readonly hit: CacheHit }
  | { readonly fromCache: false; readonly answer: ChatResult; readonly storedId?: string };

export interface ResolveOptions {
  /** false: neither look up nor store (the request's use_cache). */
  readonly useCache: boolean;
  /** true: skip the lookup, call the LLM, replace the entry. */
  readonly refresh: boolean;
}

export interface SemanticCache {
  resolve(request: CacheRequest, options: ResolveOptions, compute: () => Promise<ChatResult>): Promise<Resolution>;
}

export interface SemanticCacheDeps {
  entries: CacheEntries;
  keys: CacheKeys;
  index: VectorIndex;
  semantic: SemanticLookup;
  bus: EventBus;
  logger: Logger;
  threshold: (taskType: string) => number;
  maxTemperature: number;
  extendTtlOnHit: boolean;
  /**
   * The single-flight lock's lease, ms: its holder renews it every third of
   * it, so a crashed leader (kill -9) holds up the others at most this long.
   */
  lockLeaseMs: number;
  /** The longest a follower waits for a live leader: the job timeout and a margin. */
  maxFollowMs: number;
  prices: { input: number; output: number };
}

export function createSemanticCache(deps: SemanticCacheDeps): SemanticCache {
  const { entries, keys, index, semantic, bus, logger, threshold, maxTemperature, extendTtlOnHit } = deps;
  const { lockLeaseMs, maxFollowMs } = deps;
  const flights = new Map<string, Promise<Resolution>>();

  const savedNanoUsd = (answer: CachedAnswer) =>
    (answer.metadata.prompt_tokens * deps.prices.input + answer.metadata.completion_tokens * deps.prices.output) * 1000;

  const hit = (
    tier: CacheTier,
    id: string,
    answer: CachedAnswer,
    started: number,
    roundTrips: number,
    similarity?: number,
  ): Resolution => {
    bus.emit("cache.lookup", {
      tier,
      ms: performance.now() - started,
      round_trips: roundTrips,
      saved_nano_usd: savedNanoUsd(answer),
      ...(similarity === undefined ? {} : { similarity }),
    });
    return { fromCache: true, hit: { tier, id, answer, ...(similarity === undefined ? {} : { similarity }) } };
  };

  const failed: CacheFailure = (stage, error, context) => {
    bus.emit("cache.error", { stage });
    logger.warn({ ...context, stage, error: errorMessage(error) }, "semantic cache error; going on without it");
  };

  const offer = createAdmission({ entries, keys, index, bus, failed });

  const lead = async (
    request: CacheRequest,
    scope: string,
    hash: string,
    started: number,
    compute: () => Promise<ChatResult>,
  ): Promise<Resolution> => {
    const key = keys.entry(hash, request.taskType);
    const id = keys.entryId(hash, request.taskType);
    const context = { task_type: request.taskType };
    let roundTrips = 1;
    let vector: Float32Array | undefined;

    if (index.status().available) {
      try {
        const result = await semantic.lookup({
          text: request.text,
          scope,
          taskType: request.taskType,
          threshold: threshold(request.taskType),
        });
        vector = result.vector;
        roundTrips += result.roundTrips;
        if (result.match) {
          if (extendTtlOnHit) await entries.touch(result.match.key).catch(() => {});
          const matchId = result.match.key.slice(keys.indexPrefix.length);
          const answer: CachedAnswer = {
            query: result.match.query,
            response: result.match.response,
            model: result.match.model,
            metadata: parseMetadataSafe(result.match.metadata),
          };
          return hit("semantic", matchId, answer, started, roundTrips, result.match.similarity);
        }
      } catch (error) {
        failed(error instanceof CacheStageError ? error.stage : "lookup", error, context);
      }
    }

    const lock = keys.lock(hash);
    const token = crypto.randomUUID();
    for (let attempt = 0; attempt < 3; attempt++) {
      let locked: boolean;
      try {
        const state = await entries.lockOrRead(key, lock, token, lockLeaseMs);
        roundTrips += 1;
        if (state.entry) {
          if (state.locked) await entries.unlock(lock, token).catch(() => {});
          return hit("exact", id, state.entry, started, roundTrips);
        }
        locked = state.locked;
        if (!locked) {
          bus.emit("cache.single_flight", { role: "follower" });
          const entry = await followLeader(entries, key, lock, maxFollowMs);
          if (entry) return hit("single_flight", id, entry, started, roundTrips);
          continue;
        }
      } catch (error) {
        failed("lock", error, context);
        break;
      }
      bus.emit("cache.single_flight", { role: "leader" });
      bus.emit("cache.lookup", { tier: "miss", ms: performance.now() - started, round_trips: roundTrips });
      const answer = await computeUnderLease(entries, lock, token, lockLeaseMs, compute);
      const storedId = await offer({ request, scope, hash, answer, vector, lock: { lock, token } });
      return { fromCache: false, answer, ...(storedId ? { storedId } : {}) };
    }
    // The lock kept changing hands, or Redis failed: answer without the single flight rather than not at all.
    bus.emit("cache.lookup", { tier: "miss", ms: performance.now() - started, round_trips: roundTrips });
    const answer = await compute();
    const storedId = await offer({ request, scope, hash, answer, vector });
    return { fromCache: false, answer, ...(storedId ? { storedId } : {}) };
  };

  /** The vector of a refreshed entry, so it stays findable by the semantic tier. */
  const embedQuietly = async (text: string): Promise<Float32Array | undefined> => {
    if (!index.status().available) return undefined;
    try {
      return await semantic.embed(text);
    } catch (error) {
      failed("embed", error, {});
      return undefined;
    }
  };

  return {
    async resolve(request, options, compute) {
      const started = performance.now();
      if (!options.useCache || request.temperature > maxTemperature) {
        bus.emit("cache.lookup", { tier: "bypass", ms: 0, round_trips: 0 });
        return { fromCache: false, answer: await compute() };
      }
      const scope = scopeOf(request);
      const hash = exactHash(request, scope);
      if (options.refresh) {
        bus.emit("cache.lookup", { tier: "bypass", ms: 0, round_trips: 0 });
        const answer = await compute();
        const storedId = await offer({ request, scope, hash, answer, vector: await embedQuietly(request.text) });
        return { fromCache: false, answer, ...(storedId ? { storedId } : {}) };
      }
      try {
        const entry = await entries.get(keys.entry(hash, request.taskType), extendTtlOnHit);
        if (entry) return hit("exact", keys.entryId(hash, request.taskType), entry, started, 1);
      } catch (error) {
        failed("lookup", error, { task_type: request.taskType });
        bus.emit("cache.lookup", { tier: "error", ms: performance.now() - started, round_trips: 1 });
        return { fromCache: false, answer: await compute() };
      }

      const inFlight = flights.get(hash);
      if (inFlight) {
        bus.emit("cache.single_flight", { role: "follower" });
        const outcome = await inFlight;
        const answer = outcome.fromCache ? outcome.hit.answer : answerOf(request.text, outcome.answer);
        const similarity = outcome.fromCache ? outcome.hit.similarity : undefined;
        const tier = outcome.fromCache ? outcome.hit.tier : "single_flight";
        const id = outcome.fromCache ? outcome.hit.id : (outcome.storedId ?? keys.entryId(hash, request.taskType));
        return hit(tier, id, answer, started, 1, similarity);
      }
      const flight = lead(request, scope, hash, started, compute);
      flights.set(hash, flight);
      try {
        return await flight;
      } finally {
        flights.delete(hash);
      }
    },
  };
}

function parseMetadataSafe(json: string): CachedMetadata {
  try {
    return parseMetadata(json);
  } catch {
    return { tokens_used: 0, prompt_tokens: 0, completion_tokens: 0, created_at: 0 };
  }
}
