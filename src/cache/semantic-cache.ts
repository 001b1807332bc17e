/**
 * The semantic cache in front of the LLM (admission in cache-admission.ts,
 * the cross-process lock in flight-lock.ts). For one request, in named steps:
 *
 *   1. readExact, the exact tier: one HMGET of the computed key; a hit costs
 *      no embedding.
 *   2. same key already in flight in this process → followInProcess: wait for
 *      that answer.
 *   3. lookUpSemantic, the semantic tier: embed (micro-batched) → KNN
 *      (pipelined), threshold and false-hit guard.
 *   4. takeLead, single flight across processes: SET NX a lock (and re-read
 *      the entry, same round trip); the holder calls the LLM and stores; the
 *      others poll until the entry appears or the lock goes.
 *   5. answerAndOffer on a miss (and on a refresh, and when the lock failed):
 *      compute, then store under the admission policy: finish reason `stop`,
 *      a non-empty answer, temperature at most CACHE_MAX_TEMPERATURE; errors
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
import { answerOf, answerOfMatch, type CachedAnswer, type CacheEntries } from "./cache-entries";
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

/** One request's lookup: where its entry lives, and what it has cost so far (for `cache.lookup`). */
interface Lookup {
  readonly request: CacheRequest;
  readonly scope: string;
  readonly hash: string;
  /** The entry's key, and its id (`{hash}:{task_type}`). */
  readonly key: string;
  readonly id: string;
  readonly started: number;
  roundTrips: number;
}

type FlightLock = { readonly lock: string; readonly token: string };

export function createSemanticCache(deps: SemanticCacheDeps): SemanticCache {
  const { entries, keys, index, semantic, bus, logger, threshold, maxTemperature, extendTtlOnHit } = deps;
  const { lockLeaseMs, maxFollowMs } = deps;
  const flights = new Map<string, Promise<Resolution>>();

  const savedNanoUsd = (answer: CachedAnswer) =>
    (answer.metadata.prompt_tokens * deps.prices.input + answer.metadata.completion_tokens * deps.prices.output) * 1000;

  const hit = (lookup: Lookup, tier: CacheTier, id: string, answer: CachedAnswer, similarity?: number): Resolution => {
    bus.emit("cache.lookup", {
      tier,
      ms: performance.now() - lookup.started,
      round_trips: lookup.roundTrips,
      saved_nano_usd: savedNanoUsd(answer),
      ...(similarity === undefined ? {} : { similarity }),
    });
    return { fromCache: true, hit: { tier, id, answer, ...(similarity === undefined ? {} : { similarity }) } };
  };

  /** A lookup that served nothing; a bypass looked nothing up, so it costs nothing. */
  const missed = (tier: "miss" | "error" | "bypass", lookup?: Lookup) =>
    bus.emit("cache.lookup", {
      tier,
      ms: lookup ? performance.now() - lookup.started : 0,
      round_trips: lookup?.roundTrips ?? 0,
    });

  const failed: CacheFailure = (stage, error, context) => {
    bus.emit("cache.error", { stage });
    logger.warn({ ...context, stage, error: errorMessage(error) }, "semantic cache error; going on without it");
  };

  const offer = createAdmission({ entries, keys, index, bus, failed });

  const answerFresh = async (compute: () => Promise<ChatResult>): Promise<Resolution> => ({
    fromCache: false,
    answer: await compute(),
  });

  /**
   * Compute (renewing the single-flight lock's lease while it runs, when there
   * is one), offer the answer for storage, return it. The vector is asked for
   * after the answer: a refresh embeds only then.
   */
  const answerAndOffer = async (
    lookup: Lookup,
    compute: () => Promise<ChatResult>,
    vectorOf: () => Promise<Float32Array | undefined> | Float32Array | undefined,
    lock?: FlightLock,
  ): Promise<Resolution> => {
    const answer = lock
      ? await computeUnderLease(entries, lock.lock, lock.token, lockLeaseMs, compute)
      : await compute();
    const { request, scope, hash } = lookup;
    const storedId = await offer({ request, scope, hash, answer, vector: await vectorOf(), lock });
    return { fromCache: false, answer, ...(storedId ? { storedId } : {}) };
  };

  /** The exact tier's hit, undefined on a miss, or "unavailable" when Redis failed (counted). */
  const readExact = async (lookup: Lookup): Promise<Resolution | undefined | "unavailable"> => {
    try {
      const entry = await entries.get(lookup.key, extendTtlOnHit);
      return entry ? hit(lookup, "exact", lookup.id, entry) : undefined;
    } catch (error) {
      failed("lookup", error, { task_type: lookup.request.taskType });
      missed("error", lookup);
      return "unavailable";
    }
  };

  /** The outcome of this process's leader for the same key, served as a hit. */
  const followInProcess = async (lookup: Lookup, flight: Promise<Resolution>): Promise<Resolution> => {
    bus.emit("cache.single_flight", { role: "follower" });
    const outcome = await flight;
    if (outcome.fromCache) {
      const { tier, id, answer, similarity } = outcome.hit;
      return hit(lookup, tier, id, answer, similarity);
    }
    const answer = answerOf(lookup.request.text, outcome.answer);
    return hit(lookup, "single_flight", outcome.storedId ?? lookup.id, answer);
  };

  /** A semantic hit, or the request's vector (when it could be computed) for storing the answer of a miss. */
  const lookUpSemantic = async (lookup: Lookup): Promise<{ hit?: Resolution; vector?: Float32Array }> => {
    if (!index.status().available) return {};
    const { text, taskType } = lookup.request;
    try {
      const result = await semantic.lookup({ text, scope: lookup.scope, taskType, threshold: threshold(taskType) });
      lookup.roundTrips += result.roundTrips;
      const { match } = result;
      if (!match) return { vector: result.vector };
      if (extendTtlOnHit) await entries.touch(match.key).catch(() => {});
      const id = match.key.slice(keys.indexPrefix.length);
      return { hit: hit(lookup, "semantic", id, answerOfMatch(match), match.similarity) };
    } catch (error) {
      failed(error instanceof CacheStageError ? error.stage : "lookup", error, { task_type: taskType });
      return {};
    }
  };

  /**
   * The single flight across processes: the lock to lead under, or a hit (the
   * entry appeared, or another process's leader stored it); no lock when it
   * kept changing hands or Redis failed (counted).
   */
  const takeLead = async (lookup: Lookup): Promise<{ hit: Resolution } | { lock?: FlightLock }> => {
    const lock = { lock: keys.lock(lookup.hash), token: crypto.randomUUID() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const state = await entries.lockOrRead(lookup.key, lock.lock, lock.token, lockLeaseMs);
        lookup.roundTrips += 1;
        if (state.entry) {
          if (state.locked) await entries.unlock(lock.lock, lock.token).catch(() => {});
          return { hit: hit(lookup, "exact", lookup.id, state.entry) };
        }
        if (state.locked) return { lock };
        bus.emit("cache.single_flight", { role: "follower" });
        const entry = await followLeader(entries, lookup.key, lock.lock, maxFollowMs);
        if (entry) return { hit: hit(lookup, "single_flight", lookup.id, entry) };
      } catch (error) {
        failed("lock", error, { task_type: lookup.request.taskType });
        return {};
      }
    }
    return {};
  };

  /** After an exact miss: the semantic tier, then the single flight across processes, then the LLM. */
  const lead = async (lookup: Lookup, compute: () => Promise<ChatResult>): Promise<Resolution> => {
    const { hit: semanticHit, vector } = await lookUpSemantic(lookup);
    if (semanticHit) return semanticHit;
    const flight = await takeLead(lookup);
    if ("hit" in flight) return flight.hit;
    // Without the lock, answer without the single flight rather than not at all.
    if (flight.lock) bus.emit("cache.single_flight", { role: "leader" });
    missed("miss", lookup);
    return answerAndOffer(lookup, compute, () => vector, flight.lock);
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
        missed("bypass");
        return answerFresh(compute);
      }
      const scope = scopeOf(request);
      const hash = exactHash(request, scope);
      const [key, id] = [keys.entry(hash, request.taskType), keys.entryId(hash, request.taskType)];
      // One round trip counted from the start: the exact tier's read.
      const lookup: Lookup = { request, scope, hash, key, id, started, roundTrips: 1 };
      if (options.refresh) {
        missed("bypass");
        return answerAndOffer(lookup, compute, () => embedQuietly(request.text));
      }
      const exact = await readExact(lookup);
      if (exact === "unavailable") return answerFresh(compute);
      if (exact) return exact;

      const inFlight = flights.get(hash);
      if (inFlight) return followInProcess(lookup, inFlight);
      const flight = lead(lookup, compute);
      flights.set(hash, flight);
      try {
        return await flight;
      } finally {
        flights.delete(hash);
      }
    },
  };
}
