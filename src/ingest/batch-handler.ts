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
 *
 * A chunk whose enqueue or dead letters fail for a reason other than an
 * outage (a poison chunk: a letter the broker refuses, a job Redis refuses)
 * is tried `attempts` times with a growing backoff, then taken apart: each
 * event of the failed half goes alone, an event that still fails goes to the
 * DLQ as `unprocessable`, and one the DLQ refuses too is skipped and counted
 * (`skipped`), so the partition moves on. It used to throw, the thread died
 * and was restarted on the same batch for ever (issue 13 §1). An outage
 * (Redis or the broker away) is not the events' fault: it throws as before,
 * nothing is committed, and kafkajs retries until the service is back.
 */
import type { EachBatchPayload, KafkaMessage } from "kafkajs";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import { isRedisUnavailable } from "../redis/client";
import type { TaskJob } from "../task/contract";
import { retryDelay, sleep } from "../util/backoff";
import type { DeadLetter, DeadLetterSink } from "./dead-letters";
import { type EventOrigin, type EventWebhooks, parseEvent } from "./event-schema";
import type { BatchEnqueueResult, IdempotentEnqueuer } from "./idempotent-enqueue";

export interface BatchOutcome {
  consumed: number;
  enqueued: number;
  duplicates: number;
  dead_lettered: number;
  /** Events neither enqueued nor dead-lettered: their chunk kept failing and the DLQ refused them too. */
  skipped: number;
  committed: string | undefined;
  /** Messages left after the committed offset, as of the batch's high watermark. */
  lag: number;
  ms: number;
}

/** Tries of a failing chunk before it is taken apart: about 3.5 s of backoff in all. */
const CHUNK_ATTEMPTS = 4;
const CHUNK_BACKOFF_MS = 500;
const CHUNK_BACKOFF_MAX_MS = 8000;

interface Job {
  job: TaskJob;
  origin: EventOrigin;
  message: KafkaMessage;
}

interface Settled {
  result: BatchEnqueueResult;
  deadLettered: number;
  skipped: number;
}

/**
 * Whether an error means a service is away rather than that the events are at fault: Redis not answering,
 * or kafkajs giving up on an error it retries (broker down, leader moving, timeouts).
 */
export function isOutage(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (isRedisUnavailable(e)) return true;
    if (e.name === "KafkaJSNumberOfRetriesExceeded" || e.name === "KafkaJSConnectionError") return true;
    if (e.name.startsWith("KafkaJS") && (e as { retriable?: unknown }).retriable === true) return true;
  }
  return false;
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
  /** Whether events may carry a callback_url, and its address rules; absent: a callback_url is dead-lettered. */
  webhooks?: EventWebhooks;
  /** The tenant that owns the events' tasks (KAFKA_TENANT); absent: none. */
  tenant?: string;
  /** Waiting jobs at which the batch stops and onHighWatermark is called; 0: never. */
  highWatermark?: number;
  onHighWatermark?: (waiting: number) => void;
  onOutcome: (topic: string, partition: number, outcome: BatchOutcome) => void;
  now?: () => number;
  /** Tries of a failing chunk before it is taken apart event by event. */
  attempts?: number;
  /** Backoff of the first retry of a chunk; it doubles with each (with jitter), up to 8 s. */
  backoffMs?: number;
}): (payload: BatchPayload) => Promise<void> {
  const { enqueuer, deadLetters, logger, chunkSize, onOutcome, now = Date.now, highWatermark = 0 } = deps;
  const { attempts = CHUNK_ATTEMPTS, backoffMs = CHUNK_BACKOFF_MS } = deps;

  /**
   * Makes a chunk's jobs and dead letters durable (both before the commit; independent, so they overlap),
   * retrying the half that failed; undefined when the consumer stops or loses the partition meanwhile.
   */
  const settle = async (
    jobs: readonly Job[],
    letters: readonly DeadLetter[],
    ctx: { log: Logger } & Pick<BatchPayload, "heartbeat" | "isRunning" | "isStale">,
  ): Promise<Settled | undefined> => {
    let result: BatchEnqueueResult | undefined;
    let lettersSent = letters.length === 0;
    for (let attempt = 1; ; attempt++) {
      const [enqueued, sent] = await Promise.allSettled([
        result ?? enqueuer.enqueueBatch(jobs.map((j) => j.job)),
        lettersSent ? undefined : deadLetters.send(letters),
      ]);
      if (enqueued.status === "fulfilled") result = enqueued.value;
      if (sent.status === "fulfilled") lettersSent = true;
      const errors = [enqueued, sent].flatMap((o) => (o.status === "rejected" ? [o.reason as unknown] : []));
      if (errors.length === 0 && result) return { result, deadLettered: letters.length, skipped: 0 };
      const outage = errors.find(isOutage);
      if (outage !== undefined) throw outage;
      if (attempt >= attempts) break;
      const delay = retryDelay(attempt, backoffMs, CHUNK_BACKOFF_MAX_MS);
      ctx.log.warn(
        {
          attempt,
          retry_in_ms: delay,
          error: errorMessage(errors[0]),
          first_offset: (jobs[0] ?? letters[0])?.origin.offset,
        },
        "a chunk failed; retrying it",
      );
      await sleep(delay);
      if (!ctx.isRunning() || ctx.isStale()) return undefined;
      await ctx.heartbeat();
    }
    ctx.log.error(
      { attempts, jobs_failed: !result, letters_failed: !lettersSent },
      "a chunk kept failing; taking it apart event by event",
    );
    const settled: Settled = {
      result: result ?? { added: 0, duplicates: 0, duplicateIds: [], waiting: 0 },
      deadLettered: lettersSent ? letters.length : 0,
      skipped: 0,
    };
    const deadLetterAlone = async (letter: DeadLetter) => {
      try {
        await deadLetters.send([letter]);
        settled.deadLettered++;
      } catch (error) {
        if (isOutage(error)) throw error;
        settled.skipped++;
        ctx.log.error(
          { offset: letter.origin.offset, reason: letter.reason, error: errorMessage(error) },
          "the DLQ refused an event of a failing chunk: skipped",
        );
      }
    };
    if (!result) {
      for (const { job, origin, message } of jobs) {
        try {
          const one = await enqueuer.enqueueBatch([job]);
          settled.result.added += one.added;
          settled.result.duplicates += one.duplicates;
          settled.result.duplicateIds.push(...one.duplicateIds);
          settled.result.waiting = one.waiting;
        } catch (error) {
          if (isOutage(error)) throw error;
          const detail = `enqueue failed ${attempts + 1} times: ${errorMessage(error)}`;
          await deadLetterAlone({
            origin,
            value: message.value,
            headers: message.headers,
            reason: "unprocessable",
            detail,
          });
        }
      }
    }
    if (!lettersSent) for (const letter of letters) await deadLetterAlone(letter);
    return settled;
  };

  return async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
    const { topic, partition } = batch;
    const log = logger.child({ topic, partition });
    const started = performance.now();
    const outcome: BatchOutcome = {
      consumed: 0,
      enqueued: 0,
      duplicates: 0,
      dead_lettered: 0,
      skipped: 0,
      committed: undefined,
      lag: 0,
      ms: 0,
    };
    const messages = batch.messages;
    try {
      for (let from = 0; from < messages.length; from += chunkSize) {
        if (!isRunning() || isStale()) break;
        const chunk = messages.slice(from, from + chunkSize);
        const jobs: Job[] = [];
        const letters: DeadLetter[] = [];
        const acceptedAt = now();
        for (const message of chunk) {
          const origin = { topic, partition, offset: message.offset, key: message.key?.toString("utf8") };
          const parsed = parseEvent(message.value, origin, acceptedAt, deps.taskTypes, deps.webhooks, deps.tenant);
          if (parsed.ok) jobs.push({ job: parsed.job, origin, message });
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
        const settled = await settle(jobs, letters, { log, heartbeat, isRunning, isStale });
        if (!settled) break;
        const { result } = settled;
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
        outcome.dead_lettered += settled.deadLettered;
        outcome.skipped += settled.skipped;
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
