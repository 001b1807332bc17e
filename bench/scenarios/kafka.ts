/**
 * `bun bench kafka`: event produced to the input topic → its result
 * available, through Kafka ingestion (consumer threads, idempotent enqueue),
 * the queue, the workers and the LLM. One operation produces one event with
 * its own event_id (the task id) and waits for the result with
 * GET /task/:id?wait=; latency runs from the intended send time, as in every
 * open-loop scenario. The app the harness starts reads a topic of its own
 * (`bench-…`, deleted afterwards). Ingest throughput against a consume-only
 * kafkajs rate is `bun bench/kafka-ingest.ts`. With --redis-stats, what each
 * event cost Redis from consume to result (measure/redis-stats.ts).
 */
import { Partitioners } from "kafkajs";
import { kafkaClient, waitForConsumerGroup } from "../kafka-common";
import { groupCommitProducer, readResults } from "../kafka-results";
import { measureLoad, taskDrainMs } from "../load/measure-load";
import type { Operation } from "../load/open-loop";
import { createAppWindow } from "../measure/app-window";
import { countedOperation, redisWindowFor } from "../measure/redis-stats";
import { UsageError } from "../options";
import { resolveTarget } from "../targets/app-target";
import type { Scenario } from "./scenario";

const PARTITIONS = 6;

export const kafkaScenario: Scenario = {
  name: "kafka",
  description: "event produced → result, through Kafka ingestion and the whole pipeline",
  async run({ options, progress, signal }) {
    if (options.url) {
      // A running deployment reads its own KAFKA_TOPIC_IN: the bench's events and results topics would go unread.
      throw new UsageError("kafka starts the app itself (it gives it topics of its own): drop --url");
    }
    const prefix = `bench-${process.pid}-${Date.now().toString(36)}`;
    const topic = `${prefix}-in`;
    const topicOut = `${prefix}-out`;
    const kafka = kafkaClient(options.brokers, "bench-kafka-scenario");
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic, numPartitions: PARTITIONS },
        { topic: topicOut, numPartitions: PARTITIONS },
      ],
      waitForLeaders: true,
    });
    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    const target = await resolveTarget(options, progress, {
      roles: "api,consumer,worker",
      env: {
        KAFKA_BROKERS: options.brokers.join(","),
        KAFKA_TOPIC_IN: topic,
        KAFKA_GROUP_ID: `${prefix}-group`,
        KAFKA_TOPIC_OUT: topicOut,
      },
    });
    await waitForConsumerGroup(target.url, PARTITIONS);
    const results = await readResults(kafka, topicOut, `${prefix}-results`);
    const events = groupCommitProducer(producer, topic);
    let sequence = 0;
    const redis = redisWindowFor(options, target);
    const produceAndAwait: Operation = async () => {
      const id = `${prefix}-${sequence++}`;
      const sentAt = performance.now();
      // use_cache false: repeated texts would be answered by the cache, not the pipeline being measured.
      const value = JSON.stringify({ event_id: id, text: options.text, task_type: options.taskType, use_cache: false });
      const result = results.expect(id);
      try {
        await events.send({ key: `user-${sequence % 1000}`, value });
      } catch {
        result.catch(() => {}); // its wait ends with the reader
        return { ok: false, kind: "produce_failed", sentAt };
      }
      const status = await result.catch(() => "no_result");
      return status === "SUCCESS" ? { ok: true, sentAt } : { ok: false, kind: `task_${status.toLowerCase()}`, sentAt };
    };
    const operation = countedOperation(produceAndAwait, redis);
    const window = createAppWindow(target, redis);
    try {
      const measured = await measureLoad({
        drainMs: taskDrainMs(options),
        name: "event produced → result",
        unit: "events",
        operation,
        options,
        progress,
        signal,
        ...(target.pid === undefined ? {} : { targetPid: target.pid }),
        beforeMeasure: window.beforeMeasure,
        // Results for no waiting event: a duplicate (at-least-once) or a stray message; expected 0.
        afterMeasure: async () => ({ ...(await window.afterMeasure()), results_unexpected: results.unexpected }),
      });
      return { target: `${target.describe}; topic ${topic}`, ...measured };
    } finally {
      redis?.close();
      window.close();
      await results.stop().catch(() => {});
      await producer.disconnect().catch(() => {});
      await target.stop();
      await admin.deleteTopics({ topics: [topic, topicOut] }).catch(() => {});
      await admin.deleteGroups([`${prefix}-group`, `${prefix}-results`]).catch(() => {});
      await admin.disconnect();
    }
  },
};
