/**
 * Cache lookup latency at scale, through the cache's own code paths
 * (cache-entries.ts `get`, vector-index.ts `knn`), embedding call excluded:
 *
 *   exact     one HMGET of an existing entry
 *   semantic  one KNN query (k = 3, TAG filters on task type and scope) alone
 *   batch     64 KNN queries in one pipeline (what the KNN batcher sends), per query
 *   recall    HNSW top-1 / top-3 against FLAT's (exact search) for the same queries
 *
 * Entries are lexical embeddings (src/llm/lexical-embedding.ts) of generated
 * sentences; queries are near-duplicates of stored sentences (half) and new
 * sentences (half). All entries share one scope: the filter keeps everything,
 * which is the heaviest case for the index.
 *
 *   bun bench/cache-lookup.ts [--entries 10000,100000] [--dims 384,1536] [--queries 2000] [--rounds 3]
 *                             [--ef 10,64,128] [--policy BATCHES|ADHOC_BF] [--json out.json]
 *
 * Needs the Query Engine on database 0 (`bun run services:up`). Loads into
 * keys `cachebench-*` and removes them (and its indexes) afterwards.
 */
import { parseArgs } from "node:util";
import { createCacheEntries } from "../src/cache/cache-entries";
import { cacheKeys } from "../src/cache/cache-key";
import { createVectorIndex, type VectorIndex } from "../src/cache/vector-index";
import { loadConfig } from "../src/config";
import { lexicalEmbedding } from "../src/llm/lexical-embedding";
import { createDurationHistogram, type DurationSummary, recordMs, summarize } from "../src/metrics/histogram";
import { connectRedis, type RedisClient } from "../src/redis/client";
import { deleteKeys } from "./measure/delete-keys";
import { median } from "./measure/median";

export interface HnswFigures {
  /** EF_RUNTIME of the queries; the Query Engine's default is 10. */
  ef_runtime: number;
  ms: DurationSummary;
  batch64_ms_per_query: number;
  /** Over every query; far ones (nothing similar stored) included. */
  recall_at_1: number;
  recall_at_3: number;
  /** Over the near-duplicate queries only: the ones a cache must find. */
  near_recall_at_1: number;
}

export interface CacheLookupResult {
  entries: number;
  dim: number;
  load_seconds: number;
  index_seconds: number;
  /** Measuring rounds on the loaded index; latencies are the median of the rounds' figures. */
  rounds: number;
  exact_ms: DurationSummary;
  flat_ms: DurationSummary;
  hnsw: HnswFigures[];
}

const WORDS = (() => {
  // A fixed pseudo-random vocabulary: the same sentences on every run.
  let seed = 42;
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
  const syllables = "ka lo mi ter san vo dri pel nu ges ra tho bel quin zo".split(" ");
  const words = Array.from({ length: 3000 }, () => {
    const n = 2 + Math.floor(random() * 3);
    return Array.from({ length: n }, () => syllables[Math.floor(random() * syllables.length)]).join("");
  });
  return { words, random };
})();

function sentence(i: number): string {
  const { words } = WORDS;
  const length = 8 + (i % 8);
  const parts: string[] = [];
  let x = (i + 1) * 2_654_435_761;
  for (let w = 0; w < length; w++) {
    x = (Math.imul(x ^ (x >>> 15), 2_246_822_519) + w) >>> 0;
    parts.push(words[x % words.length] as string);
  }
  return parts.join(" ");
}

/** A near-duplicate: one word dropped, punctuation and case changed. */
const nearDuplicate = (text: string) => `${text.split(" ").slice(1).join(" ").toUpperCase()}?`;

const waitIndexed = async (redis: RedisClient, name: string, docs: number) => {
  for (;;) {
    const info = (await redis.call("FT.INFO", name)) as unknown[];
    const indexing = Number(info[info.indexOf("indexing") + 1]);
    const count = Number(info[info.indexOf("num_docs") + 1]);
    if (indexing === 0 && count >= docs) return;
    await Bun.sleep(500);
  }
};

export async function measureCacheLookup(options: {
  redisUrl: string;
  entries: number;
  dim: number;
  queries: number;
  /** EF_RUNTIME values to measure, on the same index. */
  efRuntimes: readonly number[];
  rounds?: number;
  hybridPolicy?: "BATCHES" | "ADHOC_BF";
  log?: (line: string) => void;
}): Promise<CacheLookupResult> {
  const { entries: count, dim, queries } = options;
  const log = options.log ?? (() => {});
  const redis = await connectRedis(options.redisUrl);
  const prefix = `cachebench-${dim}-${count}-${process.pid}`;
  const keys = cacheKeys(prefix);
  const entries = createCacheEntries({ redis, keys, ttlSeconds: 3600 });
  const index = (algorithm: "HNSW" | "FLAT", efRuntime?: number) =>
    createVectorIndex({
      redis,
      keyPrefix: keys.indexPrefix,
      namePrefix: `${prefix}-${algorithm}`,
      embeddingModel: "bench",
      dim,
      algorithm,
      ...(efRuntime ? { efRuntime } : {}),
      ...(options.hybridPolicy ? { hybridPolicy: options.hybridPolicy } : {}),
    });
  const hnsw = index("HNSW");
  const flat = index("FLAT");
  const scope = "benchscope";
  const taskType = "general_analysis";
  try {
    const loadStarted = performance.now();
    for (let start = 0; start < count; start += 1000) {
      const pipeline = redis.pipeline();
      for (let i = start; i < Math.min(count, start + 1000); i++) {
        const vector = lexicalEmbedding(sentence(i), dim);
        pipeline.hset(keys.entry(i.toString(16).padStart(32, "0"), taskType), {
          query: sentence(i),
          response: `answer ${i}`,
          model: "bench",
          metadata: '{"tokens_used":100,"prompt_tokens":60,"completion_tokens":40,"created_at":0}',
          task_type: taskType,
          scope,
          embedding_model: hnsw.modelTag,
          embedding: Buffer.from(vector.buffer),
        });
      }
      await pipeline.exec();
    }
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    log(`  loaded ${count} entries × ${dim} in ${loadSeconds.toFixed(1)} s; indexing (HNSW and FLAT)…`);
    const indexStarted = performance.now();
    for (const idx of [hnsw, flat]) {
      if (!(await idx.ensure())) throw new Error(`cannot create ${idx.status().name}: ${idx.status().reason}`);
    }
    await waitIndexed(redis, hnsw.status().name, count);
    await waitIndexed(redis, flat.status().name, count);
    const indexSeconds = (performance.now() - indexStarted) / 1000;
    log(`  indexed in ${indexSeconds.toFixed(1)} s; measuring ${queries} queries per kind…`);

    const probes = Array.from({ length: queries }, (_, q) => {
      const i = Math.floor((q * 7919) % count);
      const text = q % 2 === 0 ? nearDuplicate(sentence(i)) : sentence(count + q);
      return { vector: lexicalEmbedding(text, dim), scope, taskType };
    });

    const measureRound = async () => {
      const exact = createDurationHistogram();
      for (let q = 0; q < queries; q++) {
        const i = (q * 104_729) % count;
        const started = performance.now();
        const hit = await entries.get(keys.entry(i.toString(16).padStart(32, "0"), taskType));
        recordMs(exact, performance.now() - started);
        if (!hit) throw new Error(`entry ${i} missing`);
      }

      const single = async (idx: VectorIndex) => {
        const histogram = createDurationHistogram();
        const tops: string[][] = [];
        for (const probe of probes) {
          const started = performance.now();
          const [matches = []] = await idx.knn([probe], 3);
          recordMs(histogram, performance.now() - started);
          tops.push(matches.map((m) => m.key));
        }
        return { summary: summarize(histogram), tops };
      };
      const flatRun = await single(flat);
      const hnswFigures: HnswFigures[] = [];
      for (const ef of options.efRuntimes) {
        const handle = index("HNSW", ef);
        await handle.ensure();
        const run = await single(handle);
        let at1 = 0;
        let at3 = 0;
        let near = 0;
        for (let q = 0; q < queries; q++) {
          const truth = flatRun.tops[q] ?? [];
          const got = run.tops[q] ?? [];
          const found = truth[0] === undefined || got[0] === truth[0];
          if (found) at1++;
          if (found && q % 2 === 0) near++;
          at3 += truth.length === 0 ? 1 : truth.filter((key) => got.includes(key)).length / truth.length;
        }
        const batchStarted = performance.now();
        for (let start = 0; start < probes.length; start += 64) await handle.knn(probes.slice(start, start + 64), 3);
        hnswFigures.push({
          ef_runtime: ef,
          ms: run.summary,
          batch64_ms_per_query: round((performance.now() - batchStarted) / probes.length, 4),
          recall_at_1: round(at1 / queries, 4),
          recall_at_3: round(at3 / queries, 4),
          near_recall_at_1: round(near / Math.ceil(queries / 2), 4),
        });
      }
      return { exact: summarize(exact), flat: flatRun.summary, hnsw: hnswFigures };
    };
    // Several rounds on the same loaded index: the noise is in the measuring, and loading 100k × 1536 takes minutes.
    const rounds: Awaited<ReturnType<typeof measureRound>>[] = [];
    for (let r = 0; r < (options.rounds ?? 3); r++) rounds.push(await measureRound());
    return {
      entries: count,
      dim,
      load_seconds: round(loadSeconds),
      index_seconds: round(indexSeconds),
      rounds: rounds.length,
      exact_ms: medianSummary(rounds.map((r) => r.exact)),
      flat_ms: medianSummary(rounds.map((r) => r.flat)),
      hnsw: options.efRuntimes.map((_, i) => {
        const per = rounds.map((r) => r.hnsw[i] as HnswFigures);
        const first = per[0] as HnswFigures;
        return {
          ...first,
          ms: medianSummary(per.map((h) => h.ms)),
          batch64_ms_per_query: median(per.map((h) => h.batch64_ms_per_query)),
        };
      }),
    };
  } finally {
    await hnsw.drop();
    await flat.drop();
    await deleteKeys(redis, `${prefix}:*`);
    await redis.quit();
  }
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

function medianSummary(summaries: readonly DurationSummary[]): DurationSummary {
  const of = (key: keyof DurationSummary) => round(median(summaries.map((s) => s[key])), 3);
  return { p50: of("p50"), p95: of("p95"), p99: of("p99"), max: of("max"), mean: of("mean"), count: of("count") };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      entries: { type: "string", default: "10000,100000" },
      dims: { type: "string", default: "384,1536" },
      queries: { type: "string", default: "2000" },
      rounds: { type: "string", default: "3" },
      ef: { type: "string", default: "10,64,128" },
      policy: { type: "string" },
      json: { type: "string" },
    },
  });
  const config = loadConfig();
  const results: CacheLookupResult[] = [];
  for (const entries of (values.entries as string).split(",").map(Number)) {
    for (const dim of (values.dims as string).split(",").map(Number)) {
      console.log(`cache lookup: ${entries} entries × ${dim} dims`);
      const result = await measureCacheLookup({
        redisUrl: config.cache.redisUrl,
        entries,
        dim,
        queries: Number(values.queries),
        efRuntimes: (values.ef as string).split(",").map(Number),
        rounds: Number(values.rounds),
        ...(values.policy ? { hybridPolicy: values.policy as "BATCHES" | "ADHOC_BF" } : {}),
        log: console.log,
      });
      results.push(result);
      const q = (s: DurationSummary) => `${s.p50}/${s.p95}/${s.p99}`;
      console.log(`  exact P50/P95/P99 ${q(result.exact_ms)} ms · FLAT ${q(result.flat_ms)} ms`);
      for (const h of result.hnsw) {
        console.log(
          `  HNSW ef=${h.ef_runtime}: ${q(h.ms)} ms · batch of 64: ${h.batch64_ms_per_query} ms/query · ` +
            `recall@1 ${h.recall_at_1} (near-duplicates ${h.near_recall_at_1}) · recall@3 ${h.recall_at_3}`,
        );
      }
    }
  }
  if (values.json) await Bun.write(values.json, JSON.stringify({ machine: process.arch, results }, null, 2));
}
