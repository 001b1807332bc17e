/**
 * Per-client limits, shared by every API process through Redis:
 *
 * - API_RATE_LIMIT: requests per period per client (the API key's tenant, or
 *   the remote address without keys). GCRA, the same Lua script as the LLM
 *   limit, with a burst of one period's requests; over it → 429 with
 *   Retry-After. One round trip per request, none when unset.
 * - API_MAX_PENDING_TASKS: tasks a tenant has accepted but not finished.
 *   Each is a member of a sorted set scored by acceptance time, added when
 *   accepted and removed when it ends (task-store.ts), so a lost removal
 *   (a crash between the two) heals itself: members older than the result
 *   TTL are dropped before counting, never a counter that drifts for ever.
 */
import { Elysia } from "elysia";
import type Redis from "ioredis";
import { AppError } from "../errors";
import type { Logger } from "../log";
import { defineScript } from "../redis/script";
import { pendingKey } from "../store/task-store";
import { createGcra } from "../util/gcra";
import type { Keyring } from "./auth";
import { errorResponse } from "./error-responses";

const PUBLIC_PATHS = new Set(["/health"]);

/** The client's limit key and a name for logs. */
type ClientOf = (request: Request) => string;

/** 429 with Retry-After when a client is over API_RATE_LIMIT. */
export function rateLimitGuard(deps: {
  redis: Redis;
  limit: { calls: number; periodMs: number } | undefined;
  clientOf: ClientOf;
  logger: Logger;
}) {
  const plugin = new Elysia({ name: "rate-limit" });
  const { redis, limit, clientOf, logger } = deps;
  if (!limit) return plugin;
  const attempt = createGcra(redis);
  const interval = limit.periodMs / limit.calls;
  const tolerance = interval * (limit.calls - 1);
  return plugin.onRequest(async ({ request }) => {
    const path = new URL(request.url).pathname;
    if (PUBLIC_PATHS.has(path)) return;
    const client = clientOf(request);
    const waitMs = await attempt(`ratelimit:client:${client}`, interval, tolerance);
    if (waitMs <= 0) return;
    const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
    logger.info(
      { route: `${request.method} ${path}`, client, retry_after_s: retryAfter },
      "request rejected: rate limited",
    );
    const response = errorResponse(
      429,
      "RATE_LIMITED",
      `over the request rate limit of ${limit.calls} per ${limit.periodMs} ms; retry after ${retryAfter} s`,
    );
    response.headers.set("retry-after", String(retryAfter));
    return response;
  });
}

/**
 * KEYS[1] tenant:{name}:pending
 * ARGV[1] task id   ARGV[2] now ms   ARGV[3] oldest score kept (now - result TTL)   ARGV[4] cap
 * Returns 1 when the task was admitted (and added), else 0.
 */
const RESERVE = defineScript<number>(
  "reservePending",
  `
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", "(" .. ARGV[3])
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[2]) - tonumber(ARGV[3]))
return 1
`,
);

export interface PendingCap {
  /** Admits a new task of a tenant or throws a 429 AppError; a no-op without a cap or a tenant. */
  reserve(tenant: string | undefined, taskId: string): Promise<void>;
  /** Gives a reservation back when the task could not be enqueued. */
  release(tenant: string | undefined, taskId: string): Promise<void>;
}

export function createPendingCap(deps: { redis: Redis; max: number; resultTtlSeconds: number }): PendingCap {
  const { redis, max, resultTtlSeconds } = deps;
  return {
    async reserve(tenant, taskId) {
      if (max <= 0 || tenant === undefined) return;
      const now = Date.now();
      const admitted = await RESERVE.run(
        redis,
        [pendingKey(tenant)],
        [taskId, now, now - resultTtlSeconds * 1000, max],
      );
      if (admitted !== 1) {
        throw new AppError(
          "TOO_MANY_PENDING_TASKS",
          `${max} tasks of this API key are queued or running (API_MAX_PENDING_TASKS); wait for some to finish`,
          { status: 429, details: { max_pending: max } },
        );
      }
    },
    async release(tenant, taskId) {
      if (max <= 0 || tenant === undefined) return;
      await redis.zrem(pendingKey(tenant), taskId);
    },
  };
}

/** The rate-limit identity of a request: its tenant, else its remote address. */
export function clientIdentity(keyring: Keyring, addressOf: (request: Request) => string | undefined): ClientOf {
  return (request) => {
    const tenant = keyring.tenantOf(request);
    return tenant !== undefined ? `tenant:${tenant}` : `ip:${addressOf(request) ?? "unknown"}`;
  };
}
