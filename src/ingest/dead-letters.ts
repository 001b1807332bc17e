/**
 * Events that cannot become tasks (not JSON, failing the schema, or of a
 * task type no worker has a prompt for) go to the DLQ topic with headers that say why and where they came from, so an
 * operator can fix and replay them. They are sent before the batch's offsets
 * are committed: a crash in between re-sends them (at-least-once), it never
 * loses one.
 *
 * A letter the broker cannot take whole goes as a reference instead (reason
 * `too_large`): a JSON value with the source topic, partition, offset, the
 * size and sha256 of the value, the original reason, and its first
 * REFERENCE_HEAD_BYTES. The broker takes a value up to its message.max.bytes
 * (default 1,048,588 bytes per record batch); the same value with the DLQ's
 * headers did not fit, the send failed for good, and the partition stopped
 * there (issue 13 §1). Decided up front from the letter's estimated size
 * against DLQ_SAFE_BYTES, and again when the broker still refuses a send as
 * too large (a DLQ topic with a smaller max.message.bytes): then each letter
 * of that send goes alone, whole if it fits, else as a reference, else as a
 * reference without its head.
 */
import { createHash } from "node:crypto";
import type Redis from "ioredis";
import type { IHeaders, Message, Producer } from "kafkajs";
import { metricsKeys, RECENT_DEAD_LETTERS } from "../metrics/keys";
import type { EventOrigin, RejectReason } from "./event-schema";

export interface DeadLetter {
  origin: EventOrigin;
  value: Buffer | null;
  headers: IHeaders | undefined;
  /** Why the event is here: rejected by the schema, or its batch kept failing (batch-handler.ts). */
  reason: RejectReason | "unprocessable";
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

/** The x-dlq-reason of a letter sent as a reference to its event. */
export const TOO_LARGE_REASON = "too_large";

/**
 * Most bytes of one send to the DLQ (a record batch), about 150 kB under the
 * broker's default message.max.bytes: room for the estimate's error and for
 * the record batch's own framing. A Kafka setting of the DLQ topic; a
 * constant until the config module has a variable for it.
 */
export const DLQ_SAFE_BYTES = 900_000;
/** How much of the value a reference carries, so an operator sees what the event looked like. */
const REFERENCE_HEAD_BYTES = 4096;
/** Original headers above this size are left out of a reference (their names and size are kept). */
const REFERENCE_HEADERS_BYTES = 16_384;
/** Per record and per header: lengths, attributes, deltas (varints), generously. */
const RECORD_OVERHEAD_BYTES = 64;
const HEADER_OVERHEAD_BYTES = 10;

export interface DeadLetterSink {
  send(letters: readonly DeadLetter[]): Promise<void>;
}

export function createDeadLetterSink(deps: {
  producer: Pick<Producer, "send">;
  topic: string;
  /** Most estimated bytes per send; tests lower it. */
  safeBytes?: number;
  /**
   * Where the latest letters are listed for /metrics and the operator console (`recent_dead_letters`):
   * one more Redis round trip per send, only for the chunks that have letters. Best effort: the letters are
   * on the broker already, and failing the send for the list would send them again.
   */
  recent?: { redis: Pick<Redis, "pipeline">; onError?: (error: unknown) => void };
}): DeadLetterSink {
  const { producer, topic, safeBytes = DLQ_SAFE_BYTES, recent } = deps;
  // acks=-1: the letter is on the broker before the source offset is committed.
  const produce = (messages: Message[]) => producer.send({ topic, acks: -1, messages });

  /** One letter alone, as whole as the broker takes it. */
  const sendAlone = async (letter: DeadLetter, failedAt: string) => {
    const whole = wholeMessage(letter, failedAt);
    const forms = sizeOf(whole) <= safeBytes ? [whole] : [];
    forms.push(referenceMessage(letter, failedAt, true), referenceMessage(letter, failedAt, false));
    for (const [i, message] of forms.entries()) {
      try {
        await produce([message]);
        return;
      } catch (error) {
        if (!isTooLarge(error) || i === forms.length - 1) throw error;
      }
    }
  };

  return {
    async send(letters) {
      if (letters.length === 0) return;
      const failedAt = new Date().toISOString();
      const messages = letters.map((letter) => {
        const whole = wholeMessage(letter, failedAt);
        return sizeOf(whole) <= safeBytes ? whole : referenceMessage(letter, failedAt, true);
      });
      // Sends that each fit: kafkajs puts a send's messages for one partition in one record batch.
      let from = 0;
      while (from < messages.length) {
        let to = from + 1;
        let bytes = sizeOf(messages[from] as Message);
        while (to < messages.length && bytes + sizeOf(messages[to] as Message) <= safeBytes) {
          bytes += sizeOf(messages[to] as Message);
          to++;
        }
        try {
          await produce(messages.slice(from, to));
        } catch (error) {
          if (!isTooLarge(error)) throw error;
          for (const letter of letters.slice(from, to)) await sendAlone(letter, failedAt);
        }
        from = to;
      }
      if (recent) await listRecent(recent, letters, failedAt);
    },
  };
}

/** Pushes the letters (newest first) onto the capped list of the latest ones, with why and where from. */
async function listRecent(
  recent: NonNullable<Parameters<typeof createDeadLetterSink>[0]["recent"]>,
  letters: readonly DeadLetter[],
  failedAt: string,
): Promise<void> {
  const key = metricsKeys().deadLetters;
  const entries = letters.map((letter) =>
    JSON.stringify({
      at: failedAt,
      reason: letter.reason,
      detail: letter.detail.slice(0, 300),
      topic: letter.origin.topic,
      partition: letter.origin.partition,
      offset: letter.origin.offset,
    }),
  );
  try {
    await recent.redis
      .pipeline()
      .lpush(key, ...entries)
      .ltrim(key, 0, RECENT_DEAD_LETTERS - 1)
      .exec();
  } catch (error) {
    recent.onError?.(error);
  }
}

function sourceHeaders(letter: DeadLetter, failedAt: string): IHeaders {
  return {
    [DLQ_HEADERS.topic]: letter.origin.topic,
    [DLQ_HEADERS.partition]: String(letter.origin.partition),
    [DLQ_HEADERS.offset]: letter.origin.offset,
    [DLQ_HEADERS.failedAt]: failedAt,
  };
}

function wholeMessage(letter: DeadLetter, failedAt: string): Message {
  return {
    key: letter.origin.key ?? null,
    value: letter.value,
    headers: {
      ...letter.headers,
      [DLQ_HEADERS.reason]: letter.reason,
      [DLQ_HEADERS.detail]: letter.detail.slice(0, 1000),
      ...sourceHeaders(letter, failedAt),
    },
  };
}

function referenceMessage(letter: DeadLetter, failedAt: string, withHead: boolean): Message {
  const value = letter.value ?? Buffer.alloc(0);
  const headersBytes = headersSize(letter.headers);
  const keepHeaders = withHead && headersBytes <= REFERENCE_HEADERS_BYTES;
  const key = letter.origin.key;
  const keyBytes = key === undefined ? 0 : Buffer.byteLength(key);
  const reference = {
    topic: letter.origin.topic,
    partition: letter.origin.partition,
    offset: letter.origin.offset,
    key_bytes: keyBytes,
    size_bytes: value.length,
    sha256: createHash("sha256").update(value).digest("hex"),
    reason: letter.reason,
    detail: letter.detail.slice(0, 1000),
    headers: Object.keys(letter.headers ?? {}),
    headers_bytes: headersBytes,
    headers_kept: keepHeaders,
    ...(withHead ? { head_base64: value.subarray(0, REFERENCE_HEAD_BYTES).toString("base64") } : {}),
  };
  return {
    // A key of its own size would defeat the point; the DLQ is read in order, not by key.
    key: key !== undefined && keyBytes <= 1024 ? key : null,
    value: JSON.stringify(reference),
    headers: {
      ...(keepHeaders ? letter.headers : {}),
      [DLQ_HEADERS.reason]: TOO_LARGE_REASON,
      [DLQ_HEADERS.detail]: `the event (${value.length} bytes, reason ${letter.reason}) does not fit in the DLQ: this is a reference to it`,
      ...sourceHeaders(letter, failedAt),
    },
  };
}

function byteLength(value: Buffer | string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === "string" ? Buffer.byteLength(value) : value.length;
}

function headersSize(headers: IHeaders | undefined): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(headers ?? {})) {
    const values = Array.isArray(value) ? value : [value];
    for (const one of values) bytes += Buffer.byteLength(name) + byteLength(one) + HEADER_OVERHEAD_BYTES;
  }
  return bytes;
}

/** An estimate of the bytes a message takes in a record batch, on the high side. */
function sizeOf(message: Message): number {
  return RECORD_OVERHEAD_BYTES + byteLength(message.key) + byteLength(message.value) + headersSize(message.headers);
}

/** Whether the broker refused a send for its size (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE), however kafkajs wrapped it. */
export function isTooLarge(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (type === "MESSAGE_TOO_LARGE" || type === "RECORD_LIST_TOO_LARGE") return true;
    if (/larger than the max message size|batch larger than the configured segment size/.test(e.message)) return true;
  }
  return false;
}
