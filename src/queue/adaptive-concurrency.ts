/**
 * WORKER_JOBS_PER_PROCESS=auto in a worker process: samples what the
 * controller needs every `intervalMs` (jobs in flight and their slot time, the
 * rate limiter's waits, provider 429s, the event loop's delay, RSS, the rate
 * limit and the live workers that share it), feeds it to the controller
 * (concurrency-controller.ts) and applies its limit to the take gate
 * (take-gate.ts). `status()` is what the heartbeat shows in /workers.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { RateLimit } from "../llm/rate-limiter";
import type { Logger } from "../log";
import {
  ConcurrencyController,
  type ControllerSettings,
  type ControllerState,
  type LimitReason,
} from "./concurrency-controller";
import type { TakeGate } from "./take-gate";

/** The jobs-in-flight block of a worker's heartbeat (GET /workers) and of GET /metrics. */
export interface JobsInFlightStatus {
  mode: "auto" | "fixed";
  /** The current limit of jobs in flight in this process (fixed: per queue × queues). */
  limit: number;
  in_flight: number;
  reason: LimitReason;
  /** Mean time a job holds its slot, ms, as the controller sees it (auto). */
  latency_ms?: number;
  /** Rate share × latency × headroom (auto, with a rate limit). */
  target?: number;
  /** Event loop delay, P99 over the last window, ms. */
  event_loop_delay_ms: number;
  /** Provider 429s since start. */
  throttled: number;
  /** Measured RSS per 1,000 jobs in flight, MiB (auto). */
  mb_per_1000_jobs?: number;
}

export interface AdaptiveConcurrency {
  start(): void;
  stop(): void;
  /** A job ended after holding its slot this long, ms. */
  onJobEnd(slotMs: number): void;
  /** A call waited this long for the rate limiter, ms. */
  onRateLimitWait(ms: number): void;
  /** The provider answered 429. */
  onThrottled(): void;
  status(): JobsInFlightStatus;
}

export function createAdaptiveConcurrency(deps: {
  gate: TakeGate;
  settings?: Partial<ControllerSettings>;
  /** The global LLM rate limit now (an operator's override included). */
  rateLimit: () => RateLimit | undefined;
  /** Live worker processes that share the rate limit; refreshed by the caller. */
  workers: () => number;
  rssMb: () => number;
  intervalMs?: number;
  logger?: Logger;
}): AdaptiveConcurrency {
  const { gate, rateLimit, workers, rssMb, intervalMs = 250, logger } = deps;
  const controller = new ConcurrencyController(deps.settings);
  controller.setBaseRss(rssMb());
  gate.setLimit(controller.current().limit);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const window = { completed: 0, slotMs: 0, waitedMs: 0, throttled: 0, peak: 0 };
  let throttledTotal = 0;
  let eventLoopDelayMs = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  let lastReason: LimitReason | undefined;

  const tick = () => {
    eventLoopDelayMs = loop.count > 0 ? loop.percentile(99) / 1e6 : 0;
    loop.reset();
    const rate = rateLimit();
    const before: ControllerState = controller.current();
    const state = controller.update({
      inFlight: gate.inFlight,
      // Permits in use, not only jobs running: with short jobs the takes in flight hold most of them, and a
      // limit they use up is a limit with demand (issue 18: 10 jobs running at 0 ms, the limit never grew).
      peakInFlight: Math.max(window.peak, gate.used),
      completed: window.completed,
      // Slot time minus the rate limiter's waits: the wait is what too many slots cause, not the work.
      busyMs: Math.max(0, window.slotMs - window.waitedMs),
      throttled: window.throttled,
      eventLoopDelayMs,
      rssMb: rssMb(),
      ratePerSecond: rate ? (rate.calls * 1000) / rate.periodMs : undefined,
      workers: workers(),
    });
    Object.assign(window, { completed: 0, slotMs: 0, waitedMs: 0, throttled: 0, peak: gate.used });
    gate.setLimit(state.limit);
    if (
      state.reason !== lastReason &&
      (state.reason === "429 backoff" || state.reason === "event_loop" || state.reason === "memory")
    )
      logger?.warn(
        {
          limit: state.limit,
          was: before.limit,
          reason: state.reason,
          event_loop_delay_ms: Math.round(eventLoopDelayMs),
        },
        "jobs in flight limited",
      );
    lastReason = state.reason;
  };

  return {
    start() {
      if (timer) return;
      loop.enable();
      timer = setInterval(tick, intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      loop.disable();
    },
    onJobEnd(slotMs) {
      window.completed++;
      window.slotMs += slotMs;
      window.peak = Math.max(window.peak, gate.used + 1);
    },
    onRateLimitWait(ms) {
      window.waitedMs += ms;
    },
    onThrottled() {
      window.throttled++;
      throttledTotal++;
    },
    status() {
      const state = controller.current();
      return {
        mode: "auto",
        limit: state.limit,
        in_flight: gate.inFlight,
        reason: state.reason,
        ...(state.latencyMs === undefined ? {} : { latency_ms: Math.round(state.latencyMs) }),
        ...(state.target === undefined ? {} : { target: state.target }),
        event_loop_delay_ms: Math.round(eventLoopDelayMs * 10) / 10,
        throttled: throttledTotal,
        mb_per_1000_jobs: Math.round(state.mbPerJob * 1000 * 10) / 10,
      };
    },
  };
}

/** The same block for a fixed WORKER_JOBS_PER_PROCESS: the event loop's delay is still measured. */
export function fixedConcurrencyStatus(
  limit: number,
  inFlight: () => number,
): {
  start(): void;
  stop(): void;
  onThrottled(): void;
  status(): JobsInFlightStatus;
} {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let throttled = 0;
  let delayMs = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    start() {
      loop.enable();
      timer = setInterval(() => {
        delayMs = loop.count > 0 ? loop.percentile(99) / 1e6 : 0;
        loop.reset();
      }, 1000);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      loop.disable();
    },
    onThrottled() {
      throttled++;
    },
    status: () => ({
      mode: "fixed",
      limit,
      in_flight: inFlight(),
      reason: "fixed",
      event_loop_delay_ms: Math.round(delayMs * 10) / 10,
      throttled,
    }),
  };
}
