/**
 * Event → result latency of the whole app (consumer threads + worker
 * processes + LLM behind the project's mock server) at a fixed event rate:
 * from the moment an event is handed to the broker to the moment its result
 * is read from the results topic. Also reports the app's own accepted →
 * result quantiles from /metrics, to tell Kafka's share from the app's.
 */

import { join } from "node:path";
import Redis from "ioredis";
import { Partitioners } from "kafkajs";
import { INPUT_PARTITIONS } from "../src/ingest/kafka";
import { generateEvents } from "../tools/event-generator";
import { produceEvents } from "../tools/event-producer";
import { createMockOpenAiServer } from "../tools/mock-openai-server";
import { emptyDatabase } from "../tools/redis-admin";
import { kafkaClient, waitForConsumerGroup, waitUntil } from "./kafka-common";

const ROOT = join(import.meta.dir, "..");

export interface LatencyReport {
  rate: number;
  achievedRate: number;
  events: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** The app's own accepted (enqueued by the consumer) → result stored quantiles, from /metrics. */
  inApp: { p50: number; p95: number; p99: number };
}

const quantile = (sorted: Float64Array, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/** Produce → result on the results topic, ms, for the whole app at a fixed event rate. */
export async function eventToResultLatency(options: {
  brokers: readonly string[];
  prefix: string;
  rate: number;
  count: number;
  bytes: number;
  redisUrl: string;
  threads: number;
}): Promise<LatencyReport> {
  const { brokers, prefix, rate, count, bytes, redisUrl } = options;
  const redis = new Redis(redisUrl);
  await emptyDatabase(redis);
  const mock = createMockOpenAiServer({ port: 0, latencyMs: 0 });
  const topicIn = `${prefix}_in`;
  const topicOut = `${prefix}_out`;
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const app = Bun.spawn(["bun", "src/main.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      LOG_LEVEL: "warn",
      ROLES: "api,consumer,worker",
      REDIS_URL: redisUrl,
      KAFKA_BROKERS: brokers.join(","),
      KAFKA_TOPIC_IN: topicIn,
      KAFKA_TOPIC_OUT: topicOut,
      KAFKA_GROUP_ID: `${prefix}_group`,
      KAFKA_CONSUMER_THREADS: String(options.threads),
      LLM_PROVIDER: "openai",
      OPENAI_API_KEY: "sk-bench-not-a-real-key",
      OPENAI_BASE_URL: mock.url,
      WORKER_JOBS_PER_PROCESS: "200",
      KAFKA_RESULT_LINGER_MS: "5",
    },
    stdout: "inherit",
    stderr: "inherit",
  });
  const kafka = kafkaClient(brokers);
  const resultsAt = new Map<string, number>();
  const reader = kafka.consumer({ groupId: `${prefix}_reader` });
  try {
    await waitUntil(
      async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.status === 200,
      60_000,
      "the app's /health",
    );
    await waitForConsumerGroup(`http://127.0.0.1:${port}`, INPUT_PARTITIONS);
    await reader.connect();
    await reader.subscribe({ topic: topicOut, fromBeginning: true });
    await reader.run({
      eachBatch: async ({ batch }) => {
        const now = Date.now();
        for (const m of batch.messages) {
          const { task_id } = JSON.parse(m.value?.toString() ?? "{}") as { task_id: string };
          if (!resultsAt.has(task_id)) resultsAt.set(task_id, now);
        }
      },
    });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const ids: string[] = [];
    const events = [...generateEvents({ count, idPrefix: prefix, bytes })].map((e) => {
      ids.push(e.eventId ?? "");
      return { key: e.key, value: e.value };
    });
    const report = await produceEvents({ producer, topic: topicIn, events, rate, recordTimesFor: count });
    await producer.disconnect();
    await waitUntil(() => resultsAt.size >= count, 300_000, `${count} results`);
    const metrics = (await (await fetch(`http://127.0.0.1:${port}/metrics`)).json()) as {
      latency_ms: { p50: number; p95: number; p99: number };
    };
    const sentAt = report.sentAt ?? new Float64Array(count);
    const latencies = Float64Array.from(ids, (id, i) => (resultsAt.get(id) ?? Number.NaN) - (sentAt[i] ?? 0)).sort();
    return {
      rate,
      achievedRate: Math.round(report.rate),
      events: count,
      p50: quantile(latencies, 0.5),
      p95: quantile(latencies, 0.95),
      p99: quantile(latencies, 0.99),
      max: latencies[latencies.length - 1] ?? 0,
      inApp: { p50: metrics.latency_ms.p50, p95: metrics.latency_ms.p95, p99: metrics.latency_ms.p99 },
    };
  } finally {
    await reader.disconnect().catch(() => {});
    app.kill("SIGTERM");
    await app.exited;
    await mock.stop();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteGroups([`${prefix}_group`, `${prefix}_reader`]).catch(() => {});
    await admin.deleteTopics({ topics: [topicIn, topicOut, `${topicIn}.dlq`] }).catch(() => {});
    await admin.disconnect();
    await emptyDatabase(redis);
    await redis.quit();
  }
}
