/**
 * Outcomes of Kafka events out to KAFKA_TOPIC_OUT, keyed like their input
 * event (so one user's results stay in order on one partition), batched:
 * outcomes handed over within lingerMs (or until maxBatch) leave in one
 * produce request. An outcome is a result (SUCCESS) or a final failure
 * (FAILURE, with the error GET /task/:id shows): without the failures a
 * producer never learnt what became of an event the provider refused (issue
 * 13 §5). publish() resolves once the broker has the batch, so the worker
 * acknowledges a job only after its outcome is out (at-least-once).
 */
import type { Message, Producer } from "kafkajs";
import { errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import type { TaskError, TaskJob, TaskResult } from "../task/contract";
import { createBatcher } from "../util/batcher";

/** How a task ended, as the results topic tells it. */
export type TaskOutcome = { status: "SUCCESS"; result: TaskResult } | { status: "FAILURE"; error: TaskError };

interface MessageHead {
  task_id: string;
  event_id?: string;
}
interface MessageSource {
  source: { topic: string; partition: number; offset: string };
}
/** A message's fields in this order: task_id, event_id?, status, result | error, source. */
export type ResultMessage = MessageHead & TaskOutcome & MessageSource;

export interface ResultPublisher {
  publish(job: TaskJob, outcome: TaskOutcome): Promise<void>;
  close(): Promise<void>;
}

export function createResultPublisher(deps: {
  producer: Pick<Producer, "send" | "disconnect">;
  topic: string;
  lingerMs: number;
  bus: EventBus;
  logger: Logger;
  maxBatch?: number;
}): ResultPublisher {
  const { producer, topic, lingerMs, bus, logger, maxBatch = 500 } = deps;
  const batcher = createBatcher<{ message: Message; failure: boolean }, void>({
    lingerMs,
    maxSize: maxBatch,
    run: async (items) => {
      const started = performance.now();
      const messages = items.map((item) => item.message);
      const failures = items.filter((item) => item.failure).length;
      try {
        await producer.send({ topic, acks: -1, messages });
      } catch (error) {
        bus.emit("ingest.results_out", { size: messages.length, failures, ms: performance.now() - started, ok: false });
        logger.warn({ topic, size: messages.length, error: errorMessage(error) }, "producing results failed");
        throw error;
      }
      bus.emit("ingest.results_out", { size: messages.length, failures, ms: performance.now() - started, ok: true });
      return messages.map(() => undefined);
    },
  });

  return {
    publish(job, outcome) {
      const event = job.event;
      const message: ResultMessage = {
        task_id: job.task_id,
        ...(event?.event_id === undefined ? {} : { event_id: event.event_id }),
        // Built field by field: a success message keeps its shape and order, and nothing else of a stored state leaks.
        ...(outcome.status === "SUCCESS"
          ? { status: "SUCCESS", result: outcome.result }
          : {
              status: "FAILURE",
              error: { code: outcome.error.code, message: outcome.error.message, retriable: outcome.error.retriable },
            }),
        source: { topic: event?.topic ?? "", partition: event?.partition ?? -1, offset: event?.offset ?? "" },
      };
      const value = JSON.stringify(message);
      return batcher.add({ message: { key: event?.key ?? null, value }, failure: outcome.status === "FAILURE" });
    },
    async close() {
      await batcher.flush();
      await producer.disconnect();
    },
  };
}
