/**
 * The eachBatch of a consumer thread (auto-commit off). A fetched batch is
 * worked in chunks; for each chunk: parse and validate every event, send the
 * rejects to the DLQ, enqueue the valid ones with one pipelined round trip,
 * and only then resolve and commit the chunk's last offset. A crash at any
 * point re-delivers at most the uncommitted chunk, and the idempotent enqueue
 * turns every redelivery into a counted duplicate, never a second job.
 *
 * Between chunks it heartbeats (a long batch keeps the group membership) and
 * stops when the consumer is stopping or the partition was taken away by a
 * rebalance (isStale): what it committed stays, the rest goes to the new
 * owner. It also stops when the enqueue left the queue at or over the high
 * watermark (the enqueue script returns the waiting count, so this costs no
 * round trip): the rest of the batch is not resolved, so it is fetched again
 * after the resume. A fetched batch can hold thousands of events, and a
 * controller polling every 250 ms alone would let them all in at once.
 */
import type { EachBatchPayload, KafkaMessage } from "kafkajs";
import type { Logger } from "../log";
import type { TaskJob } from "../task/contract";
import type { DeadLetter, DeadLetterSink } from "./dead-letters";
import { parseEvent } from "./event-schema";
import type { IdempotentEnqueuer } from "./idempotent-enqueue";

export interface BatchOutcome {
  consumed: number;
  enqueued: number;
  duplicates: number;
  dead_lettered: number;
  committed: string | undefined;
  /** Messages left after the committed offset, as of the batch's high watermark. */
  lag: number;
  ms: number;
}

export type BatchPayload = Pick<
  EachBatchPayload,
  "batch" | "resolveOffset" | "heartbeat" | "commitOffsetsIfNecessary" | "isRunning" | "isStale"
>;

export function createBatchHandler(deps: {
  enqueuer: IdempotentEnqueuer;
  deadLetters: DeadLetterSink;
  logger: Logger;
  /** Most events per enqueue pipeline and commit. */
  chunkSize: number;
  /** Task types a worker has a prompt for; events of others are dead-lettered, as the API refuses them. */
  taskTypes?: ReadonlySet<string>;
  /** Waiting jobs at which the batch stops and onHighWatermark is called; 0: never. */
  highWatermark?: number;
  onHighWatermark?: (waiting: number) => void;
  onOutcome: (topic: string, partition: number, outcome: BatchOutcome) => void;
  now?: () => number;
}): (payload: BatchPayload) => Promise<void> {
  const { enqueuer, deadLetters, logger, chunkSize, onOutcome, now = Date.now, highWatermark = 0 } = deps;

  return async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
    const { topic, partition } = batch;
    const log = logger.child({ topic, partition });
    const started = performance.now();
    const outcome: BatchOutcome = {
      consumed: 0,
      enqueued: 0,
      duplicates: 0,
      dead_lettered: 0,
      committed: undefined,
      lag: 0,
      ms: 0,
    };
    const messages = batch.messages;
    try {
      for (let from = 0; from < messages.length; from += chunkSize) {
        if (!isRunning() || isStale()) break;
        const chunk = messages.slice(from, from + chunkSize);
        const jobs: TaskJob[] = [];
        const letters: DeadLetter[] = [];
        const acceptedAt = now();
        for (const message of chunk) {
          const origin = { topic, partition, offset: message.offset, key: message.key?.toString("utf8") };
          const parsed = parseEvent(message.value, origin, acceptedAt, deps.taskTypes);
          if (parsed.ok) jobs.push(parsed.job);
          else {
            log.warn(
              { offset: message.offset, event_id: parsed.event_id, reason: parsed.reason, detail: parsed.detail },
              "event rejected to the DLQ",
            );
            letters.push({
              origin,
              value: message.value,
              headers: message.headers,
              reason: parsed.reason,
              detail: parsed.detail,
            });
          }
        }
        // Both must be durable before the commit; they are independent, so they overlap.
        const [result] = await Promise.all([enqueuer.enqueueBatch(jobs), deadLetters.send(letters)]);
        if (result.duplicates > 0) {
          log.info({ duplicates: result.duplicates, first: result.duplicateIds[0] }, "redelivered events skipped");
        }
        const last = (chunk[chunk.length - 1] as KafkaMessage).offset;
        resolveOffset(last);
        const next = (BigInt(last) + 1n).toString();
        // The committed offset is the next one to read.
        await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: next }] }] });
        outcome.consumed += chunk.length;
        outcome.enqueued += result.added;
        outcome.duplicates += result.duplicates;
        outcome.dead_lettered += letters.length;
        outcome.committed = next;
        if (highWatermark > 0 && result.waiting >= highWatermark) {
          deps.onHighWatermark?.(result.waiting);
          break;
        }
        // Throws when the group is rebalancing: kafkajs rejoins, and what was committed above stays counted.
        await heartbeat();
      }
    } finally {
      if (outcome.committed !== undefined) {
        outcome.lag = Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(outcome.committed)));
      }
      outcome.ms = performance.now() - started;
      if (outcome.consumed > 0) onOutcome(topic, partition, outcome);
    }
  };
}
