/**
 * Results of Kafka events out to KAFKA_TOPIC_OUT, keyed like their input
 * event (so one user's results stay in order on one partition), batched:
 * results handed over within lingerMs (or until maxBatch) leave in one
 * produce request. publish() resolves once the broker has the batch, so the
 * worker acknowledges a job only after its result is out (at-least-once).
 */
import type { Producer } from "kafkajs";
import { errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import type { TaskJob, TaskResult } from "../task/contract";

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

interface Pending {
  key: string | null;
  value: string;
  resolve: () => void;
  reject: (error: unknown) => void;
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
  let buffer: Pending[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const inFlight = new Set<Promise<void>>();

  const send = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = buffer;
    buffer = [];
    if (batch.length === 0) return;
    const started = performance.now();
    const sending = producer
      .send({ topic, acks: -1, messages: batch.map(({ key, value }) => ({ key, value })) })
      .then(
        () => {
          bus.emit("ingest.results_out", { size: batch.length, ms: performance.now() - started, ok: true });
          for (const p of batch) p.resolve();
        },
        (error: unknown) => {
          bus.emit("ingest.results_out", { size: batch.length, ms: performance.now() - started, ok: false });
          logger.warn({ topic, size: batch.length, error: errorMessage(error) }, "producing results failed");
          for (const p of batch) p.reject(error);
        },
      )
      .finally(() => inFlight.delete(sending));
    inFlight.add(sending);
  };

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
      return new Promise<void>((resolve, reject) => {
        buffer.push({ key: event?.key ?? null, value: JSON.stringify(message), resolve, reject });
        if (buffer.length >= maxBatch) send();
        else timer ??= setTimeout(send, lingerMs);
      });
    },
    async close() {
      send();
      await Promise.allSettled([...inFlight]);
      await producer.disconnect();
    },
  };
}
