/**
 * Access to the real services for integration tests. A test that needs Redis,
 * Kafka or the local embedding model and cannot reach it fails loudly, saying
 * how to start them; it never skips.
 */
import type Redis from "ioredis";
import { type Admin, Kafka, logLevel } from "kafkajs";
import { loadConfig } from "../../src/config";
import { errorMessage } from "../../src/errors";
import { createEmbedder } from "../../src/llm";
import type { Embedder } from "../../src/llm/provider";
import { createLogger } from "../../src/log";
import { connectRedis, type RedisClient } from "../../src/redis/client";

const HOW_TO_START =
  "Integration tests run against the real local services. Start them with `bun run services:up` " +
  "(or run the whole suite with `bun run test`, which starts them first).";

export const testConfig = loadConfig();

/** A prefix unique to one test run, for keys, queues, topics and groups. */
export function uniquePrefix(name: string): string {
  return `test-${name}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

export async function requireRedis(): Promise<RedisClient> {
  try {
    return await connectRedis(testConfig.redisUrl, { connectTimeoutMs: 2000 });
  } catch (error) {
    throw new Error(`Redis is not reachable: ${errorMessage(error)}.\n${HOW_TO_START}`);
  }
}

/** The configuration of a process with EMBEDDING_PROVIDER=local, and its embedder, checked with a real request. */
export async function requireLocalEmbedder(): Promise<{ config: typeof testConfig; embedder: Embedder }> {
  const config = loadConfig({ ...process.env, EMBEDDING_PROVIDER: "local" });
  const embedder = createEmbedder(config.embedding, { apiKey: undefined, logger: createLogger({ level: "silent" }) });
  try {
    await embedder.embed(["is the local embedding model up?"], { signal: AbortSignal.timeout(5000) });
    return { config, embedder };
  } catch (error) {
    throw new Error(
      `The local embedding model is not reachable at ${config.embedding.baseUrl}: ${errorMessage(error)}.\n${HOW_TO_START}`,
    );
  }
}

export function testKafka(clientId = "ai-eventstream-test"): Kafka {
  return new Kafka({
    clientId,
    brokers: [...testConfig.kafka.brokers],
    connectionTimeout: 2000,
    retry: { retries: 3, initialRetryTime: 200 },
    logLevel: logLevel.NOTHING,
  });
}

export async function requireKafka(): Promise<{ kafka: Kafka; admin: Admin }> {
  const kafka = testKafka();
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return { kafka, admin };
  } catch (error) {
    await admin.disconnect().catch(() => {});
    throw new Error(
      `Kafka is not reachable at ${testConfig.kafka.brokers.join(",")}: ${errorMessage(error)}.\n${HOW_TO_START}`,
    );
  }
}

/** Drops every Query Engine index whose name starts with prefix (not its documents). */
export async function dropIndexesByPrefix(redis: Redis, prefix: string): Promise<void> {
  const names = (await redis.call("FT._LIST").catch(() => [])) as string[];
  for (const name of names.filter((n) => n.startsWith(prefix))) await redis.call("FT.DROPINDEX", name).catch(() => {});
}

/** Deletes every key that starts with prefix (SCAN, never KEYS). */
export async function deleteByPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== "0");
  return deleted;
}

/** Polls `check` until it returns a truthy value or the deadline passes, then fails with `what`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${errorMessage(lastError)}` : ""}`,
      );
    }
    await Bun.sleep(intervalMs);
  }
}

/** Collects 'error' events of an emitter so a test can assert that none happened. */
export function collectErrors(emitter: { on(event: "error", listener: (error: Error) => void): unknown }): Error[] {
  const errors: Error[] = [];
  emitter.on("error", (error) => errors.push(error));
  return errors;
}

/** A response body parsed as the type the endpoint documents. */
export async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}
