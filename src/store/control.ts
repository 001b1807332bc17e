/**
 * What an operator changed at run time (issue 16 §2), in one Redis hash that
 * every process reads: which queues workers must not take jobs from, whether
 * Kafka consumption is paused, the LLM rate limit that overrides
 * LLM_RATE_LIMIT, and which worker processes were asked to recycle.
 *
 * Worker processes read it once a second (one HGETALL, whatever the number
 * of queues); the consumer role reads its one field inside the backpressure
 * check it already makes (ingest/backpressure.ts), so a pause costs no extra
 * round trip there. An action takes effect everywhere within about a second,
 * and survives restarts: a process that starts reads it before it takes work.
 */
import type Redis from "ioredis";
import type { Logger } from "../log";

export const CONTROL_KEY = "control:state";
/** The hash field that pauses Kafka consumption (read by ingest/backpressure.ts). */
export const KAFKA_PAUSED_FIELD = "paused:kafka";
const QUEUE_PAUSED = "paused:queue:";
const RATE_LIMIT = "llm_rate_limit";
const RECYCLE = "recycle:";

/** Who did it and when: kept with each change, shown by GET /admin/control. */
export interface ControlMark {
  at: number;
  by: string;
}

export interface RateLimitOverride extends ControlMark {
  calls: number;
  period_ms: number;
}

export interface ControlState {
  /** Queue name → when and by whom it was paused. */
  pausedQueues: Record<string, ControlMark>;
  kafkaPaused: ControlMark | undefined;
  rateLimit: RateLimitOverride | undefined;
  /** Worker id → when and by whom its recycle was asked. */
  recycle: Record<string, ControlMark>;
}

export const EMPTY_CONTROL: ControlState = {
  pausedQueues: {},
  kafkaPaused: undefined,
  rateLimit: undefined,
  recycle: {},
};

function parseMark<T extends ControlMark>(value: string | undefined): T | undefined {
  if (!value) return undefined;
  try {
    const parsed = JSON.parse(value) as T;
    return typeof parsed?.at === "number" ? parsed : undefined;
  } catch {
    // A hand-edited or corrupt field is ignored rather than stopping every worker's control loop.
    return undefined;
  }
}

export function parseControl(hash: Record<string, string>): ControlState {
  const state: ControlState = { pausedQueues: {}, kafkaPaused: undefined, rateLimit: undefined, recycle: {} };
  for (const [field, value] of Object.entries(hash)) {
    if (field === KAFKA_PAUSED_FIELD) state.kafkaPaused = parseMark(value);
    else if (field === RATE_LIMIT) {
      const limit = parseMark<RateLimitOverride>(value);
      if (limit && limit.calls > 0 && limit.period_ms > 0) state.rateLimit = limit;
    } else if (field.startsWith(QUEUE_PAUSED)) {
      const mark = parseMark(value);
      if (mark) state.pausedQueues[field.slice(QUEUE_PAUSED.length)] = mark;
    } else if (field.startsWith(RECYCLE)) {
      const mark = parseMark(value);
      if (mark) state.recycle[field.slice(RECYCLE.length)] = mark;
    }
  }
  return state;
}

export async function readControl(redis: Redis): Promise<ControlState> {
  return parseControl(await redis.hgetall(CONTROL_KEY));
}

const mark = (by: string): string => JSON.stringify({ at: Date.now(), by });

/** Each returns whether the state changed (false: it already was so). */
export const control = {
  async setQueuePaused(redis: Redis, queue: string, paused: boolean, by: string): Promise<boolean> {
    const field = `${QUEUE_PAUSED}${queue}`;
    return paused
      ? (await redis.hsetnx(CONTROL_KEY, field, mark(by))) === 1
      : (await redis.hdel(CONTROL_KEY, field)) === 1;
  },
  async setKafkaPaused(redis: Redis, paused: boolean, by: string): Promise<boolean> {
    return paused
      ? (await redis.hsetnx(CONTROL_KEY, KAFKA_PAUSED_FIELD, mark(by))) === 1
      : (await redis.hdel(CONTROL_KEY, KAFKA_PAUSED_FIELD)) === 1;
  },
  /** undefined: back to LLM_RATE_LIMIT. */
  async setRateLimit(
    redis: Redis,
    limit: { calls: number; periodMs: number } | undefined,
    by: string,
  ): Promise<boolean> {
    if (!limit) return (await redis.hdel(CONTROL_KEY, RATE_LIMIT)) === 1;
    const value: RateLimitOverride = { calls: limit.calls, period_ms: limit.periodMs, at: Date.now(), by };
    await redis.hset(CONTROL_KEY, RATE_LIMIT, JSON.stringify(value));
    return true;
  },
  async requestRecycle(redis: Redis, workerId: string, by: string): Promise<boolean> {
    return (await redis.hsetnx(CONTROL_KEY, `${RECYCLE}${workerId}`, mark(by))) === 1;
  },
  /** The worker took its recycle request: it must not recycle its replacement (same id) again. */
  async takeRecycle(redis: Redis, workerId: string): Promise<boolean> {
    return (await redis.hdel(CONTROL_KEY, `${RECYCLE}${workerId}`)) === 1;
  },
};

export interface ControlWatch {
  /** The latest state read (EMPTY_CONTROL before the first read). */
  current(): ControlState;
  /** Reads now and calls onChange if the state differs. */
  refresh(): Promise<ControlState>;
  stop(): void;
}

/**
 * Reads the control hash every `intervalMs` and calls `onChange` when it
 * differs from the last read. A failed read keeps the last state (a Redis
 * outage must not resume a paused queue) and is logged once per outage.
 */
export function watchControl(deps: {
  redis: Redis;
  onChange: (state: ControlState, previous: ControlState) => void;
  logger: Logger;
  intervalMs?: number;
}): ControlWatch {
  const { redis, onChange, logger, intervalMs = 1000 } = deps;
  let state = EMPTY_CONTROL;
  let last = "[]";
  let failing = false;
  const refresh = async () => {
    try {
      const hash = await redis.hgetall(CONTROL_KEY);
      failing = false;
      const text = JSON.stringify(Object.entries(hash).sort(([a], [b]) => (a < b ? -1 : 1)));
      if (text !== last) {
        last = text;
        const previous = state;
        state = parseControl(hash);
        onChange(state, previous);
      }
    } catch (error) {
      if (!failing) logger.warn({ err: error }, "could not read the operator's control state; keeping the last one");
      failing = true;
    }
    return state;
  };
  const timer = setInterval(() => void refresh(), intervalMs);
  timer.unref();
  return { current: () => state, refresh, stop: () => clearInterval(timer) };
}
