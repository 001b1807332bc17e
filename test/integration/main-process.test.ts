/**
 * `bun start` as a user runs it: a real process against the real services.
 * It fails fast with one clear line when a service is unreachable, creates
 * the topics it needs, serves /health and stops cleanly on SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Static } from "@sinclair/typebox";
import type { Admin } from "kafkajs";
import type { HealthSchema } from "../../src/api/health";
import { json, requireKafka, requireRedis, uniquePrefix, waitFor } from "../helpers/services";

type Health = Static<typeof HealthSchema>;

const ROOT = join(import.meta.dir, "..", "..");
let admin: Admin;
const topicIn = uniquePrefix("main").replaceAll("-", "_");

beforeAll(async () => {
  await (await requireRedis()).quit();
  ({ admin } = await requireKafka());
});

afterAll(async () => {
  await admin.deleteTopics({ topics: [topicIn, `${topicIn}.dlq`, `${topicIn}_out`] }).catch(() => {});
  await admin.disconnect();
});

function freePort(): number {
  const server = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = server.port ?? 0;
  server.stop(true);
  return port;
}

function start(env: Record<string, string>) {
  return Bun.spawn(["bun", "src/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "warn", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
}

async function finish(proc: ReturnType<typeof start>) {
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  return { code, stderr: stderr.trim() };
}

describe("bun start", () => {
  test("fails fast, in one line naming REDIS_URL, when Redis is unreachable", async () => {
    const started = Date.now();
    const { code, stderr } = await finish(start({ REDIS_URL: "redis://127.0.0.1:1" }));
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(stderr.split("\n")).toHaveLength(1);
    expect(stderr).toContain("REDIS_URL");
    expect(stderr).toContain("bun run services:up");
  });

  test("fails fast, in one line naming KAFKA_BROKERS, when Kafka is unreachable", async () => {
    const started = Date.now();
    const { code, stderr } = await finish(start({ KAFKA_BROKERS: "127.0.0.1:1" }));
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
    const line = stderr.split("\n").find((l) => l.startsWith("ai-eventstream:"));
    expect(line).toContain("KAFKA_BROKERS");
  });

  test("refuses an invalid setting, naming the variable", async () => {
    const { code, stderr } = await finish(start({ WORKER_CONCURRENCY: "lots" }));
    expect(code).toBe(1);
    expect(stderr).toContain('WORKER_CONCURRENCY="lots" is not valid');
  });

  test("refuses MAX_BODY_BYTES below 1024 at start, naming the variable and the accepted range", async () => {
    const { code, stderr } = await finish(start({ MAX_BODY_BYTES: "1023" }));
    expect(code).toBe(1);
    expect(stderr).toContain('MAX_BODY_BYTES="1023" is not valid: expected an integer 1024..104857600');
  });

  test("creates its topics, serves /health and exits 0 on SIGTERM", async () => {
    const port = freePort();
    const proc = start({ PORT: String(port), KAFKA_TOPIC_IN: topicIn, KAFKA_TOPIC_OUT: `${topicIn}_out` });
    try {
      const health = await waitFor(
        async () => {
          const response = await fetch(`http://127.0.0.1:${port}/health`);
          return response.status === 200 ? json<Health>(response) : undefined;
        },
        "the api to answer /health",
        15_000,
        100,
      );
      expect(health.status).toBe("ok");
      expect(health.checks?.kafka).toMatchObject({ ok: true, required: true });
      expect(health.checks?.redis?.ok).toBe(true);

      const metadata = await admin.fetchTopicMetadata({ topics: [topicIn, `${topicIn}.dlq`, `${topicIn}_out`] });
      const partitions = Object.fromEntries(metadata.topics.map((t) => [t.name, t.partitions.length]));
      expect(partitions).toEqual({ [topicIn]: 6, [`${topicIn}.dlq`]: 1, [`${topicIn}_out`]: 6 });
    } finally {
      proc.kill("SIGTERM");
    }
    const started = Date.now();
    const { code } = await finish(proc);
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
  }, 30_000);
});
