/**
 * Bee-Queue queues as this product uses them: worker queues that drop
 * succeeded jobs at once, and Lua scripts reloaded after a Redis restart.
 * Jobs are added without a Bee-Queue object, in its record format (the API:
 * enqueuer.ts; Kafka: ingest/idempotent-enqueue.ts). Which queue a task goes
 * to is task/routing.ts; the keys and record format are bee-queue-layout.ts.
 */
import { createRequire } from "node:module";
import BeeQueue from "bee-queue";
import type { RedisClient } from "../redis/client";
import type { TaskJob } from "../task/contract";
import { JITTER_BACKOFF, QUEUE_KEY_PREFIX } from "./bee-queue-layout";

export interface QueueOptions {
  redis: RedisClient;
  /** Stall interval: a job whose worker stops renewing its lock for this long is re-run. */
  stallIntervalMs?: number;
  keyPrefix?: string;
}

/** Bee-Queue's Lua loader (internal, untyped): SCRIPT LOAD of every script it calls by EVALSHA. */
const beeQueueLua = createRequire(import.meta.url)("bee-queue/lib/lua/index.js") as {
  buildCache(client: RedisClient): Promise<unknown>;
};
const reloading = new WeakSet<RedisClient>();

/**
 * Bee-Queue loads its Lua scripts once, when a queue is created, and calls
 * them by EVALSHA with no fallback; a Redis restart forgets them, and every
 * enqueue would fail with NOSCRIPT from then on. Each time the client
 * (re)connects, the scripts are loaded again (SCRIPT EXISTS, then LOAD of the
 * missing ones). Requests in the moment between reconnect and reload get a
 * 503 (see isRedisUnavailable).
 */
function reloadScriptsOnReconnect(client: RedisClient): void {
  if (reloading.has(client)) return;
  reloading.add(client);
  client.on("ready", () => {
    beeQueueLua.buildCache(client).catch(() => {});
  });
}

/** Settings both sides share: our ioredis client (never quit by Bee-Queue), our key prefix, no pub/sub events. */
function sharedSettings(options: QueueOptions): BeeQueue.QueueSettings {
  reloadScriptsOnReconnect(options.redis);
  return {
    redis: options.redis,
    prefix: options.keyPrefix ?? QUEUE_KEY_PREFIX,
    getEvents: false,
    sendEvents: false,
    storeJobs: false,
    quitCommandClient: false,
    stallInterval: options.stallIntervalMs ?? 5000,
  };
}

/**
 * A queue to process jobs of. Results live in the result store, so a
 * succeeded job is removed from Bee-Queue at once; a failed one stays, with
 * its stack traces, for inspection.
 */
export function createWorkerQueue(
  name: string,
  options: QueueOptions & { backoff: (job: BeeQueue.Job<TaskJob>) => number },
): BeeQueue<TaskJob> {
  const queue = new BeeQueue<TaskJob>(name, {
    ...sharedSettings(options),
    isWorker: true,
    activateDelayedJobs: true,
    removeOnSuccess: true,
    removeOnFailure: false,
  });
  queue.backoffStrategies.set(JITTER_BACKOFF, options.backoff);
  return queue;
}
