/**
 * Kafka ingestion benchmark, reusable by the bench harness (each measurement
 * is an exported function that takes brokers/topic/rate and returns numbers):
 *
 * - consumeOnlyRate: a plain kafkajs eachBatch consumer that commits each
 *   batch and does nothing else: the ceiling on this machine.
 * - ingestRate: the product's consumer threads, consumed → durably enqueued
 *   in Redis (validate, idempotent pipelined enqueue, commit), no workers.
 * - eventToResultLatency: the whole app (consumer + workers + LLM behind the
 *   mock server) at a fixed rate; latency from produce to the result on the
 *   results topic.
 *
 * CLI: bun bench/kafka-ingest.ts [--events 100000] [--bytes 1000] [--runs 3] [--threads 2]
 *      [--latency-rate 500] [--latency-events 10000] [--only throughput|latency] [--json]
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import Redis from "ioredis";
import { type Admin, Partitioners } from "kafkajs";
import { createEventBus } from "../src/events";
import { createConsumerPool } from "../src/ingest/consumer-pool";
import { createLogger } from "../src/log";
import { generateEvents } from "../tools/event-generator";
import { produceEvents } from "../tools/event-producer";
import { emptyDatabase } from "../tools/redis-admin";
import { kafkaClient, waitUntil } from "./kafka-common";
import { eventToResultLatency, type LatencyReport } from "./kafka-latency";
import { median } from "./measure/median";

const ROOT = join(import.meta.dir, "..");
const quiet = createLogger({ level: "warn" });

/** Creates `topic` with `partitions` and fills it with `count` generated events of ~`bytes` each. */
export async function fillTopic(options: {
  brokers: readonly string[];
  topic: string;
  count: number;
  bytes: number;
  partitions?: number;
  idPrefix?: string;
}): Promise<void> {
  const kafka = kafkaClient(options.brokers);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic: options.topic, numPartitions: options.partitions ?? 6 }],
    waitForLeaders: true,
  });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  await produceEvents({
    producer,
    topic: options.topic,
    events: generateEvents({ count: options.count, idPrefix: options.idPrefix ?? options.topic, bytes: options.bytes }),
  });
  await producer.disconnect();
}

/** Events/s of a consumer that only consumes and commits, from its first batch to its last. */
export async function consumeOnlyRate(options: {
  brokers: readonly string[];
  topic: string;
  count: number;
}): Promise<number> {
  const consumer = kafkaClient(options.brokers).consumer({ groupId: `${options.topic}-consume-only-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: options.topic, fromBeginning: true });
  let seen = 0;
  let first = 0;
  let last = 0;
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat }) => {
      if (first === 0) first = performance.now();
      const lastOffset = batch.lastOffset();
      resolveOffset(lastOffset);
      await commitOffsetsIfNecessary({
        topics: [
          {
            topic: batch.topic,
            partitions: [{ partition: batch.partition, offset: (BigInt(lastOffset) + 1n).toString() }],
          },
        ],
      });
      await heartbeat();
      seen += batch.messages.length;
      last = performance.now();
    },
  });
  await waitUntil(() => seen >= options.count, 300_000, `${options.count} events consumed`);
  await consumer.disconnect();
  return (seen / (last - first)) * 1000;
}

/** Events/s consumed → durably enqueued by the product's consumer threads, from the first batch to the last. */
export async function ingestRate(options: {
  brokers: readonly string[];
  topic: string;
  count: number;
  redisUrl: string;
  threads: number;
}): Promise<number> {
  const redis = new Redis(options.redisUrl);
  await emptyDatabase(redis);
  const bus = createEventBus();
  let enqueued = 0;
  let first = 0;
  let last = 0;
  bus.on("ingest.batch", (e) => {
    // A stats message covers ~500 ms; its batches' own time tells when the first one began.
    if (first === 0) first = performance.now() - e.batch_ms.reduce((a, b) => a + b, 0);
    enqueued += e.enqueued + e.duplicates;
    last = performance.now();
  });
  const pool = createConsumerPool({
    threads: options.threads,
    entry: join(ROOT, "src", "ingest", "consumer-thread.ts"),
    bus,
    logger: quiet,
    env: {
      KAFKA_BROKERS: options.brokers.join(","),
      KAFKA_TOPIC_IN: options.topic,
      KAFKA_GROUP_ID: `${options.topic}-ingest-${Date.now()}`,
      REDIS_URL: options.redisUrl,
      LOG_LEVEL: "warn",
      // No workers drain the queue here, and no controller would resume a thread that paused itself.
      KAFKA_QUEUE_HIGH_WATERMARK: "100000000",
      KAFKA_QUEUE_LOW_WATERMARK: "99999999",
    },
  });
  await pool.start();
  await waitUntil(() => enqueued >= options.count, 300_000, `${options.count} events enqueued`);
  await pool.stop(30_000);
  const waiting = await redis.llen("bq:kafka_events:waiting");
  await emptyDatabase(redis);
  await redis.quit();
  if (waiting !== options.count) throw new Error(`expected ${options.count} jobs in Redis, found ${waiting}`);
  return (enqueued / (last - first)) * 1000;
}

async function deleteTopic(brokers: readonly string[], topic: string, admin?: Admin): Promise<void> {
  const client = admin ?? kafkaClient(brokers).admin();
  await client.connect();
  await client.deleteTopics({ topics: [topic] }).catch(() => {});
  await client.disconnect();
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      events: { type: "string", default: "100000" },
      bytes: { type: "string", default: "1000" },
      runs: { type: "string", default: "3" },
      threads: { type: "string", default: "2" },
      "latency-rate": { type: "string", default: "500" },
      "latency-events": { type: "string", default: "10000" },
      only: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
  const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379/5";
  const events = Number(values.events);
  const bytes = Number(values.bytes);
  const runs = Number(values.runs);
  const threads = Number(values.threads);
  const prefix = `bench_kafka_${Date.now().toString(36)}`;
  const out: Record<string, unknown> = {
    events,
    bytes,
    runs,
    threads,
    load: (await Bun.file("/proc/loadavg").text()).trim(),
  };

  if (values.only !== "latency") {
    const topic = `${prefix}_tput`;
    await fillTopic({ brokers, topic, count: events, bytes });
    const consumeOnly: number[] = [];
    const ingest: number[] = [];
    const ratios: number[] = [];
    try {
      for (let run = 0; run < runs; run++) {
        const c = await consumeOnlyRate({ brokers, topic, count: events });
        const i = await ingestRate({ brokers, topic, count: events, redisUrl, threads });
        consumeOnly.push(Math.round(c));
        ingest.push(Math.round(i));
        ratios.push(i / c);
        if (!values.json)
          console.log(
            `run ${run + 1}: consume-only ${c.toFixed(0)}/s, ingest ${i.toFixed(0)}/s (${((i / c) * 100).toFixed(0)}%)`,
          );
      }
    } finally {
      await deleteTopic(brokers, topic);
    }
    out.throughput = {
      consume_only: consumeOnly,
      ingest,
      median_consume_only: median(consumeOnly),
      median_ingest: median(ingest),
      median_ratio: Math.round(median(ratios) * 1000) / 1000,
    };
  }
  if (values.only !== "throughput") {
    const reports: LatencyReport[] = [];
    for (let run = 0; run < runs; run++) {
      const report = await eventToResultLatency({
        brokers,
        prefix: `${prefix}_lat${run}`,
        rate: Number(values["latency-rate"]),
        count: Number(values["latency-events"]),
        bytes,
        redisUrl,
        threads,
      });
      reports.push(report);
      if (!values.json) console.log(`latency run ${run + 1}: ${JSON.stringify(report)}`);
    }
    out.latency = {
      runs: reports,
      median_p50: median(reports.map((r) => r.p50)),
      median_p95: median(reports.map((r) => r.p95)),
      median_p99: median(reports.map((r) => r.p99)),
    };
  }
  console.log(JSON.stringify(out, null, values.json ? 0 : 2));
  process.exit(0);
}
