/**
 * Cache entries in Redis: the exact-tier read, the write, the single-flight
 * lock, and deletion. One hash per entry (ARCHITECTURE.md §7):
 *
 *   {prefix}:{hash}:{task_type}   query, response, metadata (JSON), model,
 *                                 task_type, scope (TAGs), embedding_model,
 *                                 embedding (FLOAT32 blob), created_at
 *   {prefix}-lock:{hash}          single-flight lock: a token, with a short lease
 *                                 that its holder renews while it computes
 *
 * Round trips: exact read 1; lock + re-read 1; store + unlock 1.
 */
import type Redis from "ioredis";
import type { ChatResult } from "../llm/provider";
import { RELEASE_LEASE, releaseLease, renewLease } from "../redis/lease";
import { execChecked } from "../redis/script";
import type { CacheKeys } from "./cache-key";
import type { KnnMatch } from "./vector-index";

export interface CachedAnswer {
  readonly query: string;
  readonly response: string;
  readonly model: string;
  readonly metadata: CachedMetadata;
}

export interface CachedMetadata {
  readonly tokens_used: number;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly created_at: number;
  /** The provider that wrote the answer (issue 17); absent in entries of before. */
  readonly provider?: string;
}

export interface StoredEntry extends CachedAnswer {
  readonly taskType: string;
  readonly scope: string;
  /** The index FILTER's tag; absent with the vector, when the semantic tier is off. */
  readonly embeddingModel?: string;
  readonly embedding?: Float32Array;
}

const FIELDS = ["query", "response", "model", "metadata"] as const;

/** A fresh LLM answer in the cache's shape (what a follower in the same process is served). */
export function answerOf(query: string, answer: ChatResult): CachedAnswer {
  return {
    query,
    response: answer.text,
    model: answer.model,
    metadata: {
      tokens_used: answer.usage.totalTokens,
      prompt_tokens: answer.usage.promptTokens,
      completion_tokens: answer.usage.completionTokens,
      created_at: Date.now(),
      ...(answer.provider ? { provider: answer.provider } : {}),
    },
  };
}

export function parseMetadata(json: string): CachedMetadata {
  const value = JSON.parse(json) as Partial<CachedMetadata>;
  return {
    tokens_used: Number(value.tokens_used ?? 0),
    prompt_tokens: Number(value.prompt_tokens ?? 0),
    completion_tokens: Number(value.completion_tokens ?? 0),
    created_at: Number(value.created_at ?? 0),
    ...(typeof value.provider === "string" ? { provider: value.provider } : {}),
  };
}

/** A semantic match in the cache's shape; unreadable metadata counts as no tokens (a hit all the same). */
export function answerOfMatch(match: KnnMatch): CachedAnswer {
  let metadata: CachedMetadata;
  try {
    metadata = parseMetadata(match.metadata);
  } catch {
    metadata = { tokens_used: 0, prompt_tokens: 0, completion_tokens: 0, created_at: 0 };
  }
  return { query: match.query, response: match.response, model: match.model, metadata };
}

function toAnswer(values: (string | null)[]): CachedAnswer | undefined {
  const [query, response, model, metadata] = values;
  if (response === null || response === undefined || metadata === null || metadata === undefined) return undefined;
  return { query: query ?? "", response, model: model ?? "", metadata: parseMetadata(metadata) };
}

export interface CacheEntries {
  /** The exact tier: one HMGET (plus EXPIRE in the same pipeline when hits extend the TTL). */
  get(key: string, extendTtl?: boolean): Promise<CachedAnswer | undefined>;
  /** SET NX of the lock and a re-read of the entry, one round trip. */
  lockOrRead(
    key: string,
    lock: string,
    token: string,
    ttlMs: number,
  ): Promise<{ locked: boolean; entry?: CachedAnswer }>;
  /** Whether the entry exists now, and whether its lock is still held: one round trip. */
  peek(key: string, lock: string): Promise<{ entry?: CachedAnswer; locked: boolean }>;
  /** HSET + EXPIRE (+ unlock when given), one round trip. */
  store(key: string, entry: StoredEntry, unlock?: { lock: string; token: string }): Promise<void>;
  unlock(lock: string, token: string): Promise<void>;
  /** Extends a held lock's lease; false when it is no longer ours. */
  renew(lock: string, token: string, leaseMs: number): Promise<boolean>;
  /** Extends an entry's age limit after a semantic hit, when configured. */
  touch(key: string): Promise<void>;
  remove(key: string): Promise<boolean>;
  /** Deletes every entry (or a task type's): SCAN + UNLINK in batches. Returns how many. */
  clear(taskType?: string): Promise<number>;
}

export function createCacheEntries(options: { redis: Redis; keys: CacheKeys; ttlSeconds: number }): CacheEntries {
  const { redis, keys, ttlSeconds } = options;

  return {
    async get(key, extendTtl = false) {
      if (!extendTtl) return toAnswer(await redis.hmget(key, ...FIELDS));
      const [[error, values] = [null, []]] =
        (await redis
          .pipeline()
          .hmget(key, ...FIELDS)
          .expire(key, ttlSeconds)
          .exec()) ?? [];
      if (error) throw error;
      return toAnswer(values as (string | null)[]);
    },

    async lockOrRead(key, lock, token, ttlMs) {
      const [set, fields] = await execChecked(
        redis
          .pipeline()
          .set(lock, token, "PX", ttlMs, "NX")
          .hmget(key, ...FIELDS),
      );
      const entry = toAnswer(fields as (string | null)[]);
      return { locked: set === "OK", ...(entry ? { entry } : {}) };
    },

    async peek(key, lock) {
      const [fields, locked] = await execChecked(
        redis
          .pipeline()
          .hmget(key, ...FIELDS)
          .exists(lock),
      );
      const entry = toAnswer(fields as (string | null)[]);
      return { locked: locked === 1, ...(entry ? { entry } : {}) };
    },

    async store(key, entry, unlock) {
      const fields: Record<string, string | Buffer> = {
        query: entry.query,
        response: entry.response,
        model: entry.model,
        metadata: JSON.stringify(entry.metadata),
        task_type: entry.taskType,
        scope: entry.scope,
        created_at: String(entry.metadata.created_at),
      };
      if (entry.embedding && entry.embeddingModel) {
        fields.embedding_model = entry.embeddingModel;
        fields.embedding = Buffer.from(entry.embedding.buffer, entry.embedding.byteOffset, entry.embedding.byteLength);
      }
      // DEL first: a refresh replaces the whole entry, never leaves a field of the old one.
      const pipeline = redis.multi().del(key).hset(key, fields).expire(key, ttlSeconds);
      // The lock is released only if it is still ours (redis/lease.ts).
      if (unlock) RELEASE_LEASE.queue(redis, pipeline, [unlock.lock], [unlock.token]);
      await execChecked(pipeline);
    },

    async unlock(lock, token) {
      await releaseLease(redis, lock, token);
    },

    async renew(lock, token, leaseMs) {
      return renewLease(redis, lock, token, leaseMs);
    },

    async touch(key) {
      await redis.expire(key, ttlSeconds);
    },

    async remove(key) {
      return (await redis.unlink(key)) === 1;
    },

    async clear(taskType) {
      const pattern = keys.entryPattern(taskType);
      let cursor = "0";
      let deleted = 0;
      do {
        const [next, found] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        cursor = next;
        if (found.length > 0) deleted += await redis.unlink(...found);
      } while (cursor !== "0");
      return deleted;
    },
  };
}
