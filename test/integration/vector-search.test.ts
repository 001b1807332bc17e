/**
 * The Redis Query Engine features the semantic cache relies on: an HNSW
 * FLOAT32 COSINE index over hashes, and KNN FT.SEARCH with a TAG filter.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { RedisClient } from "../../src/redis/client";
import { hasVectorSearch } from "../../tools/redis-admin";
import { deleteByPrefix, requireRedis, uniquePrefix } from "../helpers/services";

const DIM = 8;
let redis: RedisClient;
const prefix = `${uniquePrefix("vec")}:`;
const index = `${prefix}idx`;

function vector(values: number[]): Buffer {
  const padded = Float32Array.from({ length: DIM }, (_, i) => values[i] ?? 0);
  return Buffer.from(padded.buffer);
}

function cosine(a: number[], b: number[]): number {
  const dot = a.reduce((sum, x, i) => sum + x * (b[i] ?? 0), 0);
  const norm = (v: number[]) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
  return dot / (norm(a) * norm(b));
}

/** FT.SEARCH with DIALECT 2 answers [total, key, [field, value, ...], key, [...], ...]. */
function parseSearch(reply: unknown[]): { key: string; fields: Record<string, string> }[] {
  const results: { key: string; fields: Record<string, string> }[] = [];
  for (let i = 1; i < reply.length; i += 2) {
    const pairs = reply[i + 1] as string[];
    const fields: Record<string, string> = {};
    for (let j = 0; j < pairs.length; j += 2) fields[String(pairs[j])] = String(pairs[j + 1]);
    results.push({ key: String(reply[i]), fields });
  }
  return results;
}

beforeAll(async () => {
  redis = await requireRedis();
  if (!(await hasVectorSearch(redis))) {
    throw new Error(
      "This Redis has no Query Engine (FT.* commands are unknown). Run `bun run services:status`: " +
        "the Redis started by `bun run services:up` loads the search module.",
    );
  }
  await redis.call(
    "FT.CREATE",
    index,
    "ON",
    "HASH",
    "PREFIX",
    "1",
    `${prefix}doc:`,
    "SCHEMA",
    "task_type",
    "TAG",
    "query",
    "TEXT",
    "embedding",
    "VECTOR",
    "HNSW",
    "6",
    "TYPE",
    "FLOAT32",
    "DIM",
    String(DIM),
    "DISTANCE_METRIC",
    "COSINE",
  );
});

afterAll(async () => {
  await redis.call("FT.DROPINDEX", index, "DD").catch(() => {});
  await deleteByPrefix(redis, prefix);
  await redis.quit();
});

describe("vector search (Redis Query Engine)", () => {
  const docs = {
    positive: { task_type: "sentiment_analysis", query: "I love it", v: [1, 0.1, 0, 0, 0, 0, 0, 0] },
    negative: { task_type: "sentiment_analysis", query: "I hate it", v: [0, 0, 1, 0.2, 0, 0, 0, 0] },
    // The closest vector to the query overall, but of another task type: the TAG filter must exclude it.
    summary: { task_type: "summarization", query: "Summarise: I love it", v: [1, 0.02, 0, 0, 0, 0, 0, 0] },
  };
  const query = [1, 0.03, 0, 0, 0, 0, 0, 0];

  test("a KNN query with a TAG filter returns the nearest neighbour of that tag, with its cosine distance", async () => {
    const pipeline = redis.pipeline();
    for (const [id, doc] of Object.entries(docs)) {
      pipeline.hset(`${prefix}doc:${id}`, { task_type: doc.task_type, query: doc.query, embedding: vector(doc.v) });
    }
    await pipeline.exec();

    const reply = (await redis.call(
      "FT.SEARCH",
      index,
      "(@task_type:{sentiment_analysis})=>[KNN 2 @embedding $vec AS distance]",
      "PARAMS",
      "2",
      "vec",
      vector(query),
      "SORTBY",
      "distance",
      "RETURN",
      "3",
      "query",
      "task_type",
      "distance",
      "DIALECT",
      "2",
    )) as unknown[];
    const results = parseSearch(reply);

    expect(reply[0]).toBe(2);
    expect(results.map((r) => r.key)).toEqual([`${prefix}doc:positive`, `${prefix}doc:negative`]);
    expect(results[0]?.fields.task_type).toBe("sentiment_analysis");
    // COSINE distance is 1 - cosine similarity.
    expect(Number(results[0]?.fields.distance)).toBeCloseTo(1 - cosine(query, docs.positive.v), 5);

    const unfiltered = parseSearch(
      (await redis.call(
        "FT.SEARCH",
        index,
        "*=>[KNN 1 @embedding $vec AS distance]",
        "PARAMS",
        "2",
        "vec",
        vector(query),
        "SORTBY",
        "distance",
        "DIALECT",
        "2",
      )) as unknown[],
    );
    expect(unfiltered[0]?.key).toBe(`${prefix}doc:summary`);
  });

  test("KNN queries sent in one pipeline are answered in order, one reply each", async () => {
    const queries = [docs.positive.v, docs.negative.v, docs.summary.v];
    const pipeline = redis.pipeline();
    for (const v of queries) {
      pipeline.call(
        "FT.SEARCH",
        index,
        "*=>[KNN 1 @embedding $vec AS distance]",
        "PARAMS",
        "2",
        "vec",
        vector(v),
        "RETURN",
        "1",
        "distance",
        "DIALECT",
        "2",
      );
    }
    const replies = (await pipeline.exec()) ?? [];
    expect(replies.map(([error]) => error)).toEqual([null, null, null]);
    expect(replies.map(([, reply]) => parseSearch(reply as unknown[])[0]?.key)).toEqual([
      `${prefix}doc:positive`,
      `${prefix}doc:negative`,
      `${prefix}doc:summary`,
    ]);
  });
});
