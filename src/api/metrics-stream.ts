/**
 * GET /metrics/stream: the /metrics snapshot pushed every second, for the
 * operator console (/dashboard) and anything else that would otherwise poll.
 *
 * One read per process per second, whatever the number of clients: a
 * snapshot is one pipelined round trip of ~60 commands (metrics/snapshot.ts),
 * so ten open consoles polling each on their own would cost ten. The
 * broadcast below reads once per tick and hands the same snapshot to every
 * subscriber; it runs only while someone listens. A read that is still in
 * flight when the next tick comes makes that tick a no-op, so a slow Redis
 * never piles reads up. Each client's stream is sse.ts's: heartbeats and the
 * slow-client bound are the same as GET /events'.
 */
import { Elysia, t } from "elysia";
import type { Logger } from "../log";
import type { MetricsSnapshot } from "../metrics/snapshot";
import type { Worker } from "../queue/worker-registry";
import type { ControlView } from "./admin";
import { COMMON_ERRORS, errorResponses } from "./error-responses";
import { SSE_RESPONSE } from "./events";
import { createSseStream } from "./sse";

export interface Broadcast<T> {
  /** Calls `send` with every value read from now on (the latest one at once, if there is one); returns the unsubscribe. */
  subscribe(send: (snapshot: T) => void): () => void;
  readonly subscribers: number;
}

export type MetricsBroadcast = Broadcast<MetricsSnapshot>;

/** What `event: workers` carries: GET /workers's list, with the server's clock when it was read. */
export interface WorkersTick {
  /** ISO time of the read, so the page measures heartbeat ages with the server's clock. */
  at: string;
  workers: Worker[];
  /** What operators changed (GET /admin/control's answer), for the console's controls. */
  control?: ControlView;
}
export type WorkersBroadcast = Broadcast<WorkersTick>;

/** One read per tick, shared by every subscriber: the metrics snapshot, and the workers list (`event: workers`). */
export function createBroadcast<T>(deps: {
  read: () => Promise<T>;
  intervalMs?: number;
  onError?: (error: unknown) => void;
}): Broadcast<T> {
  const { read, intervalMs = 1000, onError = () => {} } = deps;
  const listeners = new Set<(snapshot: T) => void>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let reading = false;
  let latest: { snapshot: T; at: number } | undefined;

  const tick = async () => {
    if (reading) return;
    reading = true;
    try {
      const snapshot = await read();
      latest = { snapshot, at: Date.now() };
      for (const send of [...listeners]) send(snapshot);
    } catch (error) {
      onError(error);
    } finally {
      reading = false;
    }
  };

  return {
    subscribe(send) {
      listeners.add(send);
      // A snapshot younger than a tick is still the current one: a new client sees numbers at once.
      if (latest && Date.now() - latest.at < intervalMs) send(latest.snapshot);
      if (!timer) {
        timer = setInterval(tick, intervalMs);
        if (!latest || Date.now() - latest.at >= intervalMs) void tick();
      }
      return () => {
        listeners.delete(send);
        if (listeners.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
    get subscribers() {
      return listeners.size;
    },
  };
}

export const createMetricsBroadcast: (deps: {
  read: () => Promise<MetricsSnapshot>;
  intervalMs?: number;
  onError?: (error: unknown) => void;
}) => MetricsBroadcast = createBroadcast;

/** USD per million tokens, as configured: the console's cost estimate. */
export interface TokenPrices {
  input: number;
  output: number;
}

export function metricsStreamRoutes(deps: {
  broadcast: MetricsBroadcast;
  /** The live workers, sent as `event: workers` on each of its ticks. */
  workers?: WorkersBroadcast;
  /** The workers' heartbeat interval, sent in `event: config` so the page can mark stale ones. */
  workerHeartbeatMs?: number;
  sse: { heartbeatMs: number; maxBufferBytes: number; slowClientGraceMs: number };
  logger: Logger;
  prices?: TokenPrices;
  intervalMs?: number;
}) {
  const { broadcast, logger, intervalMs = 1000 } = deps;
  return new Elysia({ name: "metrics-stream" }).get(
    "/metrics/stream",
    ({ request }) => {
      let unsubscribe = () => {};
      const stream = createSseStream({
        ...deps.sse,
        signal: request.signal,
        onClose: (reason) => {
          unsubscribe();
          if (reason === "slow_client") logger.warn({ route: "GET /metrics/stream" }, "metrics stream client dropped");
        },
      });
      stream.send({
        event: "config",
        data: JSON.stringify({
          interval_ms: intervalMs,
          ...(deps.workerHeartbeatMs ? { worker_heartbeat_ms: deps.workerHeartbeatMs } : {}),
          ...(deps.prices ? { prices_usd_per_mtok: deps.prices } : {}),
        }),
      });
      if (stream.open) {
        const stops = [
          broadcast.subscribe((snapshot) => {
            stream.send({ event: "metrics", data: JSON.stringify(snapshot) });
          }),
          ...(deps.workers
            ? [deps.workers.subscribe((tick) => stream.send({ event: "workers", data: JSON.stringify(tick) }))]
            : []),
        ];
        unsubscribe = () => {
          for (const stop of stops) stop();
        };
      }
      return stream.response;
    },
    {
      response: { 200: t.String(SSE_RESPONSE), ...errorResponses(...COMMON_ERRORS) },
      detail: {
        summary: "The /metrics snapshot pushed every second, as Server-Sent Events",
        description:
          "First `event: config` ({interval_ms, worker_heartbeat_ms, prices_usd_per_mtok}: the configured LLM prices, for cost estimates), then `event: metrics` every interval_ms with GET /metrics's JSON, and `event: workers` every interval_ms with {at, workers}: GET /workers's list and the server's time of the read. Every client of one API process gets the same snapshot and list, each read once per interval. Comments (`: ping`) keep idle connections open; a client that reads too slowly gets `event: error` (SLOW_CLIENT) and is dropped. Admin-only with API keys on; browsers pass `?access_token=` from GET /auth/stream-token.",
        tags: ["operations"],
      },
    },
  );
}
