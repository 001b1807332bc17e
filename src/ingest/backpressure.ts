/**
 * Decides when consumption pauses: when the kafka_events queue's waiting
 * count passes the high watermark (resuming only below the low one, so it
 * does not flap), and while the LLM rate limiter has had no budget for
 * longer than rateLimitPauseMs, and while an operator paused it (POST
 * /admin/kafka/pause). One pipelined round trip per check (LLEN, GET of the
 * limiter's theoretical arrival time, HEXISTS of the operator's pause). Consumer threads
 * also report the waiting count their enqueue saw (report()), so a pause
 * does not wait for the next check.
 */
import type Redis from "ioredis";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import { queueKeys } from "../queue/bee-queue-layout";
import { CONTROL_KEY, KAFKA_PAUSED_FIELD } from "../store/control";
import type { PauseReason } from "./consumer-protocol";

export interface BackpressureSample {
  waiting: number;
  /** The GCRA limiter's theoretical arrival time (epoch ms); after now means no budget now. */
  limiterTat: number | undefined;
  now: number;
  /** An operator paused consumption (store/control.ts). */
  operatorPaused?: boolean;
}

export interface BackpressureSettings {
  highWatermark: number;
  lowWatermark: number;
  /** 0: the rate limiter never pauses consumption. */
  rateLimitPauseMs: number;
  /**
   * The limiter's burst tolerance (LLM_RATE_BURST × its interval), ms: its theoretical arrival time may lie
   * this far ahead and still admit a call now, so only beyond it is there no budget. Absent: 0.
   */
  limiterToleranceMs?: number;
}

/** Pure decision: the pause reason for this sample, given the previous one and since when the limiter is empty. */
export function decide(
  sample: BackpressureSample,
  previous: PauseReason | undefined,
  noBudgetSince: number | undefined,
  settings: BackpressureSettings,
): PauseReason | undefined {
  if (sample.operatorPaused) return "operator";
  const queueFull =
    sample.waiting >= settings.highWatermark ||
    (previous === "queue_high_watermark" && sample.waiting > settings.lowWatermark);
  if (queueFull) return "queue_high_watermark";
  if (
    settings.rateLimitPauseMs > 0 &&
    noBudgetSince !== undefined &&
    sample.now - noBudgetSince >= settings.rateLimitPauseMs
  )
    return "llm_rate_limited";
  return undefined;
}

export interface Backpressure {
  start(): void;
  stop(): void;
  /** One check now (the timer calls it). */
  check(): Promise<PauseReason | undefined>;
  /** A waiting count seen elsewhere (after an enqueue): pauses at once when it is at or over the high watermark. */
  report(waiting: number): void;
}

export function createBackpressure(deps: {
  redis: Redis;
  settings: BackpressureSettings;
  onChange: (reason: PauseReason | undefined) => void;
  logger: Logger;
  queue?: string;
  limiterKey?: string;
  intervalMs?: number;
}): Backpressure {
  const {
    redis,
    settings,
    onChange,
    logger,
    queue = "kafka_events",
    limiterKey = "llm:ratelimit",
    intervalMs = 250,
  } = deps;
  const waitingKey = queueKeys(queue).waiting;
  let current: PauseReason | undefined;
  let noBudgetSince: number | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let checking = false;

  const check = async () => {
    const replies =
      (await redis.pipeline().llen(waitingKey).get(limiterKey).hexists(CONTROL_KEY, KAFKA_PAUSED_FIELD).exec()) ?? [];
    const waiting = Number(replies[0]?.[1] ?? 0);
    const tat = replies[1]?.[1];
    const sample: BackpressureSample = {
      waiting,
      limiterTat: typeof tat === "string" ? Number(tat) : undefined,
      now: Date.now(),
      operatorPaused: replies[2]?.[1] === 1,
    };
    const empty =
      sample.limiterTat !== undefined && sample.limiterTat - (settings.limiterToleranceMs ?? 0) > sample.now;
    noBudgetSince = empty ? (noBudgetSince ?? sample.now) : undefined;
    apply(decide(sample, current, noBudgetSince, settings), waiting);
    return current;
  };

  const apply = (next: PauseReason | undefined, waiting: number) => {
    if (next === current) return;
    logger.info({ reason: next ?? "none", waiting }, next ? "backpressure: pausing" : "backpressure: resuming");
    current = next;
    onChange(next);
  };

  return {
    start() {
      timer ??= setInterval(() => {
        if (checking) return;
        checking = true;
        check()
          .catch((error: unknown) => logger.warn({ error: errorMessage(error) }, "backpressure check failed"))
          .finally(() => {
            checking = false;
          });
      }, intervalMs);
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    check,
    report(waiting) {
      if (waiting >= settings.highWatermark && current !== "operator") apply("queue_high_watermark", waiting);
    },
  };
}
