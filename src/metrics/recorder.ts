/**
 * Metrics of every process (API and workers), fed by the EventBus and
 * aggregated in Redis, so /metrics answers for the whole deployment.
 *
 * A listener only bumps local numbers and records into local HDR histograms;
 * nothing touches Redis per job. Every flush interval (and on flush/close) a
 * process sends ONE transaction with what changed:
 *   {prefix}:counters          hash, HINCRBY of each delta since the last flush
 *   {prefix}:rate:{epochSec}   hash {completed, failed} of that second, EXPIRE 120
 *   {prefix}:hist:{name}       hash, field = processId/nonce, value = that process's
 *                              cumulative histogram (HDR, compressed base64);
 *                              `_retired` holds the sum of closed (or dead) processes'
 *   {prefix}:hist_seen         hash, field = processId/nonce, value = epoch ms of its
 *                              last flush (at least once a minute, idle or not)
 * A process that dies without closing (kill -9, OOM) leaves its fields: about
 * once a minute, from the flush timer, each process's janitor folds the
 * fields of processes unseen for `reapAfterMs` into `_retired` (their samples
 * still count, once), so the hashes do not grow with every crash
 * (histogram-hashes.ts).
 * A reader (metrics-snapshot.ts) merges the histogram fields and sums counters: 1 round trip.
 */
import type Redis from "ioredis";
import { errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import { subscribeCacheMetrics } from "./cache-metrics";
import { addEncoded, createDurationHistogram, encodeHistogram, type Histogram, recordMs } from "./histogram";
import { foldUnseenWriters, foldWriter, type HistogramHashes, queueWrite } from "./histogram-hashes";

export const HISTOGRAMS = ["latency", "processing", "llm", "cache_lookup"] as const;
export type HistogramName = (typeof HISTOGRAMS)[number];
const RETIRED_FIELD = "_retired";
const RATE_TTL_SECONDS = 120;
/** An idle process still says it is alive this often (more often when `reapAfterMs` is short). */
const SEEN_EVERY_MS = 60_000;
/** A process unseen this long is dead: its histogram fields are folded into `_retired`. */
export const HIST_REAP_AFTER_MS = 10 * 60_000;
/** How often a process's janitor looks for dead ones (jittered, so processes do not reap in step). */
const REAP_EVERY_MS = 60_000;
export const RATE_WINDOW_SECONDS = 10;

/** Counter fields that other modules increment themselves in `{prefix}:counters` (HINCRBY). */
export const EXTERNAL_COUNTERS = {
  kafkaEventsConsumed: "kafka_events_consumed",
  kafkaEventsEnqueued: "kafka_events_enqueued",
  kafkaEventsDuplicate: "kafka_events_duplicate",
  kafkaEventsDeadLettered: "kafka_events_dead_lettered",
  kafkaEventsSkipped: "kafka_events_skipped",
  kafkaConsumerRestarts: "kafka_consumer_restarts",
  kafkaResultsPublished: "kafka_results_published",
  kafkaResultsFailedBatches: "kafka_results_failed_batches",
  kafkaResultsRepublished: "kafka_results_republished",
} as const;

export const metricsKeys = (prefix = "metrics") => ({
  counters: `${prefix}:counters`,
  rate: (epochSecond: number) => `${prefix}:rate:${epochSecond}`,
  histogram: (name: HistogramName) => `${prefix}:hist:${name}`,
  /** Hash: field processId/nonce, value the epoch ms of that process's last flush. */
  histSeen: `${prefix}:hist_seen`,
  /** Hash: field `topic:partition`, value the consumer lag JSON `{lag, committed, at}`, written by the consumer role. */
  kafkaLag: `${prefix}:kafka_lag`,
});

function histogramHashes(prefix: string): HistogramHashes {
  const keys = metricsKeys(prefix);
  return { seen: keys.histSeen, histograms: HISTOGRAMS.map(keys.histogram), retired: RETIRED_FIELD };
}

export interface MetricsRecorder {
  /** Sends what changed; rejects (keeping the deltas for the next flush) when Redis does not take them. */
  flush(): Promise<void>;
  /** Stops recording, flushes, and folds this process's histograms into `_retired`. Idempotent; never throws. */
  close(): Promise<void>;
}

export function createMetricsRecorder(deps: {
  redis: Redis;
  bus: EventBus;
  processId: string;
  logger: Logger;
  flushIntervalMs?: number;
  prefix?: string;
  now?: () => number;
  /** Fold the histograms of processes that have not flushed for this long (default HIST_REAP_AFTER_MS). */
  reapAfterMs?: number;
}): MetricsRecorder {
  const { redis, bus, processId, logger, flushIntervalMs = 1000, prefix = "metrics", now = Date.now } = deps;
  const { reapAfterMs = HIST_REAP_AFTER_MS } = deps;
  const keys = metricsKeys(prefix);
  const hashes = histogramHashes(prefix);
  // Process ids repeat: in a container every app is PID 1 (so are its worker ids, `1-w0-1`...) and a restarted
  // one has the same hostname. A field of its own keeps a killed predecessor's history from being overwritten.
  const field = `${processId}/${Math.random().toString(36).slice(2, 8)}`;
  const seenEveryMs = Math.min(SEEN_EVERY_MS, reapAfterMs / 5);
  let deltas = new Map<string, number>();
  let rates = new Map<number, { completed: number; failed: number }>();
  const histograms = Object.fromEntries(HISTOGRAMS.map((name) => [name, createDurationHistogram()])) as Record<
    HistogramName,
    Histogram
  >;
  const dirty = new Set<HistogramName>();

  // HINCRBY takes integers only; token counts and waits are integers in practice anyway.
  const add = (field: string, n = 1) => {
    const value = Math.round(n);
    if (value !== 0) deltas.set(field, (deltas.get(field) ?? 0) + value);
  };
  const observe = (name: HistogramName, ms: number) => {
    recordMs(histograms[name], ms);
    dirty.add(name);
  };
  // Bucketed by the second the task ended, not the second of the flush, so tasks/s is not smeared by flush timing.
  const tick = (kind: "completed" | "failed") => {
    const second = Math.floor(now() / 1000);
    const bucket = rates.get(second) ?? { completed: 0, failed: 0 };
    rates.set(second, bucket);
    bucket[kind] += 1;
  };

  const unsubscribe = [
    bus.on("task.accepted", (e) => {
      add("tasks_accepted");
      add(`tasks_accepted:${e.queue}`);
    }),
    bus.on("task.started", () => add("tasks_started")),
    bus.on("task.succeeded", (e) => {
      add("tasks_completed");
      if (e.from_cache) add("cache_tokens_saved", e.tokens);
      tick("completed");
      observe("latency", e.latency_ms);
      observe("processing", e.processing_ms);
    }),
    bus.on("task.retried", () => add("tasks_retried")),
    bus.on("task.failed", () => {
      add("tasks_failed");
      tick("failed");
    }),
    bus.on("llm.call", (e) => {
      add(e.ok ? "llm_calls" : "llm_errors");
      add("llm_prompt_tokens", e.prompt_tokens);
      add("llm_completion_tokens", e.completion_tokens);
      observe("llm", e.ms);
    }),
    bus.on("llm.rate_limited", (e) => {
      add("rate_limited_waits");
      add("rate_limited_wait_ms", e.wait_ms);
    }),
    bus.on("ingest.batch", (e) => {
      add(EXTERNAL_COUNTERS.kafkaEventsConsumed, e.consumed);
      add(EXTERNAL_COUNTERS.kafkaEventsEnqueued, e.enqueued);
      add(EXTERNAL_COUNTERS.kafkaEventsDuplicate, e.duplicates);
      add(EXTERNAL_COUNTERS.kafkaEventsDeadLettered, e.dead_lettered);
      add(EXTERNAL_COUNTERS.kafkaEventsSkipped, e.skipped);
      // Consumer threads enqueue without the bus: their accepted tasks are counted here.
      add("tasks_accepted", e.enqueued);
      add("tasks_accepted:kafka_events", e.enqueued);
    }),
    bus.on("ingest.thread", (e) => {
      if (e.state === "died") add(EXTERNAL_COUNTERS.kafkaConsumerRestarts);
    }),
    bus.on("ingest.results_out", (e) => {
      if (e.ok) add(EXTERNAL_COUNTERS.kafkaResultsPublished, e.size);
      else add(EXTERNAL_COUNTERS.kafkaResultsFailedBatches);
    }),
    bus.on("ingest.results_republished", () => add(EXTERNAL_COUNTERS.kafkaResultsRepublished)),
    bus.on("enqueue.batch", (e) => {
      add("enqueue_batches");
      add("enqueue_jobs", e.size);
    }),
    ...subscribeCacheMetrics(bus, add, (ms) => observe("cache_lookup", ms)),
  ];

  let closed = false;
  const inflight = new Set<Promise<void>>();

  let lastSeen = 0;
  /** Whether a flush wrote this process's last-seen entry (and fields): from then on, their absence means a fold. */
  let registered = false;
  /** What Redis holds of each histogram, as far as this process knows: what a janitor folds. */
  const written = new Map<HistogramName, string>();
  const send = async () => {
    const at = now();
    if (deltas.size === 0 && rates.size === 0 && dirty.size === 0 && at - lastSeen < seenEveryMs) return;
    const counts = deltas;
    const ticks = rates;
    const names = [...dirty];
    deltas = new Map();
    rates = new Map();
    dirty.clear();
    // MULTI rather than a plain pipeline: all or nothing, so giving the deltas back after a failure never double-counts.
    const tx = redis.multi();
    for (const [field, n] of counts) tx.hincrby(keys.counters, field, n);
    for (const [second, { completed, failed }] of ticks) {
      if (completed) tx.hincrby(keys.rate(second), "completed", completed);
      if (failed) tx.hincrby(keys.rate(second), "failed", failed);
      tx.expire(keys.rate(second), RATE_TTL_SECONDS);
    }
    const encoded = names.map((name) => [name, encodeHistogram(histograms[name])] as const);
    const writes = encoded.map(([name, text]) => [keys.histogram(name), text] as const);
    queueWrite(tx, hashes, field, at, registered, writes);
    try {
      const results = await tx.exec();
      const failure = results?.find(([error]) => error)?.[0];
      if (!results || failure) throw failure ?? new Error("metrics transaction aborted");
      lastSeen = at;
      if (results.at(-1)?.[1] === 1) rebase();
      else {
        registered = true;
        for (const [name, text] of encoded) written.set(name, text);
      }
    } catch (error) {
      for (const [field, n] of counts) add(field, n);
      const oldest = Math.floor(now() / 1000) - RATE_TTL_SECONDS;
      for (const [second, bucket] of ticks) {
        if (second < oldest) continue;
        const current = rates.get(second) ?? { completed: 0, failed: 0 };
        rates.set(second, { completed: current.completed + bucket.completed, failed: current.failed + bucket.failed });
      }
      // Histograms are cumulative: the next successful flush carries everything.
      for (const name of names) dirty.add(name);
      throw error;
    }
  };

  // A janitor folded this process's fields into `_retired` (it had not flushed for reapAfterMs: cut off from
  // Redis, or stopped), and this flush wrote nothing of them. The samples folded count already: keep only the
  // ones recorded since, and write those as a new process would.
  const rebase = () => {
    logger.warn({ process_id: processId, prefix }, "metrics histograms were folded by another process's janitor");
    for (const [name, text] of written) addEncoded(histograms[name], text, -1);
    written.clear();
    registered = false;
    lastSeen = 0;
    for (const name of HISTOGRAMS) if (histograms[name].totalCount > 0) dirty.add(name);
  };

  const flush = () => {
    if (closed) return Promise.resolve();
    const run = send();
    inflight.add(run);
    return run.finally(() => inflight.delete(run));
  };

  let failing = false;
  const nextReapAt = () => now() + REAP_EVERY_MS * (0.5 + Math.random());
  let nextReap = nextReapAt();
  let reaping: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    // Not while flushes fail: Redis is away, and this process's own fields may be the stale ones.
    if (now() >= nextReap && !reaping && !failing) {
      nextReap = nextReapAt();
      reaping = reapDeadProcesses(redis, { prefix, self: field, now: now(), after: reapAfterMs })
        .catch((error: unknown) =>
          logger.warn({ process_id: processId, error: errorMessage(error) }, "metrics janitor failed"),
        )
        .finally(() => {
          reaping = undefined;
        });
    }
    flush().then(
      () => {
        if (failing) logger.info({ process_id: processId }, "metrics flush recovered");
        failing = false;
      },
      (error: unknown) => {
        // One warning per outage, not one per second.
        if (!failing)
          logger.warn({ process_id: processId, error: errorMessage(error) }, "metrics flush failed; retrying");
        failing = true;
      },
    );
  }, flushIntervalMs);
  timer.unref();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      clearInterval(timer);
      for (const off of unsubscribe) off();
      try {
        await flush();
      } catch (error) {
        logger.warn(
          { process_id: processId, prefix, error: errorMessage(error), lost: Object.fromEntries(deltas) },
          "final metrics flush failed; these counts are lost",
        );
      }
      closed = true;
      // An HSET of our own field that landed after the fold would count this process twice.
      await Promise.allSettled([...inflight, reaping]);
      try {
        // Keeps one field per live process in each hash, however often workers are recycled.
        const local = new Map(HISTOGRAMS.map((name) => [keys.histogram(name), histograms[name]]));
        await foldWriter(redis, hashes, field, { local });
      } catch (error) {
        logger.warn(
          { process_id: processId, prefix, error: errorMessage(error) },
          "could not retire metrics histograms",
        );
      }
      for (const histogram of Object.values(histograms)) histogram.destroy();
    })();
    return closing;
  };

  return { flush, close };
}

/**
 * The janitor: folds the histograms of processes that have not flushed for
 * `after` ms into `_retired`, and returns the ids this call folded. Any
 * number of processes may run it at once: each field is folded once.
 */
export function reapDeadProcesses(
  redis: Redis,
  options: { prefix?: string; self?: string; now?: number; after?: number } = {},
): Promise<string[]> {
  const { prefix = "metrics", self, now = Date.now(), after = HIST_REAP_AFTER_MS } = options;
  return foldUnseenWriters(redis, histogramHashes(prefix), { now, after, self });
}
