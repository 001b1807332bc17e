/**
 * Live worker processes, from heartbeats that expire: a worker that dies
 * without a word (kill -9, lost machine) drops out of the list once its TTL
 * passes, and one that exits gracefully drops out at once.
 *
 *   {prefix}:{id}     string, the worker's JSON, PX ttl
 *   {prefix}:index    zset, id scored by the expiry of its key (epoch ms), so
 *                     listing needs no SCAN and prunes itself
 *
 * Round trips: 1 per beat, 2 per listing.
 */
import { Type as t } from "@sinclair/typebox";
import type Redis from "ioredis";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import { execChecked } from "../redis/script";
import { DATE_TIME_FORMAT } from "../util/typebox-formats";
import type { JobsInFlightStatus } from "./adaptive-concurrency";
import { LIMIT_REASONS } from "./concurrency-controller";
import type { StallCheckTiming } from "./worker-runner";

/** The current limit of jobs in flight and why (queue/adaptive-concurrency.ts). */
export const JobsInFlightSchema = t.Object({
  mode: t.Union([t.Literal("auto"), t.Literal("fixed")]),
  limit: t.Integer(),
  in_flight: t.Integer(),
  /** One of LIMIT_REASONS. */
  reason: t.String({ examples: [...LIMIT_REASONS] }),
  latency_ms: t.Optional(t.Number()),
  target: t.Optional(t.Integer()),
  event_loop_delay_ms: t.Number(),
  throttled: t.Integer(),
  mb_per_1000_jobs: t.Optional(t.Number()),
});

/** Whether stall detection and heartbeats keep their timing under load. */
export const StallCheckSchema = t.Object({
  checks: t.Integer(),
  interval_ms: t.Integer(),
  max_gap_ms: t.Integer(),
  requeued: t.Integer(),
});

export const WorkerSchema = t.Object({
  id: t.String(),
  host: t.String(),
  pid: t.Integer(),
  queues: t.Array(t.String()),
  concurrency: t.Integer(),
  active_jobs: t.Integer(),
  processed: t.Integer(),
  failed: t.Integer(),
  rss_mb: t.Number(),
  started_at: t.String({ format: DATE_TIME_FORMAT }),
  last_seen: t.String({ format: DATE_TIME_FORMAT }),
  /** ms since the previous beat (the interval is WORKER_HEARTBEAT_MS): a late beat shows a starved event loop. */
  heartbeat_gap_ms: t.Optional(t.Integer()),
  jobs_in_flight: t.Optional(JobsInFlightSchema),
  /** Stall checks since start, their configured and largest gap between two beats. */
  stall_check: t.Optional(StallCheckSchema),
});
export type Worker = typeof WorkerSchema.static;

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  queues: string[];
  concurrency: number;
  /** Epoch ms. */
  started_at: number;
}

export interface WorkerStats {
  active_jobs: number;
  processed: number;
  failed: number;
  rss_mb: number;
  /** The current limit of jobs in flight, when it moves (it replaces WorkerInfo's). */
  concurrency?: number;
  jobs_in_flight?: JobsInFlightStatus;
  stall_check?: StallCheckTiming;
}

export interface WorkerHeartbeat {
  /** Beats at once, then every interval. Idempotent. */
  start(): void;
  /** Stops beating and removes the worker from the list. Never throws. */
  stop(): Promise<void>;
}

/** ms between a worker's heartbeats; an entry lives 3 of them, and the console marks one stale after 2. */
export const WORKER_HEARTBEAT_MS = 2000;

const indexKey = (prefix: string) => `${prefix}:index`;
const workerKey = (prefix: string, id: string) => `${prefix}:${id}`;

export function createWorkerHeartbeat(deps: {
  redis: Redis;
  info: WorkerInfo;
  stats: () => WorkerStats;
  intervalMs?: number;
  /** How long a worker stays listed after its last beat; a few intervals, so one slow beat does not drop it. */
  ttlMs?: number;
  prefix?: string;
  logger?: Logger;
}): WorkerHeartbeat {
  const { redis, info, stats, intervalMs = WORKER_HEARTBEAT_MS, prefix = "workers", logger } = deps;
  const ttlMs = deps.ttlMs ?? intervalMs * 3;
  const key = workerKey(prefix, info.id);
  const startedAt = new Date(info.started_at).toISOString();
  let timer: ReturnType<typeof setInterval> | undefined;
  let stopped = false;
  let pending: Promise<void> = Promise.resolve();
  let failing = false;
  let lastBeat: number | undefined;

  const send = async () => {
    const now = Date.now();
    const gap = lastBeat === undefined ? undefined : now - lastBeat;
    lastBeat = now;
    const worker: Worker = {
      ...info,
      queues: [...info.queues],
      ...stats(),
      started_at: startedAt,
      last_seen: new Date(now).toISOString(),
      ...(gap === undefined ? {} : { heartbeat_gap_ms: gap }),
    };
    await execChecked(
      redis
        .multi()
        .set(key, JSON.stringify(worker), "PX", ttlMs)
        .zadd(indexKey(prefix), now + ttlMs, info.id),
    );
  };

  // A lost beat is not fatal: the next one, an interval later, repairs the entry before its TTL runs out.
  const beat = () => {
    pending = send().then(
      () => {
        failing = false;
      },
      (error: unknown) => {
        if (!failing) logger?.warn({ worker_id: info.id, error: errorMessage(error) }, "heartbeat failed");
        failing = true;
      },
    );
  };

  return {
    start() {
      if (timer || stopped) return;
      beat();
      timer = setInterval(beat, intervalMs);
      timer.unref();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      // A beat still in flight must not land after the removal and list the worker again for a TTL.
      await pending;
      try {
        await redis.multi().del(key).zrem(indexKey(prefix), info.id).exec();
      } catch (error) {
        logger?.warn({ worker_id: info.id, error: errorMessage(error) }, "could not remove the worker's heartbeat");
      }
    },
  };
}

/** The live workers, sorted by id. */
export async function listWorkers(deps: { redis: Redis; prefix?: string; now?: number }): Promise<Worker[]> {
  const { redis, prefix = "workers", now = Date.now() } = deps;
  const index = indexKey(prefix);
  const replies = await redis.multi().zremrangebyscore(index, "-inf", now).zrange(index, "0", "-1").exec();
  const [error, ids] = replies?.[1] ?? [new Error("no reply to ZRANGE")];
  if (error) throw error;
  if (!Array.isArray(ids) || ids.length === 0) return [];
  const values = await redis.mget(...ids.map((id: string) => workerKey(prefix, id)));
  const workers: Worker[] = [];
  for (const value of values) {
    // A key can expire between the two round trips, or a beat can be mid-write; skip what is not there.
    if (value) workers.push(JSON.parse(value) as Worker);
  }
  return workers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
