/**
 * Wraps a worker's task processor so that the outcome of a Kafka event also
 * goes to KAFKA_TOPIC_OUT, without the pipeline knowing about Kafka: its
 * result, or its final failure with the error GET /task/:id shows (a producer
 * learns the fate of every event, issue 13 §5). A job is acknowledged only
 * once its outcome is on the topic: when producing fails the job fails and is
 * retried while retries remain, and the retry (which the task store refuses
 * to run twice) publishes the stored outcome instead. At-least-once: a crash
 * between produce and acknowledge may publish an outcome twice; a produce
 * that fails when no retry is left loses it from the topic, logged and counted
 * (results_unpublished), never silently.
 */

import { Partitioners } from "kafkajs";
import type { Config } from "../config";
import { errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import type { QueuedTask, TaskJobOptions, TaskProcessor } from "../pipeline/process-task";
import type { TaskState, TaskStore } from "../store/task-store";
import type { TaskResult } from "../task/contract";
import { createKafka } from "./kafka";
import { createResultPublisher, type ResultPublisher, type TaskOutcome } from "./result-producer";

/** What an earlier run stored as the task's end, if it ended. */
function outcomeOf(state: TaskState | undefined): TaskOutcome | undefined {
  if (state?.status === "SUCCESS" && state.result) return { status: "SUCCESS", result: state.result };
  if (state?.status === "FAILURE" && state.error) return { status: "FAILURE", error: state.error };
  return undefined;
}

export function withResultsOut(
  processTask: TaskProcessor,
  deps: { publisher: ResultPublisher; store: Pick<TaskStore, "get">; bus: EventBus; logger: Logger },
): TaskProcessor {
  const { publisher, store, bus, logger } = deps;

  /** Publishes, or says (log, counter) that the outcome is lost to the topic when no retry of the job is left. */
  const publish = async (job: QueuedTask, outcome: TaskOutcome) => {
    try {
      await publisher.publish(job.data, outcome);
    } catch (error) {
      if ((job.options as TaskJobOptions).retries === 0) unpublished(job, outcome.status, error);
      throw error;
    }
  };

  const unpublished = (job: QueuedTask, status: TaskOutcome["status"], error: unknown) => {
    bus.emit("ingest.results_unpublished", { task_id: job.data.task_id, status });
    logger.error(
      { task_id: job.data.task_id, event: job.data.event, status, error: errorMessage(error) },
      "a task's outcome could not be produced to the results topic and its job has no retry left; GET /task/:id has it",
    );
  };

  /**
   * After the processor threw: a final failure (retryOrFail left no retries: Bee-Queue fails a job for good
   * exactly when options.retries is 0) goes out with the error as stored. When it cannot go out, the job gets
   * back the retries it had before this attempt (retryOrFail zeroed them so that the task is not run again):
   * Bee-Queue then retries the job, the store refuses to run the FAILURE task, and the re-run publishes the
   * stored failure. Without retries to give back (they were used up), the failure is lost to the topic.
   */
  const publishFailure = async (job: QueuedTask, retriesBefore: number) => {
    const options = job.options as TaskJobOptions;
    if (options.retries !== 0) return;
    try {
      const outcome = outcomeOf(await store.get(job.data.task_id));
      if (outcome?.status !== "FAILURE") throw new Error("the task store holds no FAILURE for this task");
      await publisher.publish(job.data, outcome);
    } catch (error) {
      if (retriesBefore > 0) {
        options.retries = retriesBefore;
        logger.warn(
          { task_id: job.data.task_id, error: errorMessage(error) },
          "a final failure could not be produced to the results topic; the job is retried to publish it",
        );
      } else unpublished(job, "FAILURE", error);
    }
  };

  return async (job, queue): Promise<TaskResult | undefined> => {
    if (job.data.source !== "kafka" || job.data.event === undefined) return processTask(job, queue);
    const retriesBefore = (job.options as TaskJobOptions).retries;
    let result: TaskResult | undefined;
    try {
      result = await processTask(job, queue);
    } catch (error) {
      await publishFailure(job, retriesBefore);
      throw error;
    }
    if (result) {
      await publish(job, { status: "SUCCESS", result });
      return result;
    }
    // An earlier run finished the task (a crash after it was stored, or a retry to publish): publish what it stored.
    const outcome = outcomeOf(await store.get(job.data.task_id));
    if (outcome) {
      await publish(job, outcome);
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
