/**
 * Entry of one Kafka consumer thread (started by the consumer pool): a
 * kafkajs consumer in the group, its own Redis connection and DLQ producer,
 * so the hot path (fetch → validate → enqueue → commit) never crosses to the
 * main thread. The main thread receives stats every STATS_INTERVAL_MS and
 * sends pause, resume and stop.
 */

import { parentPort, threadId, workerData } from "node:worker_threads";
import { Partitioners } from "kafkajs";
import { loadConfig } from "../config";
import { errorMessage } from "../errors";
import { loadPrompts } from "../llm/prompts";
import { createLogger } from "../log";
import { connectRedis } from "../redis/client";
import { createBatchHandler } from "./batch-handler";
import type {
  ConsumerThreadData,
  FromConsumerThread,
  IngestDeltas,
  PartitionLag,
  ToConsumerThread,
} from "./consumer-protocol";
import { createDeadLetterSink } from "./dead-letters";
import { createIdempotentEnqueuer } from "./idempotent-enqueue";
import { createKafka } from "./kafka";

const STATS_INTERVAL_MS = 500;
const KAFKA_EVENTS_QUEUE = "kafka_events";
/**
 * kafkajs heartbeats only between fetches, and a fetch lasts up to maxWaitTimeInMs: a paused
 * consumer (backpressure) sleeps that long, an idle one waits that long on the broker. With the
 * 5 s default a member learnt of a rebalance, or of its own stop, only up to 5 s late; a stopping
 * thread that sees a rebalance first rejoins it (kafkajs re-joins after stop(), tulios/kafkajs#1571),
 * and waiting on such members it outlived the pool's 10 s stop deadline: killed without leaving the
 * group, the others then waited a whole session timeout before taking its partitions.
 */
const FETCH_MAX_WAIT_MS = 1000;

const port = parentPort;
if (!port) throw new Error("consumer-thread.ts runs as a worker thread of the consumer pool");
const { threadIndex, env } = workerData as ConsumerThreadData;
const send = (message: FromConsumerThread) => port.postMessage(message);

const config = loadConfig({ ...process.env, ...env });
const logger = createLogger({
  level: config.logLevel,
  base: { component: "kafka-consumer", thread: threadIndex, thread_id: threadId },
});

let deltas: IngestDeltas = { consumed: 0, enqueued: 0, duplicates: 0, dead_lettered: 0, skipped: 0, batches: 0 };
let lags = new Map<string, PartitionLag>();
let batchMs: number[] = [];

try {
  const redis = await connectRedis(config.redisUrl);
  const kafka = createKafka(config.kafka, logger, {
    clientId: `ai-eventstream-consumer-${threadIndex}`,
    // Reconnection with backoff when the broker goes away: kafkajs retries each request with
    // exponential backoff, and restarts the consumer after a retriable crash.
    retry: { initialRetryTime: 300, maxRetryTime: 10_000, retries: 10 },
  });
  const heartbeatInterval = Math.max(100, Math.floor(config.kafka.sessionTimeoutMs / 10));
  const consumer = kafka.consumer({
    groupId: config.kafka.groupId,
    sessionTimeout: config.kafka.sessionTimeoutMs,
    heartbeatInterval,
    maxWaitTimeInMs: Math.min(FETCH_MAX_WAIT_MS, heartbeatInterval),
    maxBytesPerPartition: config.kafka.maxBytesPerPartition,
  });
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const handler = createBatchHandler({
    enqueuer: createIdempotentEnqueuer({
      redis,
      queue: KAFKA_EVENTS_QUEUE,
      retries: config.worker.retries,
      backoffMs: config.worker.backoffMs,
      markerTtlSeconds: config.kafka.dedupTtlSeconds,
    }),
    deadLetters: createDeadLetterSink({
      producer,
      topic: config.kafka.dlqTopic,
      recent: {
        redis,
        onError: (error) => logger.warn({ error: errorMessage(error) }, "listing the latest dead letters failed"),
      },
    }),
    logger,
    chunkSize: config.kafka.batchSize,
    taskTypes: new Set(Object.keys(loadPrompts(config.promptsFile))),
    webhooks: { enabled: config.webhooks.secret !== undefined, allowPrivate: config.webhooks.allowPrivate },
    ...(config.kafka.tenant ? { tenant: config.kafka.tenant } : {}),
    highWatermark: config.kafka.queueHighWatermark,
    onHighWatermark: (waiting) => {
      // Pause now, before kafkajs hands over the next batch; the pool's controller owns the resume.
      consumer.pause([{ topic: config.kafka.topicIn }]);
      send({ type: "high_watermark", thread: threadIndex, waiting });
    },
    onOutcome: (topic, partition, outcome) => {
      deltas.consumed += outcome.consumed;
      deltas.enqueued += outcome.enqueued;
      deltas.duplicates += outcome.duplicates;
      deltas.dead_lettered += outcome.dead_lettered;
      deltas.skipped += outcome.skipped;
      deltas.batches++;
      batchMs.push(outcome.ms);
      if (outcome.committed !== undefined) {
        lags.set(`${topic}:${partition}`, {
          topic,
          partition,
          lag: outcome.lag,
          committed: outcome.committed,
          at: Date.now(),
        });
      }
    },
  });

  const flushStats = () => {
    if (deltas.batches === 0 && lags.size === 0) return;
    send({ type: "stats", thread: threadIndex, deltas, lags: [...lags.values()], batch_ms: batchMs });
    deltas = { consumed: 0, enqueued: 0, duplicates: 0, dead_lettered: 0, skipped: 0, batches: 0 };
    lags = new Map();
    batchMs = [];
  };
  const statsTimer = setInterval(flushStats, STATS_INTERVAL_MS);

  consumer.on(consumer.events.CRASH, ({ payload }) => {
    // kafkajs restarts by itself after a retriable crash; otherwise the pool restarts the thread.
    send({ type: "error", thread: threadIndex, message: errorMessage(payload.error), fatal: !payload.restart });
    if (!payload.restart) process.exit(1);
  });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    logger.info({ member: payload.memberId, assignment: payload.memberAssignment }, "joined the consumer group");
    const partitions = Object.values(payload.memberAssignment).reduce((sum, list) => sum + list.length, 0);
    send({ type: "assigned", thread: threadIndex, partitions, assignment: payload.memberAssignment });
  });

  let stopping = false;
  port.on("message", (message: ToConsumerThread) => {
    if (message.type === "pause") {
      logger.info({ reason: message.reason }, "pausing consumption");
      consumer.pause([{ topic: config.kafka.topicIn }]);
    } else if (message.type === "resume") {
      logger.info("resuming consumption");
      consumer.resume([{ topic: config.kafka.topicIn }]);
    } else if (message.type === "stop") {
      if (stopping) return;
      stopping = true;
      void (async () => {
        // disconnect() waits for the batch in progress (which commits what it enqueued) and leaves the group.
        await consumer
          .disconnect()
          .catch((error: unknown) => logger.warn({ error: errorMessage(error) }, "consumer disconnect failed"));
        await producer.disconnect().catch(() => {});
        clearInterval(statsTimer);
        flushStats();
        await redis.quit().catch(() => redis.disconnect());
        send({ type: "stopped", thread: threadIndex });
        port.close();
      })();
    }
  });

  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topic: config.kafka.topicIn, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: config.kafka.partitionsConcurrently,
    eachBatch: handler,
  });
  send({ type: "ready", thread: threadIndex });
} catch (error) {
  send({ type: "error", thread: threadIndex, message: errorMessage(error), fatal: true });
  logger.flush();
  process.exit(1);
}
