/**
 * The semantic cache against the real Redis Query Engine, with embeddings and
 * answers from the project's mock OpenAI server through the real `openai`
 * SDK. Each test has its own key prefix (its own index); two cache instances
 * with their own Redis connections stand for two worker processes.
 * Past ~300 lines on purpose: one test per promise of semantic-cache.ts's
 * header, on one harness that a second file would have to copy.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type Redis from "ioredis";
import { createCache } from "../../src/cache";
import { cacheKeys } from "../../src/cache/cache-key";
import type { Resolution, SemanticCache } from "../../src/cache/semantic-cache";
import type { Config } from "../../src/config";
import { createEventBus, type EventBus, type EventMap } from "../../src/events";
import { createOpenAiProvider } from "../../src/llm/openai-provider";
import type { LlmProvider } from "../../src/llm/provider";
import { createLogger } from "../../src/log";
import { connectRedis, RedisClient } from "../../src/redis/client";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { deleteByPrefix, requireRedis, testConfig, uniquePrefix } from "../helpers/services";

const DIM = 384;
const logger = createLogger({ level: "silent" });
let mock: MockOpenAiServer;
let provider: LlmProvider;
let redis: RedisClient;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await requireRedis();
  mock = createMockOpenAiServer({ latencyMs: 5, embeddingDim: DIM });
  provider = createOpenAiProvider({
    apiKey: "sk-test",
    baseUrl: mock.url,
    model: "mock-chat",
    embeddingModel: "text-embedding-3-small",
    embeddingDim: DIM,
    logger,
  });
});
afterEach(() => mock.reset());
afterAll(async () => {
  // Last in, first out: a connection closes after the cleanups that use it.
  for (const cleanup of cleanups.reverse()) await cleanup();
  mock.stop();
  await redis.quit();
});

/** Counts of every event a cache emits. */
function eventCounter(bus: EventBus) {
  const seen: { [K in keyof EventMap]?: EventMap[K][] } = {};
  const watch = <K extends keyof EventMap>(name: K) =>
    bus.on(name, (payload) => {
      const list = (seen[name] ?? []) as EventMap[K][];
      list.push(payload);
      (seen as Record<K, EventMap[K][]>)[name] = list;
    });
  for (const name of ["cache.lookup", "cache.guard_refused", "cache.knn_batch", "cache.store", "cache.error"] as const)
    watch(name);
  return {
    all: <K extends keyof EventMap>(name: K) => (seen[name] ?? []) as EventMap[K][],
    tiers: () => (seen["cache.lookup"] ?? []).map((e) => e.tier),
  };
}

async function build(options: { prefix?: string; client?: Redis; config?: Partial<Config["cache"]> } = {}) {
  const prefix = options.prefix ?? uniquePrefix("cache");
  const bus = createEventBus();
  const events = eventCounter(bus);
  const { cache, admin, ensure } = createCache({
    redis: options.client ?? redis,
    config: { ...testConfig.cache, prefix, similarityThreshold: 0.9, ...options.config },
    embedder: provider,
    bus,
    logger,
    jobTimeoutMs: 10_000,
  });
  const semantic = await ensure();
  cleanups.push(async () => {
    await admin.index.drop();
    await deleteByPrefix(redis, prefix);
  });
  return { cache, admin, events, semantic, prefix };
}

const ask = (text: string, extra: { tenant?: string; maxTokens?: number; taskType?: string } = {}) => ({
  tenant: extra.tenant,
  taskType: extra.taskType ?? "question_answering",
  text,
  model: "mock-chat",
  system: "Answer the question.",
  temperature: 0.2,
  maxTokens: extra.maxTokens ?? 200,
});

type Ask = ReturnType<typeof ask>;
const llm = (request: Ask) => () =>
  provider.chat({
    taskType: request.taskType,
    system: request.system,
    user: request.text,
    model: request.model,
    temperature: request.temperature,
    maxTokens: request.maxTokens,
  });
const ON = { useCache: true, refresh: false };
const resolve = (cache: SemanticCache, request: Ask, options = ON) => cache.resolve(request, options, llm(request));

const responseOf = (r: Resolution) => (r.fromCache ? r.hit.answer.response : r.answer.text);

describe("semantic cache (real Redis Query Engine, mock OpenAI over HTTP)", () => {
  test("the same text twice: the second is an exact hit with no embeddings call; case and spacing do not matter", async () => {
    const { cache, semantic } = await build();
    expect(semantic).toBe(true);
    const first = await resolve(cache, ask("What is the boiling point of water at sea level?"));
    expect(first.fromCache).toBe(false);
    const after = mock.counters();
    expect(after.chat_requests).toBe(1);

    const second = await resolve(cache, ask("  what is the BOILING point of water   at sea level?"));
    expect(second.fromCache && second.hit.tier).toBe("exact");
    expect(responseOf(second)).toBe(responseOf(first));
    expect(mock.counters().chat_requests).toBe(1);
    expect(mock.counters().embedding_requests).toBe(after.embedding_requests);
  });

  test("a near-duplicate (accents, punctuation) is a semantic hit with its similarity; its negation and another number are not", async () => {
    const { cache, events } = await build();
    await resolve(cache, ask("¿Qué dosis de ibuprofeno es segura para un adulto sano?"));
    await resolve(cache, ask("Take 2 tablets of ibuprofen every morning with water"));

    const near = await resolve(cache, ask("Que dosis de ibuprofeno es segura, para un adulto sano"));
    expect(near.fromCache && near.hit.tier).toBe("semantic");
    expect(near.fromCache && near.hit.similarity).toBeGreaterThanOrEqual(0.9);

    const negated = await resolve(cache, ask("¿Qué dosis de ibuprofeno no es segura para un adulto sano?"));
    expect(negated.fromCache).toBe(false);
    const number = await resolve(cache, ask("Take 20 tablets of ibuprofen every morning with water"));
    expect(number.fromCache).toBe(false);
    // Both were similar enough to be served without the guard: it refused them, and says why.
    expect(
      events
        .all("cache.guard_refused")
        .map((e) => e.reason)
        .sort(),
    ).toEqual(["negation", "numbers"]);
    expect(mock.counters().chat_requests).toBe(4);
  });

  test("500 concurrent distinct misses, EMBED_BATCH_MAX 64: 8 embeddings calls (+ 2 of slack), and the KNN queries go in pipelines", async () => {
    // Pinned, so that the bound does not move with the environment: 64 texts per call, a 2 ms window (the defaults).
    const embedBatch = { windowMs: 2, maxSize: 64, memoSize: 2048 };
    const { cache, events } = await build({ config: { embedBatch } });
    const topics = ["river", "mountain", "harbour", "orchard", "glacier", "desert", "canyon", "forest"];
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        resolve(cache, ask(`Question ${i}: describe the ${topics[i % 8]} number ${i * 7919} in detail`)),
      ),
    );
    expect(results.every((r) => !r.fromCache)).toBe(true);
    const counters = mock.counters();
    expect(counters.embedding_inputs).toBe(500);
    // Full calls of 64 and one of the rest: 8 calls (measured: 64 ×7 and 52, run after run). The slack of 2 allows
    // the 2 ms window to close on a partial batch twice, should the lookups reach the batcher more slowly than 64
    // per 2 ms on a busy machine; a batcher that split calls smaller or flushed each text alone exceeds it.
    expect(counters.embedding_requests).toBeGreaterThanOrEqual(Math.ceil(500 / embedBatch.maxSize));
    expect(counters.embedding_requests).toBeLessThanOrEqual(Math.ceil(500 / embedBatch.maxSize) + 2);
    expect(Math.max(...counters.embedding_inputs_per_call)).toBeLessThanOrEqual(embedBatch.maxSize);
    const batches = events.all("cache.knn_batch");
    expect(batches.reduce((sum, b) => sum + b.queries, 0)).toBe(500);
    // The lookups woken by one embeddings call share a pipeline (several calls may share one); a pipeline that
    // fills up (256 queries) splits one call's lookups in two at most once in 500: + 1.
    expect(batches.length).toBeLessThanOrEqual(counters.embedding_requests + 1);
  });

  test("200 concurrent requests with the same new text in two processes make exactly 1 LLM call", async () => {
    const prefix = uniquePrefix("cache-sf");
    const other = await connectRedis(testConfig.redisUrl);
    cleanups.push(() => other.quit());
    const a = await build({ prefix });
    const b = await build({ prefix, client: other });
    const request = ask("Summarise the causes of the 1929 stock market crash");
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => resolve(i % 2 ? a.cache : b.cache, request)),
    );
    expect(mock.counters().chat_requests).toBe(1);
    expect(new Set(results.map(responseOf)).size).toBe(1);
    expect(results.filter((r) => !r.fromCache)).toHaveLength(1);
  });

  test("tenant A's answer is never served to tenant B, neither exactly nor semantically", async () => {
    const { cache } = await build();
    const text = "What is our refund policy for enterprise customers?";
    await resolve(cache, ask(text, { tenant: "acme" }));
    expect((await resolve(cache, ask(text, { tenant: "acme" }))).fromCache).toBe(true);
    expect((await resolve(cache, ask(text, { tenant: "globex" }))).fromCache).toBe(false);
    expect((await resolve(cache, ask(`${text}!`, { tenant: "initech" }))).fromCache).toBe(false);
    expect((await resolve(cache, ask(text))).fromCache).toBe(false);
    expect(mock.counters().chat_requests).toBe(4);
  });

  test("an error answer is never stored, nor a truncated one (finish_reason length)", async () => {
    const { cache, events } = await build();
    mock.setFault({ kind: "400", times: 1, endpoint: "chat" });
    const failing = ask("Translate the contract into French");
    await expect(resolve(cache, failing)).rejects.toThrow();
    expect((await resolve(cache, failing)).fromCache).toBe(false);
    expect((await resolve(cache, failing)).fromCache).toBe(true);

    const truncated = ask("Write a long essay about the history of the printing press", { maxTokens: 2 });
    const first = await resolve(cache, truncated);
    expect(!first.fromCache && first.answer.finishReason).toBe("length");
    expect((await resolve(cache, truncated)).fromCache).toBe(false);
    expect(events.all("cache.store").filter((e) => !e.stored)).toHaveLength(2);
  });

  test("use_cache false or a temperature above CACHE_MAX_TEMPERATURE neither looks up nor stores; refresh replaces the entry, still findable by meaning", async () => {
    const { cache, admin, prefix, events } = await build({ config: { maxTemperature: 0.5 } });
    const request = ask("List three uses of graphene");
    const off = { useCache: false, refresh: false };
    const hot = { ...request, temperature: 0.9 };
    for (const [r, options] of [
      [request, off],
      [request, off],
      [hot, ON],
      [hot, ON],
    ] as const)
      await resolve(cache, r, options);
    expect(mock.counters().chat_requests).toBe(4);
    expect(events.tiers()).toEqual(["bypass", "bypass", "bypass", "bypass"]);
    expect(await admin.clear()).toBe(0);

    const stored = await resolve(cache, request);
    const id = !stored.fromCache ? stored.storedId : undefined;
    expect(id).toBeString();
    const key = cacheKeys(prefix).entryOfId(id as string) as string;
    await redis.hset(key, "response", "an old answer");
    const refreshed = await resolve(cache, request, { useCache: true, refresh: true });
    expect(refreshed.fromCache).toBe(false);
    expect(await redis.hget(key, "response")).toBe(responseOf(refreshed));
    expect(mock.counters().chat_requests).toBe(6);
    // The refresh stored the entry whole again, its vector included.
    const near = await resolve(cache, ask("List three uses of graphene!"));
    expect(near.fromCache && near.hit.tier).toBe("semantic");
  });

  test("a Redis failure at the single-flight lock never fails the task: it is answered without the lock, stored, and counted", async () => {
    // Every pipelined SET goes with a negative lease, which Redis refuses: only the lock is SET in a pipeline.
    const lockRefused = new Proxy(redis, {
      get(target, property) {
        if (property === "pipeline")
          return () => {
            const pipeline = target.pipeline();
            const set = pipeline.set.bind(pipeline) as unknown as (...args: (string | number)[]) => typeof pipeline;
            pipeline.set = ((key: string, value: string) => set(key, value, "PX", -1, "NX")) as typeof pipeline.set;
            return pipeline;
          };
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const { cache, events } = await build({ client: lockRefused });
    const request = ask("Which metal has the highest melting point?");
    expect((await resolve(cache, request)).fromCache).toBe(false);
    expect(events.all("cache.error").map((e) => e.stage)).toEqual(["lock"]);
    expect((await resolve(cache, request)).fromCache).toBe(true);
    expect(events.tiers()).toEqual(["miss", "exact"]);
    expect(mock.counters().chat_requests).toBe(1);
  });

  test("entries age out after CACHE_TTL_SECONDS, and a hit does not extend the age unless configured", async () => {
    const fixed = await build({ config: { ttlSeconds: 120 } });
    const extended = await build({ config: { ttlSeconds: 120, extendTtlOnHit: true } });
    for (const { cache, prefix } of [fixed, extended]) {
      const stored = await resolve(cache, ask("Define entropy in one sentence"));
      const key = cacheKeys(prefix).entryOfId((!stored.fromCache && stored.storedId) || "") as string;
      const expiresAt = await redis.pexpiretime(key);
      expect(expiresAt - Date.now()).toBeWithin(110_000, 120_001);
      await Bun.sleep(20);
      expect((await resolve(cache, ask("Define entropy in one sentence"))).fromCache).toBe(true);
      const after = await redis.pexpiretime(key);
      if (cache === fixed.cache) expect(after).toBe(expiresAt);
      else expect(after).toBeGreaterThan(expiresAt);
    }
  });

  test("without the Query Engine (a database other than 0) the exact tier still works and the semantic tier says why not", async () => {
    const url = new URL(testConfig.redisUrl);
    url.pathname = "/1";
    const db1 = await connectRedis(url.toString());
    cleanups.push(() => db1.quit());
    const prefix = uniquePrefix("cache-db1");
    cleanups.push(() => deleteByPrefix(db1, prefix));
    const { cache, admin, semantic } = await build({ client: db1, prefix });
    expect(semantic).toBe(false);
    expect(admin.index.status().reason).toContain("db != 0");
    await resolve(cache, ask("Name the largest moon of Saturn"));
    expect((await resolve(cache, ask("name the largest moon of saturn"))).fromCache).toBe(true);
    expect((await resolve(cache, ask("Name the largest moon of Saturn!"))).fromCache).toBe(false);
    expect(mock.counters().embedding_requests).toBe(0);
    await expect(admin.probe().check()).rejects.toThrow("semantic search unavailable (exact tier only)");
  });

  test("a Redis failure during lookup never fails the task: it goes to the LLM and is counted", async () => {
    const absent = new RedisClient("redis://127.0.0.1:1", {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    absent.on("error", () => {});
    cleanups.push(async () => absent.disconnect());
    const { cache, events } = await build({ client: absent });
    const result = await resolve(cache, ask("Is Redis up?"));
    expect(result.fromCache).toBe(false);
    expect(events.tiers()).toEqual(["error"]);
    expect(events.all("cache.error").map((e) => e.stage)).toContain("lookup");
    expect(mock.counters().chat_requests).toBe(1);
  });

  test("clear deletes every entry or one task type's and says how many; remove deletes one entry by id", async () => {
    const { cache, admin } = await build();
    const ids: string[] = [];
    for (const [text, taskType] of [
      ["alpha one", "summarization"],
      ["alpha two", "summarization"],
      ["beta one", "translation"],
      ["gamma one", "classification"],
    ] as const) {
      const r = await resolve(cache, ask(text, { taskType }));
      if (!r.fromCache && r.storedId) ids.push(r.storedId);
    }
    expect(ids).toHaveLength(4);
    expect(await admin.clear("summarization")).toBe(2);
    expect(await admin.remove(ids[2] as string)).toBe(true);
    expect(await admin.remove(ids[2] as string)).toBe(false);
    expect(admin.remove("../../etc")).rejects.toThrow("is not a cache entry id");
    expect(await admin.clear()).toBe(1);
    expect((await resolve(cache, ask("alpha one", { taskType: "summarization" }))).fromCache).toBe(false);
  });
});
