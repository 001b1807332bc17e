/**
 * Events that cannot become tasks (not JSON, failing the schema, or of a
 * task type no worker has a prompt for) go to the DLQ topic with headers that say why and where they came from, so an
 * operator can fix and replay them. They are sent before the batch's offsets
 * are committed: a crash in between re-sends them (at-least-once), it never
 * loses one.
 */
import type { IHeaders, Producer } from "kafkajs";
import type { EventOrigin, RejectReason } from "./event-schema";

export interface DeadLetter {
  origin: EventOrigin;
  value: Buffer | null;
  headers: IHeaders | undefined;
  reason: RejectReason;
  detail: string;
}

export const DLQ_HEADERS = {
  reason: "x-dlq-reason",
  detail: "x-dlq-detail",
  topic: "x-source-topic",
  partition: "x-source-partition",
  offset: "x-source-offset",
  failedAt: "x-dlq-failed-at",
} as const;

export interface DeadLetterSink {
  send(letters: readonly DeadLetter[]): Promise<void>;
}

export function createDeadLetterSink(deps: { producer: Pick<Producer, "send">; topic: string }): DeadLetterSink {
  const { producer, topic } = deps;
  return {
    async send(letters) {
      if (letters.length === 0) return;
      const failedAt = new Date().toISOString();
      await producer.send({
        topic,
        // acks=-1: the letter is on the broker before the source offset is committed.
        acks: -1,
        messages: letters.map((letter) => ({
          key: letter.origin.key ?? null,
          value: letter.value,
          headers: {
            ...letter.headers,
            [DLQ_HEADERS.reason]: letter.reason,
            [DLQ_HEADERS.detail]: letter.detail.slice(0, 1000),
            [DLQ_HEADERS.topic]: letter.origin.topic,
            [DLQ_HEADERS.partition]: String(letter.origin.partition),
            [DLQ_HEADERS.offset]: letter.origin.offset,
            [DLQ_HEADERS.failedAt]: failedAt,
          },
        })),
      });
    },
  };
}
