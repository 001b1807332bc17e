/**
 * Metrics of every process (API and workers), fed by the EventBus and
 * aggregated in Redis, so /metrics answers for the whole deployment.
 *
 * A listener only bumps local numbers (task-metrics.ts); nothing touches
 * Redis per job. Every flush interval (and on flush/close) a process sends
 * ONE MULTI with what it counted since its last flush: HINCRBYs of counters
 * and of the rate bucket of each second a task ended in, one BITFIELD per
 * histogram with an increment per bucket that changed (keys.ts,
 * increments.ts). Nothing in Redis belongs to one process, so a process that
 * closes, dies (kill -9, OOM) or restarts under the same id leaves nothing
 * to clean up; one killed loses what it counted since its last flush.
 * The reader (snapshot.ts) reads every key in 1 round trip.
 */
import type Redis from "ioredis";
import { errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import { execChecked } from "../redis/script";
import { counterOfMs } from "./histogram";
import { createIncrements, type Increments } from "./increments";
import { metricsKeys, RATE_TTL_SECONDS } from "./keys";
import { type MetricsSink, subscribeMetrics } from "./task-metrics";

export interface MetricsRecorder {
  /** Sends what changed; rejects (keeping the increments for the next flush) when Redis does not take them. */
  flush(): Promise<void>;
  /** Stops recording and flushes what is left. Idempotent; never throws. */
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
}): MetricsRecorder {
  const { redis, bus, processId, logger, flushIntervalMs = 1000, prefix = "metrics", now = Date.now } = deps;
  const log = logger.child({ process_id: processId, prefix });
  const increments = createIncrements();
  const unsubscribe = subscribeMetrics(bus, accumulate(increments, prefix, now), prefix);

  let closed = false;
  const inflight = new Set<Promise<void>>();
  const send = createSender(redis, increments, now, `${metricsKeys(prefix).receipt(processId)}:${crypto.randomUUID()}`);
  const flush = () => {
    if (closed) return Promise.resolve();
    const run = send();
    inflight.add(run);
    return run.finally(() => inflight.delete(run));
  };
  const stopTimer = flushEvery(flushIntervalMs, flush, log);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      stopTimer();
      for (const off of unsubscribe) off();
      // A timer flush still out may fail and give its increments back: the last flush carries them.
      await Promise.allSettled(inflight);
      try {
        await flush();
      } catch (error) {
        const lost = increments.fieldsOf(metricsKeys(prefix).counters);
        log.warn({ error: errorMessage(error), lost }, "final metrics flush failed; these counts are lost");
      }
      closed = true;
    })();
    return closing;
  };

  return { flush, close };
}

/** What the listeners count, as increments of the metrics keys. */
function accumulate(increments: Increments, prefix: string, now: () => number): MetricsSink {
  const keys = metricsKeys(prefix);
  return {
    // HINCRBY takes integers only; token counts and waits are integers in practice anyway.
    add: (field, n = 1) => increments.addToField(keys.counters, field, Math.round(n)),
    observe: (name, ms) => increments.addToCounter(keys.histogram(name), counterOfMs(ms), 1),
    // Bucketed by the second the task ended, not the second of the flush, so tasks/s is not smeared by flush timing.
    tick: (kind) => {
      const second = Math.floor(now() / 1000);
      const expiry = { seconds: RATE_TTL_SECONDS, untilMs: (second + RATE_TTL_SECONDS) * 1000 };
      increments.addToField(keys.rate(second), kind, 1, expiry);
    },
    addToHash: (key, field, n) => increments.addToField(key, field, n),
    observeInto: (key, index) => increments.addToCounter(key, index, 1),
  };
}

/** How long a flush's receipt is kept: far longer than any reconnection before the next flush checks it. */
const RECEIPT_TTL_SECONDS = 600;

/**
 * Each flush is one MULTI with every increment since the last one and a
 * receipt key (`{prefix}:flushed:{process}:{nonce}:{seq}`): Redis applies all
 * of it or none. A flush whose EXEC fails may still have been applied (the
 * reply lost with the connection, after Redis ran it), so its increments are
 * not simply given back: the next flush first asks whether the receipt
 * exists, and sends them again only if it does not. Never counted twice,
 * never dropped while Redis is reachable again (issue 13 §11).
 */
function createSender(redis: Redis, increments: Increments, now: () => number, receiptPrefix: string) {
  let sequence = 0;
  let unconfirmed: { taken: ReturnType<Increments["take"]>; receipt: string } | undefined;
  return async (): Promise<void> => {
    if (unconfirmed) {
      const applied = (await redis.exists(unconfirmed.receipt)) === 1;
      if (!applied) increments.giveBack(unconfirmed.taken, now());
      unconfirmed = undefined;
    }
    if (increments.empty) return;
    const taken = increments.take();
    const receipt = `${receiptPrefix}:${++sequence}`;
    const tx = redis.multi();
    increments.queue(tx, taken);
    tx.set(receipt, "1", "EX", RECEIPT_TTL_SECONDS);
    try {
      await execChecked(tx);
    } catch (error) {
      unconfirmed = { taken, receipt };
      throw error;
    }
  };
}

/** Flushes every `intervalMs` until the returned function is called; logs one warning per outage. */
function flushEvery(intervalMs: number, flush: () => Promise<void>, log: Logger): () => void {
  let failing = false;
  const timer = setInterval(() => {
    flush().then(
      () => {
        if (failing) log.info("metrics flush recovered");
        failing = false;
      },
      (error: unknown) => {
        if (!failing) log.warn({ error: errorMessage(error) }, "metrics flush failed; retrying");
        failing = true;
      },
    );
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
