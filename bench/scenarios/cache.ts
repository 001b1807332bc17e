/**
 * `bun bench cache`: POST /process → result with a mix of texts (--mix):
 * exact repeats of a text already sent, near-duplicates of one (case,
 * accents, punctuation changed: semantic-tier hits), and new texts (misses
 * that go to the LLM). Latency is POST → result, as in `e2e`; the app's own
 * cache figures for the same run are read from /metrics and reported beside
 * it: hits per tier, hit rate, lookup P50/P95/P99, embeddings calls and
 * inputs per request, KNN batch size, Redis round trips per lookup.
 *
 * The app the harness starts keeps its queues on --redis-url and its cache
 * on database 0 of the same server (the Query Engine indexes database 0
 * only), under a prefix of its own that is deleted afterwards. Lookup latency
 * at 10k-100k entries is `bun bench/cache-lookup.ts`.
 */
import Redis from "ioredis";
import { buildRequest } from "../http/raw-client";
import { measureLoad, taskDrainMs } from "../load/measure-load";
import type { Operation } from "../load/open-loop";
import { deleteKeys } from "../measure/delete-keys";
import { resolveTarget } from "../targets/app-target";
import type { Scenario } from "./scenario";
import { postAndAwait, taskPool } from "./task-outcome";

const TOPICS = ["refund", "delivery", "invoice", "password", "warranty", "shipping", "discount", "account"];

/** A sentence no earlier request used. */
const uniqueText = (i: number) =>
  `Question ${i}: how do I handle the ${TOPICS[i % TOPICS.length]} case number ${(i * 7919) % 100_003} for order ${i}?`;

/** The same question as asked by someone else: case, accents and punctuation changed, numbers kept. */
const nearDuplicate = (text: string) => `${text.toUpperCase().replace(/\?$/, "").replace(/e/g, "é")}!!`;

type CacheFigures = Record<string, number>;

async function readCacheFigures(url: string): Promise<CacheFigures> {
  const response = await fetch(`${url}/metrics`);
  const m = (await response.json()) as {
    completed_tasks: number;
    cache: Record<string, number> & { lookup_ms: { p50: number; p95: number; p99: number } };
  };
  const { lookup_ms, ...counts } = m.cache;
  const numbers = Object.fromEntries(Object.entries(counts).filter(([, v]) => typeof v === "number"));
  return {
    ...numbers,
    completed: m.completed_tasks,
    lookup_p50_ms: lookup_ms.p50,
    lookup_p95_ms: lookup_ms.p95,
    lookup_p99_ms: lookup_ms.p99,
  };
}

export const cacheScenario: Scenario = {
  name: "cache",
  description:
    "hit/miss mixes (--mix): POST → result latency, hits per tier, lookup latency, embedding calls per request",
  async run({ options, progress, signal }) {
    const cacheDb = new URL(options.redisUrl);
    cacheDb.pathname = "/0";
    const prefix = `benchcache-${process.pid}`;
    const target = await resolveTarget(options, progress, {
      roles: "api,worker",
      env: { CACHE_REDIS_URL: cacheDb.toString(), CACHE_PREFIX: prefix },
    });
    const base = new URL(target.url);
    const pool = taskPool(target.url, options);
    const sent: string[] = [];
    let unique = 0;
    const pick = (): string => {
      const roll = Math.random();
      const { exact, near } = options.cacheMix;
      const earlier = sent[Math.floor(Math.random() * sent.length)];
      if (earlier !== undefined && roll < exact) return earlier;
      if (earlier !== undefined && roll < exact + near) return nearDuplicate(earlier);
      const text = uniqueText(unique++);
      sent.push(text);
      return text;
    };
    const operation: Operation = () => {
      const body = JSON.stringify({ text: pick(), task_type: options.taskType });
      const post = buildRequest("POST", base, "/process", body, { "Content-Type": "application/json" });
      return postAndAwait(pool, base, post, options.waitMs);
    };
    let before: CacheFigures = {};
    try {
      const outcome = await measureLoad({
        drainMs: taskDrainMs(options),
        name: "POST /process → result, cache mix",
        unit: "tasks",
        operation,
        options,
        progress,
        signal,
        ...(target.pid === undefined ? {} : { targetPid: target.pid }),
        beforeMeasure: async () => {
          await Bun.sleep(1500); // the warm-up's last counts reach Redis (1 s flushes)
          before = await readCacheFigures(target.url);
        },
        afterMeasure: async () => {
          await Bun.sleep(1500);
          const after = await readCacheFigures(target.url);
          const delta = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
          const lookups = delta("hits") + delta("misses");
          const tasks = Math.max(1, delta("completed"));
          return {
            cache_exact_hits: delta("exact_hits"),
            cache_semantic_hits: delta("semantic_hits"),
            cache_single_flight_hits: delta("single_flight_hits"),
            cache_misses: delta("misses"),
            cache_hit_rate: lookups > 0 ? Math.round((delta("hits") / lookups) * 10_000) / 10_000 : 0,
            cache_guard_refusals: delta("guard_refusals"),
            embedding_calls_per_request: Math.round((delta("embedding_calls") / tasks) * 1000) / 1000,
            embedding_inputs_per_call:
              delta("embedding_calls") > 0
                ? Math.round((delta("embedding_inputs") / delta("embedding_calls")) * 100) / 100
                : 0,
            // Cumulative over the app's life (warm-up included): histograms are not windowed.
            cache_lookup_p50_ms: after.lookup_p50_ms ?? 0,
            cache_lookup_p95_ms: after.lookup_p95_ms ?? 0,
            cache_lookup_p99_ms: after.lookup_p99_ms ?? 0,
            cache_round_trips_per_lookup: after.round_trips_per_lookup ?? 0,
            cache_avg_knn_batch: after.avg_knn_batch_size ?? 0,
          };
        },
      });
      return { target: `${target.describe}; cache mix ${JSON.stringify(options.cacheMix)}`, ...outcome };
    } finally {
      pool.close();
      await target.stop();
      await dropCache(cacheDb.toString(), prefix).catch(() => {});
    }
  },
};

/** Removes the run's cache entries and index from database 0. */
export async function dropCache(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    for (const name of (await redis.call("FT._LIST")) as string[]) {
      if (name.startsWith(`${prefix}-idx:`)) await redis.call("FT.DROPINDEX", name);
    }
    await deleteKeys(redis, `${prefix}*`);
  } finally {
    redis.disconnect();
  }
}
