/**
 * Wraps a worker's task processor so that the result of a Kafka event also
 * goes to KAFKA_TOPIC_OUT, without the pipeline knowing about Kafka. A job
 * is acknowledged only once its result is on the topic: when producing fails
 * the job fails and is retried, and the retry (which the task store refuses
 * to run twice) publishes the stored result instead. At-least-once: a crash
 * between produce and acknowledge may publish a result twice, never lose one.
 */

import { Partitioners } from "kafkajs";
import type { Config } from "../config";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import type { TaskProcessor } from "../pipeline/process-task";
import type { TaskStore } from "../store/task-store";
import type { TaskResult } from "../task/contract";
import { createKafka } from "./kafka";
import { createResultPublisher, type ResultPublisher } from "./result-producer";

export function withResultsOut(
  processTask: TaskProcessor,
  deps: { publisher: ResultPublisher; store: Pick<TaskStore, "get">; bus: EventBus },
): TaskProcessor {
  const { publisher, store, bus } = deps;
  return async (job, queue): Promise<TaskResult | undefined> => {
    const result = await processTask(job, queue);
    if (job.data.source !== "kafka" || job.data.event === undefined) return result;
    if (result) {
      await publisher.publish(job.data, result);
      return result;
    }
    // An earlier run finished the task (a crash after the result was stored): publish what it stored.
    const state = await store.get(job.data.task_id);
    if (state?.status === "SUCCESS" && state.result) {
      await publisher.publish(job.data, state.result);
      // The earlier run may have published it too: counted, as a possible duplicate on the topic.
      bus.emit("ingest.results_republished", { task_id: job.data.task_id });
    }
    return result;
  };
}

/** The producer-backed publisher of a worker process, or undefined when KAFKA_TOPIC_OUT is empty. */
export async function startResultPublisher(deps: {
  config: Config["kafka"];
  bus: EventBus;
  logger: Logger;
}): Promise<ResultPublisher | undefined> {
  const { config, bus, logger } = deps;
  if (!config.topicOut) return undefined;
  const kafka = createKafka(config, logger, { retry: { initialRetryTime: 300, maxRetryTime: 10_000, retries: 10 } });
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return createResultPublisher({
    producer,
    topic: config.topicOut,
    lingerMs: config.resultLingerMs,
    bus,
    logger: logger.child({ component: "results-out" }),
  });
}
