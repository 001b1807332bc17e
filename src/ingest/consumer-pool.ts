/**
 * The consumer role in the main thread: starts KAFKA_CONSUMER_THREADS
 * consumer threads, restarts one that dies (with backoff, reported as an
 * event), forwards pause/resume from the backpressure controller, adds up
 * their stats, and stops them gracefully (each finishes its batch, commits
 * and leaves the group).
 *
 * The restart backoff grows with the deaths in a row of a slot (0.4 s at
 * least, then 0.8, 1.6 ... up to 30 s) and resets only once a thread has
 * stayed up for STABLE_AFTER_MS. It used to reset whenever a thread said
 * ready, so one that died on its first batch after every start (a poison
 * event) was restarted every ~0.4 s for ever: 81 restarts in 45 s (issue 13
 * §1). Such a loop shows in status() (`looping`), which /health reports as
 * degraded.
 */
import { Worker } from "node:worker_threads";
import { errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import { retryDelay } from "../util/backoff";
import type {
  ConsumerThreadData,
  FromConsumerThread,
  IngestDeltas,
  PartitionLag,
  PauseReason,
  ToConsumerThread,
} from "./consumer-protocol";

export interface ConsumerPoolStatus {
  threads: number;
  alive: number;
  restarts: number;
  paused: PauseReason | undefined;
  /**
   * Partitions each thread holds since its last group join (-1: not joined
   * yet). A stable group has every partition of the topic assigned once.
   */
  assigned: number[];
  /** What this process's threads consumed and enqueued since it started (/metrics sums every process). */
  totals: IngestDeltas;
  /** Latest lag reported for each partition a thread holds now (a revoked partition's last figure is not). */
  lags: PartitionLag[];
  /**
   * Threads in a restart loop: died twice or more without staying up for
   * STABLE_AFTER_MS in between, with the deaths in a row.
   */
  looping: { thread: number; deaths: number }[];
}

export interface ConsumerPool {
  start(): Promise<void>;
  pause(reason: PauseReason): void;
  resume(): void;
  status(): ConsumerPoolStatus;
  /** Lag figures from elsewhere (the broker, read by the admin client); the newest per partition wins. */
  recordLags(lags: readonly PartitionLag[]): void;
  stop(timeoutMs: number): Promise<void>;
}

interface Slot {
  worker: Worker | undefined;
  ready: boolean;
  /** When the current thread said ready (performance.now()). */
  readyAt: number;
  assigned: number;
  /** `topic:partition` of what the thread holds since its last group join. */
  holds: Set<string>;
  /** Deaths in a row, each without the thread staying up STABLE_AFTER_MS before it. */
  failures: number;
  exited: Promise<void> | undefined;
}

/** A thread up this long is healthy again: its slot's restart backoff starts over. */
const STABLE_AFTER_MS = 60_000;
/** retryDelay's equal jitter makes the n-th delay of a row 0.4 s × 2^(n-1) to twice that. */
const RESTART_BASE_MS = 800;
const RESTART_MAX_MS = 30_000;

export function createConsumerPool(deps: {
  threads: number;
  /** Path of consumer-thread.ts. */
  entry: string;
  bus: EventBus;
  logger: Logger;
  env?: Record<string, string>;
  /** How long start() waits for every thread to join. */
  startTimeoutMs?: number;
  /** A thread found the queue at or over the high watermark after an enqueue (and paused itself). */
  onHighWatermark?: (waiting: number) => void;
}): ConsumerPool {
  const { threads, entry, bus, logger, env, startTimeoutMs = 30_000 } = deps;
  const slots: Slot[] = Array.from({ length: threads }, () => ({
    worker: undefined,
    ready: false,
    readyAt: 0,
    assigned: -1,
    holds: new Set<string>(),
    failures: 0,
    exited: undefined,
  }));
  const deathsInARow = (slot: Slot) =>
    slot.ready && performance.now() - slot.readyAt >= STABLE_AFTER_MS ? 0 : slot.failures;
  const lags = new Map<string, PartitionLag>();
  let paused: PauseReason | undefined;
  let stopping = false;
  const totals: IngestDeltas = { consumed: 0, enqueued: 0, duplicates: 0, dead_lettered: 0, skipped: 0, batches: 0 };
  let restarts = 0;

  const recordLags = (reported: readonly PartitionLag[]) => {
    for (const lag of reported) {
      const key = `${lag.topic}:${lag.partition}`;
      if ((lags.get(key)?.at ?? 0) <= lag.at) lags.set(key, lag);
    }
  };

  const post = (slot: Slot, message: ToConsumerThread) => slot.worker?.postMessage(message);

  const spawn = (index: number): void => {
    const slot = slots[index] as Slot;
    const log = logger.child({ thread: index });
    const worker = new Worker(entry, {
      workerData: { threadIndex: index, ...(env ? { env } : {}) } satisfies ConsumerThreadData,
    });
    slot.worker = worker;
    slot.ready = false;
    worker.on("message", (message: FromConsumerThread) => {
      switch (message.type) {
        case "ready":
          // Not a reset of the backoff: a thread that dies on its first batch says ready first (see the header).
          slot.ready = true;
          slot.readyAt = performance.now();
          // A thread that (re)joins while the pool is paused starts paused.
          if (paused) post(slot, { type: "pause", reason: paused });
          bus.emit("ingest.thread", { thread: index, state: "ready" });
          break;
        case "stats":
          recordLags(message.lags);
          for (const name of Object.keys(totals) as (keyof IngestDeltas)[]) totals[name] += message.deltas[name];
          bus.emit("ingest.batch", { thread: index, ...message.deltas, batch_ms: message.batch_ms });
          break;
        case "assigned":
          slot.assigned = message.partitions;
          slot.holds = new Set(
            Object.entries(message.assignment).flatMap(([topic, partitions]) => partitions.map((p) => `${topic}:${p}`)),
          );
          break;
        case "high_watermark":
          // Without a controller nobody would ever resume the thread: let it go on.
          if (deps.onHighWatermark) deps.onHighWatermark(message.waiting);
          else if (!paused) post(slot, { type: "resume" });
          break;
        case "error":
          log.error({ error: message.message, fatal: message.fatal }, "consumer thread error");
          break;
        case "stopped":
          // Committed and out of the group: nothing left worth waiting for (kafkajs may hold timers).
          void worker.terminate();
          break;
      }
    });
    worker.on("error", (error) => log.error({ error: errorMessage(error) }, "consumer thread crashed"));
    slot.exited = new Promise<void>((resolve) => {
      worker.once("exit", (code) => {
        slot.failures = deathsInARow(slot) + 1;
        slot.worker = undefined;
        slot.ready = false;
        slot.assigned = -1;
        slot.holds = new Set();
        resolve();
        if (stopping) return;
        restarts++;
        const delay = retryDelay(slot.failures, RESTART_BASE_MS, RESTART_MAX_MS);
        log.error(
          { code, deaths_in_a_row: slot.failures, restart_in_ms: Math.round(delay) },
          "consumer thread died; restarting it",
        );
        bus.emit("ingest.thread", { thread: index, state: "died" });
        setTimeout(() => {
          if (!stopping) spawn(index);
        }, delay).unref();
      });
    });
  };

  return {
    async start() {
      for (let i = 0; i < threads; i++) spawn(i);
      const deadline = Date.now() + startTimeoutMs;
      while (!slots.every((slot) => slot.ready)) {
        if (Date.now() > deadline)
          throw new Error(`the Kafka consumer threads did not join within ${startTimeoutMs} ms`);
        await Bun.sleep(20);
      }
    },
    pause(reason) {
      if (paused === reason) return;
      paused = reason;
      for (const slot of slots) post(slot, { type: "pause", reason });
      bus.emit("ingest.paused", { reason });
    },
    resume() {
      if (!paused) return;
      paused = undefined;
      for (const slot of slots) post(slot, { type: "resume" });
      bus.emit("ingest.resumed", {});
    },
    status() {
      const held = new Set(slots.flatMap((slot) => [...slot.holds]));
      for (const key of lags.keys()) if (!held.has(key)) lags.delete(key);
      return {
        threads,
        alive: slots.filter((slot) => slot.ready).length,
        restarts,
        paused,
        assigned: slots.map((slot) => slot.assigned),
        totals: { ...totals },
        lags: [...lags.values()].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition),
        looping: slots.flatMap((slot, thread) => {
          const deaths = deathsInARow(slot);
          return !stopping && deaths >= 2 ? [{ thread, deaths }] : [];
        }),
      };
    },
    recordLags,
    async stop(timeoutMs) {
      stopping = true;
      const exits = slots.map(async (slot) => {
        const worker = slot.worker;
        if (!worker) return;
        post(slot, { type: "stop" });
        const timer = setTimeout(() => void worker.terminate(), timeoutMs);
        await slot.exited;
        clearTimeout(timer);
      });
      await Promise.all(exits);
    },
  };
}
