/**
 * The resolvers: thin over what REST and SSE already use. `process` is
 * POST /process's acceptor, `task` the task store, `tasks` the tenant's
 * listing (store/task-list.ts), `metrics` and `workers` the same readers as
 * GET /metrics and /workers, `taskUpdated` the same feed as
 * GET /task/:id/events (store/task-feed.ts).
 */
import { Repeater } from "graphql-yoga";
import type Redis from "ioredis";
import { AppError } from "../../errors";
import { type QueueStateKeys, readMetrics } from "../../metrics/snapshot";
import { listWorkers } from "../../queue/worker-registry";
import type { EventHub } from "../../store/event-hub";
import { isEventId } from "../../store/task-events";
import { followTask } from "../../store/task-feed";
import { listTasks, MAX_PAGE } from "../../store/task-list";
import type { TaskStore } from "../../store/task-store";
import { TASK_ID_PATTERN, type TaskStatus, taskView } from "../../task/contract";
import { type AcceptTask, checkProcessInput } from "../accept-task";

/** What every resolver knows of the request, set by the route from the request (graphql/routes.ts). */
export interface GraphqlContext {
  /** The API key's tenant; undefined when auth is off. */
  tenant: string | undefined;
  /** Whether the caller may read what spans tenants (always, when auth is off). */
  isAdmin: boolean;
}

export interface ResolverDeps {
  redis: Redis;
  store: TaskStore;
  hub: EventHub;
  accept: AcceptTask;
  resultTtlSeconds: number;
  /** Queues whose depths `metrics` reports. */
  queues: readonly QueueStateKeys[];
  supervisor?: () => { recycled: number; restarted: number };
}

const taskIdPattern = new RegExp(TASK_ID_PATTERN);

function invalid(field: string, message: string): AppError {
  return new AppError("VALIDATION_FAILED", `${field}: ${message}`, {
    status: 422,
    details: { field, message, location: "arguments" },
  });
}

function checkTaskId(id: string): string {
  if (!taskIdPattern.test(id)) throw invalid("id", `must match ${TASK_ID_PATTERN}`);
  return id;
}

function requireAdmin(context: GraphqlContext, field: string): void {
  if (context.isAdmin) return;
  throw new AppError("FORBIDDEN", `${field} spans every tenant: it needs a key named in API_ADMINS`, { status: 403 });
}

export function createResolvers(deps: ResolverDeps) {
  const { redis, store, hub, accept } = deps;

  return {
    Query: {
      async task(_: unknown, args: { id: string }, context: GraphqlContext) {
        const state = await store.get(checkTaskId(args.id), context.tenant);
        return state ? taskView(state) : null;
      },
      async tasks(
        _: unknown,
        args: { first: number; after?: string | null; status?: TaskStatus | null },
        context: GraphqlContext,
      ) {
        if (!Number.isInteger(args.first) || args.first < 1 || args.first > MAX_PAGE) {
          throw invalid("first", `must be 1..${MAX_PAGE}`);
        }
        const page = await listTasks(
          { redis, store, resultTtlSeconds: deps.resultTtlSeconds },
          {
            tenants: [context.tenant],
            first: args.first,
            after: args.after ?? undefined,
            filter: { statuses: args.status ? new Set([args.status]) : undefined },
          },
        );
        return {
          edges: page.tasks.map(({ cursor, task_type, queue, accepted_at, finished_at, tenant: _, ...node }) => ({
            cursor,
            node,
            task_type,
            queue,
            accepted_at,
            finished_at,
          })),
          pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor ?? null },
        };
      },
      async metrics(_: unknown, __: unknown, context: GraphqlContext) {
        requireAdmin(context, "metrics");
        const snapshot = await readMetrics({ redis, queues: deps.queues });
        return {
          ...snapshot,
          queues: Object.entries(snapshot.queues).map(([name, depth]) => ({ name, ...depth })),
        };
      },
      async workers(_: unknown, __: unknown, context: GraphqlContext) {
        requireAdmin(context, "workers");
        const workers = await listWorkers({ redis });
        return { count: workers.length, workers, supervisor: deps.supervisor?.() ?? null };
      },
    },
    Mutation: {
      process(
        _: unknown,
        args: { input: Record<string, unknown>; idempotency_key?: string | null },
        context: GraphqlContext,
      ) {
        const key = args.idempotency_key ?? undefined;
        if (key !== undefined && (key.length < 1 || key.length > 200)) {
          throw invalid("idempotency_key", "must be 1..200 characters");
        }
        return accept(checkProcessInput(args.input), { tenant: context.tenant, idempotencyKey: key });
      },
    },
    Subscription: {
      taskUpdated: {
        async subscribe(_: unknown, args: { id: string; after?: string | null }, context: GraphqlContext) {
          const taskId = checkTaskId(args.id);
          if (args.after != null && !isEventId(args.after)) throw invalid("after", "not an event_id of this task");
          // Checked here, so an unknown task is an error of the subscription itself, not of its first event.
          if (!(await store.get(taskId, context.tenant))) {
            throw new AppError("TASK_NOT_FOUND", `no task with id '${taskId}'`, { status: 404 });
          }
          return taskUpdates({ hub, store, redis }, { taskId, tenant: context.tenant, after: args.after ?? undefined });
        },
        resolve: (event: Record<string, unknown>) => event,
      },
    },
  };
}

/**
 * followTask's events as an async iterator for graphql-js: each event's data
 * with its id and whether it is the last; the iterator ends after the last,
 * and closing it (the client went away) closes the feed.
 */
function taskUpdates(
  deps: Parameters<typeof followTask>[0],
  request: Parameters<typeof followTask>[1],
): AsyncIterator<Record<string, unknown>> {
  return new Repeater<Record<string, unknown>>(async (push, stop) => {
    const feed = await followTask(deps, request, {
      event(event) {
        void push({ ...event.data, event_id: event.id, final: event.final });
        if (event.final) stop();
      },
      error(cause) {
        stop(new AppError("STREAM_FAILED", "the event log could not be read; subscribe again", { status: 503, cause }));
      },
    });
    if (feed === "not_found") {
      stop(new AppError("TASK_NOT_FOUND", `no task with id '${request.taskId}'`, { status: 404 }));
      return;
    }
    // The client has already seen the end (after = the final event): nothing more to send.
    if (feed === "ended") {
      stop();
      return;
    }
    await stop;
    feed.close();
  });
}
