/**
 * What every push channel sends, written once: SSE (api/events.ts), the
 * WebSocket and GraphQL subscriptions differ only in how they frame it.
 *
 *  - followTask: every state change of one task, in order, from PENDING to
 *    its end. The final event is the task exactly as GET /task/:id shows it
 *    (read from the task when its end is seen, not copied into the stream),
 *    and then the feed ends. A client that comes after the end gets the
 *    history and the final event at once; one whose Last-Event-ID is already
 *    the end gets nothing (`ended`: SSE answers 204, which tells EventSource
 *    to stop reconnecting).
 *  - followCompletions: the completions of one tenant, filtered, for
 *    dashboards; live from now, or from a Last-Event-ID within the retention.
 */
import type Redis from "ioredis";
import { type TaskStatus, TERMINAL, taskView } from "../task/contract";
import { dataOf, type EventHub } from "./event-hub";
import { compareEventIds, PENDING_EVENT_ID, type TaskCompletion, taskEventsKey, tenantEventsKey } from "./task-events";
import type { TaskStore } from "./task-store";

export interface FeedEvent {
  /** The id a client sends back (Last-Event-ID) to resume after this event. */
  id: string;
  data: Record<string, unknown>;
  /** The task's last event: the feed ends after it. */
  final: boolean;
}

export interface FeedSink {
  event(event: FeedEvent): void;
  /** Events were trimmed from the log while the client was away: it missed some. */
  gap?(): void;
  /** The log could not be read; the feed is over. */
  error(error: unknown): void;
}

export interface Feed {
  close(): void;
}

/**
 * The id of a final event made from the task itself, when its stream holds no
 * end (a task failed by its queue before it could record one): above every
 * id Redis gives until the year 2286, so a client that resumes after it has
 * seen the end.
 */
export const FINAL_EVENT_ID = "9999999999999-0";

export interface FeedDeps {
  hub: EventHub;
  store: Pick<TaskStore, "get">;
  redis: Redis;
}

export async function followTask(
  deps: FeedDeps,
  request: { taskId: string; tenant: string | undefined; after: string | undefined },
  sink: FeedSink,
): Promise<Feed | "not_found" | "ended"> {
  const { hub, store, redis } = deps;
  const { taskId, tenant, after } = request;
  const key = taskEventsKey(taskId);
  const initial = await store.get(taskId, tenant);
  if (!initial) return "not_found";
  if (after !== undefined && TERMINAL.has(initial.status)) {
    if (compareEventIds(after, FINAL_EVENT_ID) >= 0) return "ended";
    const rest = await redis.xrange(key, `(${after}`, "+", "COUNT", 1);
    if (rest.length === 0) return "ended";
  }
  let ended = false;
  let follow: { close(): void } | undefined;
  const finish = async (id: string) => {
    ended = true;
    follow?.close();
    try {
      const state = (await store.get(taskId, tenant)) ?? initial;
      sink.event({ id, data: { ...taskView(state) }, final: true });
    } catch (error) {
      sink.error(error);
    }
  };
  if (after === undefined) {
    sink.event({
      id: PENDING_EVENT_ID,
      data: { task_id: taskId, status: "PENDING", ...(initial.accepted_at ? { at: initial.accepted_at } : {}) },
      final: false,
    });
  }
  follow = hub.follow(key, {
    ...(after === undefined ? {} : { after }),
    onEntry(entry) {
      if (ended) return;
      const data = dataOf(entry);
      if (TERMINAL.has(data.status as TaskStatus)) void finish(entry.id);
      else sink.event({ id: entry.id, data, final: false });
    },
    onLive() {
      // Over, but its stream holds no end: the task itself says how it ended.
      if (!ended && TERMINAL.has(initial.status)) void finish(FINAL_EVENT_ID);
    },
    onGap: () => sink.gap?.(),
    onError: (error) => {
      ended = true;
      sink.error(error);
    },
  });
  if (ended) follow.close();
  return {
    close() {
      ended = true;
      follow?.close();
    },
  };
}

export interface CompletionFilter {
  taskTypes?: ReadonlySet<string>;
  queues?: ReadonlySet<string>;
  statuses?: ReadonlySet<string>;
}

export function matches(filter: CompletionFilter, completion: TaskCompletion): boolean {
  if (filter.statuses && !filter.statuses.has(completion.status)) return false;
  if (filter.taskTypes && !filter.taskTypes.has(completion.task_type ?? "")) return false;
  if (filter.queues && !filter.queues.has(completion.queue ?? "")) return false;
  return true;
}

export function followCompletions(
  deps: Pick<FeedDeps, "hub">,
  request: { tenant: string | undefined; filter: CompletionFilter; after: string | undefined },
  sink: FeedSink,
): Feed {
  const { filter } = request;
  // The narrowest dimension the filter names lets the hub skip this client for other completions.
  const route = filter.taskTypes
    ? { field: "task_type", values: filter.taskTypes }
    : filter.queues
      ? { field: "queue", values: filter.queues }
      : filter.statuses
        ? { field: "status", values: filter.statuses }
        : undefined;
  return deps.hub.follow(tenantEventsKey(request.tenant), {
    ...(route ? { route } : {}),
    after: request.after ?? "$",
    onEntry(entry) {
      const data = dataOf(entry);
      if (matches(filter, data as unknown as TaskCompletion)) sink.event({ id: entry.id, data, final: false });
    },
    onGap: () => sink.gap?.(),
    onError: (error) => sink.error(error),
  });
}
