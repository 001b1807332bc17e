/**
 * The semantic tier's index on the Redis Query Engine: HNSW (or FLAT),
 * COSINE, FLOAT32. The index name carries the embedding model and dimension,
 * and its FILTER admits only entries written with that model and dimension,
 * so a change of EMBEDDING_MODEL starts a new index and never compares
 * vectors of two models.
 *
 * Similarity: COSINE distance d is 1 - cos θ, in [0, 2]; we report and
 * threshold cos θ = 1 - d. (The Python design's RedisVL score was 1 - d/2,
 * in [0, 1]: its threshold s maps to ours as 2s - 1; 0.95 there is 0.90 here.)
 *
 * All KNN queries of a batch go in one pipeline: one round trip.
 */
import type Redis from "ioredis";
import { errorMessage } from "../errors";

export interface KnnQuery {
  readonly vector: Float32Array;
  readonly scope: string;
  readonly taskType: string;
}

export interface KnnMatch {
  readonly key: string;
  /** Cosine similarity, 1 - COSINE distance. */
  readonly similarity: number;
  readonly query: string;
  readonly response: string;
  readonly metadata: string;
  readonly model: string;
}

export interface VectorIndexStatus {
  readonly available: boolean;
  readonly name: string;
  readonly algorithm: "HNSW" | "FLAT";
  readonly dim: number;
  /** Why it is unavailable. */
  readonly reason?: string;
}

export interface VectorIndex {
  /** The TAG value that entries carry in `embedding_model`, which the index FILTER matches. */
  readonly modelTag: string;
  /** Creates the index unless it exists; false (and a reason in status) when the Query Engine cannot. */
  ensure(): Promise<boolean>;
  status(): VectorIndexStatus;
  /** For each query, up to k nearest entries of its scope and task type, nearest first. */
  knn(queries: readonly KnnQuery[], k: number): Promise<KnnMatch[][]>;
  /** Removes the index (not the entries). */
  drop(): Promise<void>;
}

/** Only letters, digits and . _ - survive in a name or TAG value: nothing to escape in queries. */
const safe = (value: string) => value.replace(/[^a-zA-Z0-9._-]/g, "_");

export function createVectorIndex(options: {
  redis: Redis;
  /** Entry key prefix, with its trailing colon. */
  keyPrefix: string;
  /** Index name prefix, e.g. the cache prefix. */
  namePrefix: string;
  embeddingModel: string;
  dim: number;
  algorithm: "HNSW" | "FLAT";
  /** HNSW candidates examined per query: higher finds the true nearest more often, slower. */
  efRuntime?: number;
  /** Query Engine hybrid policy for the filtered KNN; unset lets it choose per query. */
  hybridPolicy?: "BATCHES" | "ADHOC_BF";
}): VectorIndex {
  const { redis, keyPrefix, namePrefix, embeddingModel, dim, algorithm, efRuntime, hybridPolicy } = options;
  const knnOptions = [
    ...(algorithm === "HNSW" && efRuntime ? [`EF_RUNTIME ${efRuntime}`] : []),
    ...(hybridPolicy ? [`HYBRID_POLICY ${hybridPolicy}`] : []),
  ].join(" ");
  const modelTag = `${safe(embeddingModel)}:${dim}`;
  const name = `${namePrefix}-idx:${safe(embeddingModel)}:${dim}`;
  let available = false;
  let reason: string | undefined = "not created yet";

  const ensure = async () => {
    try {
      await redis.call("FT.INFO", name);
      available = true;
      reason = undefined;
      return true;
    } catch (error) {
      if (!/unknown index name|no such index/i.test(errorMessage(error))) {
        available = false;
        reason = `the Query Engine does not answer: ${errorMessage(error)}`;
        return false;
      }
    }
    const params =
      algorithm === "HNSW"
        ? ["TYPE", "FLOAT32", "DIM", dim, "DISTANCE_METRIC", "COSINE", "M", 16, "EF_CONSTRUCTION", 200]
        : ["TYPE", "FLOAT32", "DIM", dim, "DISTANCE_METRIC", "COSINE"];
    try {
      await redis.call(
        "FT.CREATE",
        name,
        "ON",
        "HASH",
        "PREFIX",
        "1",
        keyPrefix,
        "FILTER",
        `@embedding_model=='${modelTag}'`,
        "SCHEMA",
        "task_type",
        "TAG",
        "scope",
        "TAG",
        "embedding",
        "VECTOR",
        algorithm,
        String(params.length),
        ...params.map(String),
      );
    } catch (error) {
      // Two processes starting together: the other one created it.
      if (!/index already exists/i.test(errorMessage(error))) {
        available = false;
        reason = errorMessage(error);
        return false;
      }
    }
    available = true;
    reason = undefined;
    return true;
  };

  return {
    modelTag,
    ensure,
    status: () => ({ available, name, algorithm, dim, ...(reason ? { reason } : {}) }),
    async knn(queries, k) {
      const pipeline = redis.pipeline();
      for (const query of queries) {
        const vector = Buffer.from(query.vector.buffer, query.vector.byteOffset, query.vector.byteLength);
        pipeline.call(
          "FT.SEARCH",
          name,
          `(@task_type:{${safe(query.taskType)}} @scope:{${safe(query.scope)}})=>[KNN ${k} @embedding $vec ${knnOptions} AS distance]`,
          "PARAMS",
          "2",
          "vec",
          vector,
          "RETURN",
          "5",
          "distance",
          "query",
          "response",
          "metadata",
          "model",
          "SORTBY",
          "distance",
          "LIMIT",
          "0",
          String(k),
          "DIALECT",
          "2",
        );
      }
      const replies = (await pipeline.exec()) ?? [];
      return replies.map(([error, reply]) => {
        if (error) {
          if (/no such index|unknown index/i.test(errorMessage(error))) {
            available = false;
            reason = "the index disappeared (FLUSHALL or FT.DROPINDEX?); it is recreated on the next store";
          }
          throw error;
        }
        return parseSearchReply(reply as unknown[]);
      });
    },
    async drop() {
      await redis.call("FT.DROPINDEX", name).catch(() => {});
      available = false;
      reason = "dropped";
    },
  };
}

/** RESP2 FT.SEARCH: [total, key, [field, value, ...], key, [...], ...]. */
function parseSearchReply(reply: unknown[]): KnnMatch[] {
  const matches: KnnMatch[] = [];
  for (let i = 1; i + 1 < reply.length; i += 2) {
    const fields = reply[i + 1] as string[];
    const record: Record<string, string> = {};
    for (let j = 0; j + 1 < fields.length; j += 2) record[fields[j] as string] = fields[j + 1] as string;
    if (record.response === undefined || record.distance === undefined) continue; // expired between index and read
    matches.push({
      key: reply[i] as string,
      similarity: 1 - Number(record.distance),
      query: record.query ?? "",
      response: record.response,
      metadata: record.metadata ?? "{}",
      model: record.model ?? "",
    });
  }
  return matches;
}
