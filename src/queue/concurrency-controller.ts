/**
 * How many jobs a worker process keeps in flight (WORKER_JOBS_PER_PROCESS=auto):
 * a pure controller, fed one window of observations at a time (`update`), that
 * answers a limit and why it is what it is. No timers, no I/O: the worker
 * (queue/adaptive-concurrency.ts) samples, this decides.
 *
 * The limit is the smallest of:
 * - **rate_limit×latency** (Little's law, L = λW): with an LLM rate limit, this
 *   process's share of it (the limit over the live worker processes) times the
 *   mean time a job holds its slot (wait for the rate limiter excluded: that
 *   wait is what too many slots cause), times a headroom for the variance.
 *   More in flight only queues in the rate limiter while holding jobs in
 *   `active`, where no other process can take them.
 * - **429 backoff**: after the provider answers 429 (its own limit, which
 *   LLM_RATE_LIMIT may not know), AIMD: the limit drops at once to
 *   `backoffRatio` of what was in flight, then grows by a constant step (2 %
 *   of that level) per window while no 429 comes: back to the Little's-law
 *   target, where it stops binding; without a rate limit it stays additive
 *   until the next 429 (congestion avoidance: no more doubling toward a limit
 *   that is known to exist).
 * - **event_loop**: when the event loop's delay (P99 over the window) passes
 *   its threshold, the process is CPU-bound: the limit shrinks and stops
 *   growing, because more jobs in flight only delay heartbeats, stall-check
 *   renewals and every job's own I/O; but not below the rate limit's share ×
 *   the latency, where it would only build a backlog.
 * - **memory**: the memory budget over the measured RSS per job in flight.
 * - **max**: WORKER_MAX_JOBS_PER_PROCESS, and the floor below which it never goes.
 *
 * Without a rate limit (and before any latency is known) it probes: the limit
 * grows ×GROWTH per window while the process uses most of it (there is demand),
 * the latency stays flat against its long-run level (the gradient check of a
 * Vegas/gradient limiter: a latency that rises with concurrency means the
 * provider, or this process, is queueing), and the event loop keeps up.
 *
 * Why AIMD for 429s and not a gradient limiter (Netflix's Gradient2) as the
 * main law: a gradient limiter infers congestion from latency rising over its
 * minimum. LLM latency is dominated by generation time, varies 10× from call to
 * call (log-normal, long tail) and moves with prompt and answer sizes, not
 * with load, so the gradient is mostly noise; and a provider signals its limit
 * explicitly, with 429, which is exactly the drop signal AIMD is built on. The
 * gradient only serves as a brake on probing when no rate limit is known.
 */

export type LimitReason =
  | "fixed"
  | "rate_limit×latency"
  | "429 backoff"
  | "event_loop"
  | "memory"
  | "max"
  | "floor"
  | "latency"
  | "probing";

export const LIMIT_REASONS: readonly LimitReason[] = [
  "fixed",
  "rate_limit×latency",
  "429 backoff",
  "event_loop",
  "memory",
  "max",
  "floor",
  "latency",
  "probing",
];

export interface ControllerSettings {
  /** WORKER_MAX_JOBS_PER_PROCESS. */
  max: number;
  /** Never below this (and never below 1). */
  min: number;
  /** The limit before anything is known. */
  initial: number;
  /** RSS this process may reach with its jobs in flight, MiB. */
  memoryBudgetMb: number;
  /** Event-loop delay P99 above which the limit shrinks, ms. */
  eventLoopDelayMs: number;
  /** Slots per unit of rate × latency (> 1: variance, the job's own Redis time). */
  headroom: number;
  /** Growth per window when probing, and the largest step up in any window. */
  growth: number;
  /** After a 429: this share of what was in flight. */
  backoffRatio: number;
}

export const DEFAULT_CONTROLLER_SETTINGS: ControllerSettings = {
  max: 4096,
  min: 8,
  initial: 32,
  memoryBudgetMb: 2048,
  eventLoopDelayMs: 100,
  headroom: 1.2,
  growth: 2,
  backoffRatio: 0.7,
};

/** One window's observations. */
export interface ControllerSample {
  /** Jobs running now. */
  inFlight: number;
  /** The most permits in use at once in the window: jobs running, and takes in flight (the take gate's `used`). */
  peakInFlight: number;
  /** Jobs that ended in the window. */
  completed: number;
  /** Sum over those jobs of the time they held a slot minus their wait for the rate limiter, ms. */
  busyMs: number;
  /** Provider 429 answers in the window (retried in the call or not). */
  throttled: number;
  /** P99 of the event loop's delay over the window, ms. */
  eventLoopDelayMs: number;
  /** This process's RSS now, MiB. */
  rssMb: number;
  /** The global LLM rate limit, calls per second; undefined: none. */
  ratePerSecond: number | undefined;
  /** Live worker processes that share the rate limit (this one included). */
  workers: number;
}

export interface ControllerState {
  limit: number;
  reason: LimitReason;
  /** Mean time a job holds its slot, ms (EWMA); undefined before the first job ends. */
  latencyMs: number | undefined;
  /** The AIMD ceiling after a 429; undefined when none binds. */
  backoffCeiling: number | undefined;
  /** RSS per job in flight, MiB (measured once enough jobs are in flight). */
  mbPerJob: number;
  /** rate share × latency × headroom, when both are known. */
  target: number | undefined;
}

/** MiB of RSS per job in flight assumed until measured. */
const PRIOR_MB_PER_JOB = 0.1;
/** In flight before the RSS above the idle level is read as the jobs' (fewer: noise of the heap). */
const MEASURE_MEMORY_FROM = 200;
/** The latency is the mean over at least this many of the last jobs that ended… */
const LATENCY_JOBS = 2000;
/** …or over this many windows with endings, whichever covers fewer. */
const LATENCY_WINDOWS = 8;
/** Windows of a long-run latency mean; the probe stops when the short one passes it × LATENCY_RISE. */
const LONG_ALPHA = 0.05;
const LATENCY_RISE = 1.5;
/** Share of the limit in use (at the window's peak) that counts as demand for more. */
const DEMAND = 0.8;

export class ConcurrencyController {
  readonly settings: ControllerSettings;
  private state: ControllerState;
  private longLatencyMs: number | undefined;
  private baseRssMb: number | undefined;
  private backoffStep = 1;
  private readonly recent: { completed: number; busyMs: number }[] = [];

  constructor(settings: Partial<ControllerSettings> = {}) {
    const merged = { ...DEFAULT_CONTROLLER_SETTINGS, ...settings };
    merged.min = Math.max(1, Math.min(merged.min, merged.max));
    merged.initial = clamp(merged.initial, merged.min, merged.max);
    this.settings = merged;
    this.state = {
      limit: merged.initial,
      reason: "probing",
      latencyMs: undefined,
      backoffCeiling: undefined,
      mbPerJob: PRIOR_MB_PER_JOB,
      target: undefined,
    };
  }

  current(): Readonly<ControllerState> {
    return this.state;
  }

  /** The RSS with no job in flight, MiB (what the jobs' memory is measured above). */
  setBaseRss(mb: number): void {
    this.baseRssMb = mb;
  }

  update(sample: ControllerSample): Readonly<ControllerState> {
    const s = this.settings;
    const previous = this.state.limit;
    this.baseRssMb ??= sample.rssMb;

    // Latency: the mean slot time over the last LATENCY_JOBS jobs that ended (or LATENCY_WINDOWS windows), so
    // that a window with few endings (a drain: only the slow tail is left) does not swing the estimate.
    let latencyMs = this.state.latencyMs;
    if (sample.completed > 0) {
      const mean = Math.max(0, sample.busyMs / sample.completed);
      this.recent.push({ completed: sample.completed, busyMs: Math.max(0, sample.busyMs) });
      let completed = 0;
      let busy = 0;
      let kept = 0;
      for (let i = this.recent.length - 1; i >= 0 && kept < LATENCY_WINDOWS; i--, kept++) {
        const w = this.recent[i] as { completed: number; busyMs: number };
        completed += w.completed;
        busy += w.busyMs;
        if (completed >= LATENCY_JOBS) {
          kept++;
          break;
        }
      }
      this.recent.splice(0, this.recent.length - kept);
      latencyMs = busy / completed;
      this.longLatencyMs =
        this.longLatencyMs === undefined ? mean : this.longLatencyMs + LONG_ALPHA * (mean - this.longLatencyMs);
    }

    // Memory per job, once enough are in flight for the difference to mean something.
    let mbPerJob = this.state.mbPerJob;
    if (sample.inFlight >= MEASURE_MEMORY_FROM) {
      const measured = Math.max(0, sample.rssMb - this.baseRssMb) / sample.inFlight;
      mbPerJob = Math.max(0.005, mbPerJob + 0.2 * (measured - mbPerJob));
    }
    const memoryCap = Math.floor(Math.max(0, s.memoryBudgetMb - this.baseRssMb) / mbPerJob);

    // 429s: multiplicative decrease from what was really in flight, then a constant step up per window.
    let backoffCeiling = this.state.backoffCeiling;
    if (sample.throttled > 0) {
      const from = Math.min(previous, Math.max(sample.peakInFlight, s.min));
      backoffCeiling = Math.max(s.min, Math.floor(from * s.backoffRatio));
      this.backoffStep = Math.max(1, Math.round(from * 0.02));
    } else if (backoffCeiling !== undefined) {
      backoffCeiling += this.backoffStep;
    }

    // Little's law, when the rate and the latency are known.
    const share = sample.ratePerSecond === undefined ? undefined : sample.ratePerSecond / Math.max(1, sample.workers);
    const target =
      share !== undefined && latencyMs !== undefined
        ? Math.max(1, Math.ceil((share * latencyMs * s.headroom) / 1000))
        : undefined;

    const overloaded = sample.eventLoopDelayMs > s.eventLoopDelayMs;
    const demand = sample.peakInFlight >= DEMAND * previous;
    const rising =
      latencyMs !== undefined && this.longLatencyMs !== undefined && latencyMs > this.longLatencyMs * LATENCY_RISE;
    const stepUp = Math.ceil(previous * s.growth);

    // What the law allows; then the caps, and the name of the one that binds.
    let limit: number;
    let reason: LimitReason;
    if (target !== undefined) {
      // Toward the target, at most ×growth per window (thousands of takes at once would stall the loop).
      limit = Math.min(target, Math.max(previous, stepUp));
      reason = "rate_limit×latency";
    } else if (overloaded) {
      limit = previous;
      reason = "event_loop";
    } else if (rising) {
      limit = previous;
      reason = "latency";
    } else {
      limit = demand ? stepUp : previous;
      reason = "probing";
    }
    if (overloaded) {
      // Shrink while the loop is late, by 10 % a window, never below what the floor allows; and never below what
      // the rate limit needs (its share × the latency, no headroom): fewer slots than that take fewer jobs than the
      // limit lets arrive, so a backlog builds, which raises every job's latency without lowering the work per
      // second (a run at 1,800 tasks/s whose loop was late early on kept cutting, and its P50 rose to 3 s).
      // Below that level it holds: no growth while the loop is late.
      const needed = share !== undefined && latencyMs !== undefined ? Math.ceil((share * latencyMs) / 1000) : 0;
      const held = Math.min(limit, previous);
      const shrunk = held > needed ? Math.max(needed, Math.floor(held * 0.9)) : held;
      if (shrunk < limit) {
        limit = shrunk;
        reason = "event_loop";
      }
    }
    if (backoffCeiling !== undefined) {
      if (backoffCeiling < limit) {
        limit = backoffCeiling;
        reason = "429 backoff";
      } else if (sample.throttled === 0 && target !== undefined) {
        backoffCeiling = undefined; // recovered to the rate-limit target: it no longer binds
      }
    }
    if (memoryCap < limit) {
      limit = memoryCap;
      reason = "memory";
    }
    if (s.max <= limit) {
      limit = s.max;
      reason = "max";
    }
    if (limit < s.min) {
      limit = s.min;
      reason = "floor";
    }

    this.state = { limit, reason, latencyMs, backoffCeiling, mbPerJob, target };
    return this.state;
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}
