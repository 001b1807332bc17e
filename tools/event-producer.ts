/**
 * Sends events to a topic at a target rate, in batches, and reports what it
 * achieved: the engine of `bun run produce` and of the Kafka benchmark.
 */
import type { CompressionTypes, Producer } from "kafkajs";

export interface OutgoingEvent {
  key: string | null;
  value: string;
}

export interface ProduceReport {
  sent: number;
  seconds: number;
  /** Events per second achieved. */
  rate: number;
  /** Epoch ms each event was handed to the broker, by index (for latency measurement). */
  sentAt?: Float64Array;
}

export async function produceEvents(options: {
  producer: Pick<Producer, "send">;
  topic: string;
  events: Iterable<OutgoingEvent>;
  /** Events per second; 0 or undefined: as fast as the broker takes them. */
  rate?: number;
  batchSize?: number;
  compression?: CompressionTypes;
  onProgress?: (sent: number) => void;
  /** Records when each event was sent, for up to this many events. */
  recordTimesFor?: number;
}): Promise<ProduceReport> {
  const { producer, topic, events, rate = 0, onProgress, compression } = options;
  // At a fixed rate, batches of ~20 ms worth of events keep the pace smooth.
  const batchSize = options.batchSize ?? (rate > 0 ? Math.max(1, Math.min(1000, Math.round(rate / 50))) : 1000);
  const sentAt = options.recordTimesFor ? new Float64Array(options.recordTimesFor) : undefined;
  const started = performance.now();
  let sent = 0;
  let batch: OutgoingEvent[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    if (rate > 0) {
      // Pace: the batch leaves when the target rate allows its first event.
      const due = started + (sent / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await Bun.sleep(wait);
    }
    const now = Date.now();
    await producer.send({ topic, messages: batch, ...(compression === undefined ? {} : { compression }) });
    if (sentAt) for (let i = sent; i < Math.min(sent + batch.length, sentAt.length); i++) sentAt[i] = now;
    sent += batch.length;
    batch = [];
    onProgress?.(sent);
  };
  for (const event of events) {
    batch.push(event);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  const seconds = (performance.now() - started) / 1000;
  return { sent, seconds, rate: seconds > 0 ? sent / seconds : 0, ...(sentAt ? { sentAt } : {}) };
}
