/** Messages between the main thread and the Kafka consumer threads (structured-clone safe). */

/** What a consumer thread needs; the rest of its settings come from loadConfig() in the thread. */
export interface ConsumerThreadData {
  threadIndex: number;
  /** Overrides for tests and benchmarks; the thread reads the environment otherwise. */
  env?: Record<string, string>;
}

/** Why consumption is paused; `operator`: POST /admin/kafka/pause (store/control.ts), which outranks the others. */
export type PauseReason = "operator" | "queue_high_watermark" | "llm_rate_limited";

export type ToConsumerThread = { type: "pause"; reason: PauseReason } | { type: "resume" } | { type: "stop" };

/** Counts since the thread's previous stats message: the main thread adds them up. */
export interface IngestDeltas {
  consumed: number;
  enqueued: number;
  duplicates: number;
  dead_lettered: number;
  /** Events of a chunk that kept failing that the DLQ refused too: neither enqueued nor dead-lettered. */
  skipped: number;
  batches: number;
}

export interface PartitionLag {
  topic: string;
  partition: number;
  /** Messages after the last committed offset, as of the batch's high watermark. */
  lag: number;
  committed: string;
  at: number;
}

export type FromConsumerThread =
  | { type: "ready"; thread: number }
  | { type: "stats"; thread: number; deltas: IngestDeltas; lags: PartitionLag[]; batch_ms: number[] }
  | { type: "error"; thread: number; message: string; fatal: boolean }
  /**
   * The thread (re)joined the group with this many partitions (0: none, e.g. more threads than partitions),
   * listed per topic in `assignment`: only their lag is reported.
   */
  | { type: "assigned"; thread: number; partitions: number; assignment: Record<string, number[]> }
  /** An enqueue left the queue at or over the high watermark: the thread paused itself, the pool should pause. */
  | { type: "high_watermark"; thread: number; waiting: number }
  | { type: "stopped"; thread: number };
