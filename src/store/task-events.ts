/**
 * The event log behind every push channel (SSE, WebSocket, GraphQL
 * subscriptions): Redis Streams, so a client that reconnects with the id of
 * the last event it saw (`Last-Event-ID`) gets what it missed. Pub/sub alone
 * loses whatever happens while a client is away.
 *
 * Two streams, written by the task store in the same round trip as the state
 * they describe (task-store.ts):
 *
 *  - `events:task:{id}`, one per task: every state change after acceptance
 *    (STARTED, RETRY, SUCCESS|FAILURE). It lives as long as the task's result.
 *    PENDING is not written: acceptance is the API's hot path, and a task is
 *    PENDING from acceptance by definition, so readers put a PENDING event with
 *    the id `0-1` before the stream's entries (every real id is greater).
 *  - `events:tenant:{tenant}` (`events:open` for tasks without a tenant): the
 *    completions of one tenant, with their results, for dashboards. Capped at
 *    EVENTS_STREAM_MAXLEN entries: the retention window is that many
 *    completions.
 *
 * Each append is also published on a channel named like its stream, with the
 * entry's id in front of its JSON, so that listeners (store/event-hub.ts) are
 * woken without polling and read the stream only to catch up.
 */
import type { TaskStatus } from "../task/contract";

/** Key prefix of the tasks' own event streams: `events:task:{task_id}`. */
export const TASK_EVENTS_KEY_PREFIX = "events:task:";

export function taskEventsKey(taskId: string): string {
  return `${TASK_EVENTS_KEY_PREFIX}${taskId}`;
}

export function tenantEventsKey(tenant: string | undefined): string {
  return tenant ? `events:tenant:${tenant}` : "events:open";
}

/** The id of the PENDING event that readers put first: below any id Redis gives (`{ms}-{seq}`, ms > 0). */
export const PENDING_EVENT_ID = "0-1";

/** Entries kept in one task's stream; a task has a handful (one per attempt, and its end). */
export const TASK_STREAM_MAXLEN = 100;

/** One state change of a task, as its stream holds it. A terminal one carries no result: readers take it from the task. */
export interface TaskChange {
  task_id: string;
  status: TaskStatus;
  /** Epoch ms of the change. */
  at: number;
  attempt?: number;
  error?: { code: string; message: string; retriable: boolean };
}

/** One completion, as a tenant's stream holds it. */
export interface TaskCompletion {
  task_id: string;
  status: "SUCCESS" | "FAILURE";
  task_type?: string;
  queue?: string;
  finished_at: number;
  result?: unknown;
  error?: unknown;
}

/**
 * The prefix of the channels that announce a stream's appends. Pub/sub
 * channels are global to a Redis server while keys belong to one database:
 * two deployments on two databases of one server would otherwise hear each
 * other's tenants (`events:open` of both).
 */
export function channelPrefix(redis: { options: { db?: number } }): string {
  return `db${redis.options.db ?? 0}|`;
}

/**
 * Lua shared by the scripts that change a task's state: appends one event to
 * a stream (trimmed to about `maxlen` entries), optionally renews its expiry,
 * and publishes `{id} {json}` on the stream's channel (prefix .. key). Returns the id.
 */
export const APPEND_EVENT_LUA = `
local function append_event(prefix, key, maxlen, json, ttl)
  local id = redis.call("XADD", key, "MAXLEN", "~", maxlen, "*", "e", json)
  if ttl then redis.call("EXPIRE", key, ttl) end
  redis.call("PUBLISH", prefix .. key, id .. " " .. json)
  return id
end
`;

/** A stream entry id, `{ms}-{seq}`, as two numbers that compare in stream order. */
export function parseEventId(id: string): [number, number] | undefined {
  const match = /^(\d{1,16})-(\d{1,16})$/.exec(id);
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2])];
}

/** Negative, 0 or positive as `a` comes before, is, or comes after `b` in a stream. */
export function compareEventIds(a: string, b: string): number {
  const [am, as] = parseEventId(a) ?? [0, 0];
  const [bm, bs] = parseEventId(b) ?? [0, 0];
  return am - bm || as - bs;
}

/** Whether a client's Last-Event-ID is one this log could have given (else it is ignored, as absent). */
export function isEventId(id: string): boolean {
  return parseEventId(id) !== undefined;
}
