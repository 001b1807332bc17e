/**
 * Webhook deliveries in Redis, so that retries over hours survive restarts
 * (issue 15 §4). Layout, under a prefix (`webhook` by default):
 *
 *   {p}:due                 sorted set: task ids scored by the epoch ms of their next attempt
 *   {p}:delivery:{task_id}  hash: url, tenant, type, body (the exact bytes signed), state, attempts, ...
 *   {p}:attempts:{task_id}  list: one JSON record per attempt, oldest first
 *   {p}:gone:{tenant}       hash: callback URLs that answered 410 Gone → epoch ms
 *
 * A delivery is created by a finish hook, in the pipeline that records the
 * task's end (task-store.ts), so a result never exists without its delivery.
 * A deliverer claims due deliveries with one script that moves their score
 * forward by a lease: a deliverer that dies mid-attempt leaves its claims to
 * come due again when the lease ends. The lease (the score the claim wrote)
 * is also the claim's fencing token: an attempt recorded after its lease was
 * taken over by another deliverer is kept in the list (it happened) but no
 * longer moves the schedule.
 *
 * Round trips: a claim poll is 1 (2 when something was due: the hashes),
 * an attempt 2 (the 410 check, the record).
 */
import type Redis from "ioredis";
import { defineScript, execChecked } from "../redis/script";
import type { FinishHook } from "../store/task-store";
import { taskView } from "../task/contract";

export type DeliveryState = "pending" | "retrying" | "delivered" | "failed" | "gone";
export type EventType = "task.completed" | "task.failed";

/** One attempt as GET /task/:id/deliveries shows it. */
export interface DeliveryAttempt {
  n: number;
  /** When it started, ISO 8601. */
  at: string;
  status_code?: number;
  /** Why no response came (timeout, connection refused, refused address). */
  error?: string;
  duration_ms: number;
  /** The delivery's state after this attempt. */
  state: DeliveryState;
  next_attempt_at?: string;
}

export interface Delivery {
  /** `webhook-id`: the same on every attempt. */
  id: string;
  task_id: string;
  url: string;
  /** "" when auth is off. */
  tenant: string;
  type: EventType;
  /** The request body, exactly as signed and sent on every attempt. */
  body: string;
  created_at: number;
  state: DeliveryState;
  attempts: number;
  next_attempt_at?: number;
  /** Why a delivery was skipped (its URL had answered 410 to the tenant before). */
  detail?: string;
}

export interface Claim {
  delivery: Delivery;
  /** The score the claim wrote: when it lapses, and its fencing token. */
  lease: number;
}

/** How long a delivery's records are kept after its last change: past any retry schedule (100 attempts ≤ 100 h). */
const RECORD_TTL_SECONDS = 7 * 24 * 3600;
/** How long a URL that answered 410 stays skipped for its tenant after the answer. */
const GONE_TTL_SECONDS = 30 * 24 * 3600;
const GONE_DETAIL = "skipped: this URL answered 410 Gone to an earlier webhook of this tenant";

export function deliveryId(taskId: string): string {
  return `msg_${taskId}`;
}

/*
 * KEYS[1] due   KEYS[2] delivery hash   KEYS[3] the tenant's gone hash
 * ARGV[1] task id   ARGV[2] url   ARGV[3] tenant   ARGV[4] type   ARGV[5] body   ARGV[6] now (epoch ms)
 * ARGV[7] record ttl (s)   ARGV[8] detail of a skipped delivery
 * Creates the delivery once: a finish recorded twice (a retried pipeline) creates nothing more. A URL that
 * answered 410 to the tenant gets the state gone at once. Returns 1 when created.
 */
const CREATE = defineScript<number>(
  "webhookCreate",
  `
if redis.call("EXISTS", KEYS[2]) == 1 then return 0 end
redis.call("HSET", KEYS[2], "task_id", ARGV[1], "url", ARGV[2], "tenant", ARGV[3], "type", ARGV[4], "body", ARGV[5],
  "created_at", ARGV[6], "attempts", 0)
if redis.call("HEXISTS", KEYS[3], ARGV[2]) == 1 then
  redis.call("HSET", KEYS[2], "state", "gone", "detail", ARGV[8])
else
  redis.call("HSET", KEYS[2], "state", "pending", "next_attempt_at", ARGV[6])
  redis.call("ZADD", KEYS[1], ARGV[6], ARGV[1])
end
redis.call("EXPIRE", KEYS[2], ARGV[7])
return 1
`,
);

/*
 * KEYS[1] due
 * ARGV[1] now (epoch ms)   ARGV[2] lease (ms)   ARGV[3] most deliveries to claim
 * Returns the lease's end and the task ids of the due deliveries, now scored at it.
 */
const CLAIM = defineScript<[number, string[]]>(
  "webhookClaim",
  `
local ids = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[3]))
local lease = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(ids) do redis.call("ZADD", KEYS[1], "XX", lease, id) end
return {lease, ids}
`,
);

/*
 * KEYS[1] due   KEYS[2] delivery hash   KEYS[3] attempts list   KEYS[4] the tenant's gone hash
 * ARGV[1] task id   ARGV[2] the claim's lease   ARGV[3] attempt JSON ("" for none)
 * ARGV[4] new state: retrying, delivered, failed, gone, or "release" (shutdown: due again now, no attempt)
 * ARGV[5] next attempt (epoch ms, for retrying)   ARGV[6] url   ARGV[7] now   ARGV[8] record ttl (s)
 * ARGV[9] gone ttl (s)   ARGV[10] detail ("" for none)
 * Returns 1, or 0 when the lease was taken over (the attempt is still listed; the schedule is the new holder's).
 */
const RECORD = defineScript<number>(
  "webhookRecord",
  `
if ARGV[3] ~= "" then
  redis.call("RPUSH", KEYS[3], ARGV[3])
  redis.call("EXPIRE", KEYS[3], ARGV[8])
end
local score = redis.call("ZSCORE", KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[4] == "release" then
  redis.call("ZADD", KEYS[1], ARGV[7], ARGV[1])
  return 1
end
if ARGV[3] ~= "" then redis.call("HINCRBY", KEYS[2], "attempts", 1) end
redis.call("HSET", KEYS[2], "state", ARGV[4])
if ARGV[10] ~= "" then redis.call("HSET", KEYS[2], "detail", ARGV[10]) end
if ARGV[4] == "retrying" then
  redis.call("ZADD", KEYS[1], ARGV[5], ARGV[1])
  redis.call("HSET", KEYS[2], "next_attempt_at", ARGV[5])
else
  redis.call("ZREM", KEYS[1], ARGV[1])
  redis.call("HDEL", KEYS[2], "next_attempt_at")
  if ARGV[4] == "gone" and ARGV[3] ~= "" then
    redis.call("HSET", KEYS[4], ARGV[6], ARGV[7])
    redis.call("EXPIRE", KEYS[4], ARGV[9])
  end
end
redis.call("EXPIRE", KEYS[2], ARGV[8])
return 1
`,
);

export interface DeliveryStore {
  /** Creates a task's delivery in its finish pipeline, when the task has a callback_url. */
  readonly onFinish: FinishHook;
  /** Claims up to `limit` due deliveries for `leaseMs`. */
  claim(now: number, leaseMs: number, limit: number): Promise<Claim[]>;
  /** Whether the URL answered 410 Gone to an earlier webhook of the tenant. */
  isGone(tenant: string, url: string): Promise<boolean>;
  /**
   * Records an attempt and the state it leads to (retrying at nextAttemptAt, or final), or a skip without an
   * attempt (gone, with a detail); false when the claim had lapsed to another deliverer.
   */
  record(
    claim: Claim,
    attempt: DeliveryAttempt | undefined,
    state: Exclude<DeliveryState, "pending">,
    options?: { nextAttemptAt?: number; detail?: string; now?: number },
  ): Promise<boolean>;
  /** Gives a claim back, due at once, without an attempt (the deliverer is shutting down). */
  release(claim: Claim, now?: number): Promise<boolean>;
  /** A task's delivery and its attempts; undefined when it has none. */
  read(taskId: string): Promise<{ delivery: Delivery; attempts: DeliveryAttempt[] } | undefined>;
}

function parseDelivery(hash: Record<string, string>): Delivery | undefined {
  if (!hash.task_id || !hash.url || !hash.body) return undefined;
  return {
    id: deliveryId(hash.task_id),
    task_id: hash.task_id,
    url: hash.url,
    tenant: hash.tenant ?? "",
    type: hash.type as EventType,
    body: hash.body,
    created_at: Number(hash.created_at),
    state: hash.state as DeliveryState,
    attempts: Number(hash.attempts ?? 0),
    ...(hash.next_attempt_at ? { next_attempt_at: Number(hash.next_attempt_at) } : {}),
    ...(hash.detail ? { detail: hash.detail } : {}),
  };
}

export function createDeliveryStore(deps: { redis: Redis; prefix?: string }): DeliveryStore {
  const { redis, prefix = "webhook" } = deps;
  const keys = {
    due: `${prefix}:due`,
    delivery: (taskId: string) => `${prefix}:delivery:${taskId}`,
    attempts: (taskId: string) => `${prefix}:attempts:${taskId}`,
    gone: (tenant: string) => `${prefix}:gone:${tenant}`,
  };

  const run = (claim: Claim, attempt: string, state: string, extra: { next?: number; detail?: string; now: number }) =>
    RECORD.run(
      redis,
      [
        keys.due,
        keys.delivery(claim.delivery.task_id),
        keys.attempts(claim.delivery.task_id),
        keys.gone(claim.delivery.tenant),
      ],
      [
        claim.delivery.task_id,
        claim.lease,
        attempt,
        state,
        extra.next ?? 0,
        claim.delivery.url,
        extra.now,
        RECORD_TTL_SECONDS,
        GONE_TTL_SECONDS,
        extra.detail ?? "",
      ],
    );

  return {
    onFinish(pipeline, task) {
      if (!task.callback_url) return;
      const type: EventType = task.status === "SUCCESS" ? "task.completed" : "task.failed";
      // The body is fixed now, with the event's time: every attempt sends (and signs) the same bytes.
      const body = JSON.stringify({ type, timestamp: new Date(task.finished_at).toISOString(), data: taskView(task) });
      const tenant = task.tenant ?? "";
      CREATE.queue(
        redis,
        pipeline,
        [keys.due, keys.delivery(task.task_id), keys.gone(tenant)],
        [task.task_id, task.callback_url, tenant, type, body, task.finished_at, RECORD_TTL_SECONDS, GONE_DETAIL],
      );
    },

    async claim(now, leaseMs, limit) {
      const [lease, ids] = await CLAIM.run(redis, [keys.due], [now, leaseMs, limit]);
      if (ids.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hgetall(keys.delivery(id));
      const hashes = (await execChecked(pipeline)) as Record<string, string>[];
      const claims: Claim[] = [];
      const orphans: string[] = [];
      ids.forEach((id, i) => {
        const delivery = parseDelivery(hashes[i] ?? {});
        if (delivery) claims.push({ delivery, lease: Number(lease) });
        else orphans.push(id);
      });
      // A due id whose record expired has nothing left to deliver.
      if (orphans.length > 0) await redis.zrem(keys.due, ...orphans);
      return claims;
    },

    async isGone(tenant, url) {
      return (await redis.hexists(keys.gone(tenant), url)) === 1;
    },

    async record(claim, attempt, state, options = {}) {
      const detail = attempt === undefined && state === "gone" ? GONE_DETAIL : options.detail;
      const applied = await run(claim, attempt ? JSON.stringify(attempt) : "", state, {
        ...(options.nextAttemptAt === undefined ? {} : { next: options.nextAttemptAt }),
        ...(detail === undefined ? {} : { detail }),
        now: options.now ?? Date.now(),
      });
      return applied === 1;
    },

    async release(claim, now = Date.now()) {
      return (await run(claim, "", "release", { now })) === 1;
    },

    async read(taskId) {
      const [hash, attempts] = (await execChecked(
        redis.multi().hgetall(keys.delivery(taskId)).lrange(keys.attempts(taskId), 0, -1),
      )) as [Record<string, string>, string[]];
      const delivery = parseDelivery(hash);
      if (!delivery) return undefined;
      return { delivery, attempts: attempts.map((line) => JSON.parse(line) as DeliveryAttempt) };
    },
  };
}
