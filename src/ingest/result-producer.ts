/**
 * Results of Kafka events out to KAFKA_TOPIC_OUT, keyed like their input
 * event (so one user's results stay in order on one partition), batched:
 * results handed over within lingerMs (or until maxBatch) leave in one
 * produce request. publish() resolves once the broker has the batch, so the
 * worker acknowledges a job only after its result is out (at-least-once).
 */
import type { Message, Producer } from "kafkajs";
import { errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import type { TaskJob, TaskResult } from "../task/contract";
import { createBatcher } from "../util/batcher";

export interface ResultMessage {
  task_id: string;
  event_id?: string;
  status: "SUCCESS";
  result: TaskResult;
  source: { topic: string; partition: number; offset: string };
}

export interface ResultPublisher {
  publish(job: TaskJob, result: TaskResult): Promise<void>;
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
  const batcher = createBatcher<Message, void>({
    lingerMs,
    maxSize: maxBatch,
    run: async (messages) => {
      const started = performance.now();
      try {
        await producer.send({ topic, acks: -1, messages });
      } catch (error) {
        bus.emit("ingest.results_out", { size: messages.length, ms: performance.now() - started, ok: false });
        logger.warn({ topic, size: messages.length, error: errorMessage(error) }, "producing results failed");
        throw error;
      }
      bus.emit("ingest.results_out", { size: messages.length, ms: performance.now() - started, ok: true });
      return messages.map(() => undefined);
    },
  });

  return {
    publish(job, result) {
      const event = job.event;
      const message: ResultMessage = {
        task_id: job.task_id,
        ...(event?.event_id === undefined ? {} : { event_id: event.event_id }),
        status: "SUCCESS",
        result,
        source: { topic: event?.topic ?? "", partition: event?.partition ?? -1, offset: event?.offset ?? "" },
      };
      return batcher.add({ key: event?.key ?? null, value: JSON.stringify(message) });
    },
    async close() {
      await batcher.flush();
      await producer.disconnect();
    },
  };
}
