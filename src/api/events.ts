/**
 * Server-Sent Events: GET /task/:id/events (every state change of one task,
 * closed after the last) and GET /events (the completions of the caller's
 * tenant, filtered, for dashboards). Both resume after `Last-Event-ID`, so a
 * client that reconnects misses nothing within the retention. What is sent
 * is store/task-feed.ts's; this file only frames it as SSE.
 */
import { Elysia, t } from "elysia";
import type Redis from "ioredis";
import { AppError } from "../errors";
import type { Logger } from "../log";
import type { EventHub } from "../store/event-hub";
import { isEventId } from "../store/task-events";
import { type CompletionFilter, type FeedEvent, followCompletions, followTask } from "../store/task-feed";
import type { TaskStore } from "../store/task-store";
import { TASK_ID_PATTERN } from "../task/contract";
import { namespacesOf, TENANT_PARAM_PATTERN, type TenantScope } from "./auth";
import { COMMON_ERRORS, errorResponses } from "./error-responses";
import { createSseStream, type SseStream } from "./sse";

export interface EventRoutesDeps {
  hub: EventHub;
  store: Pick<TaskStore, "get">;
  redis: Redis;
  tenantOf?: (request: Request) => string | undefined;
  /** Who may follow which tenants' completions (GET /events?tenant=); absent: only one's own. */
  scope?: TenantScope;
  logger: Logger;
  sse: { heartbeatMs: number; maxBufferBytes: number; slowClientGraceMs: number };
}

/** A Last-Event-ID this log could have given; anything else is treated as absent (start from the beginning). */
export function lastEventIdOf(request: Request): string | undefined {
  const value = request.headers.get("last-event-id")?.trim();
  return value && isEventId(value) ? value : undefined;
}

/** A Server-Sent Events response: its schema is one event, as EventSource reads it. */
export const SSE_RESPONSE = {
  description: "an event stream (text/event-stream): one `data:` line of JSON per event, with its `id:`",
  content: {
    "text/event-stream": {
      schema: {
        type: "object",
        required: ["data"],
        properties: {
          id: { type: "string", description: "send it back as Last-Event-ID to resume after this event" },
          event: { type: "string", description: "the event's type (message when absent)" },
          data: { type: "string", description: "the event's JSON" },
          retry: { type: "integer", description: "ms EventSource waits before it reconnects" },
        },
      },
    },
  },
};

/**
 * The response of a task's stream once its feed is asked for: 404 for an
 * unknown task, 204 for a client that has seen the end (EventSource then
 * stops reconnecting), else the stream, with `keep` holding the feed until
 * the stream closes (or closing it at once when the client already left).
 */
export function taskStreamResponse<F extends { close(): void }>(
  stream: SseStream,
  feed: F | "not_found" | "ended",
  taskId: string,
  keep: (feed: F) => void,
): Response {
  if (feed === "not_found") {
    stream.close();
    throw new AppError("TASK_NOT_FOUND", `no task with id '${taskId}'`, { status: 404 });
  }
  if (feed === "ended") {
    stream.close();
    return new Response(null, { status: 204 });
  }
  if (stream.open) keep(feed);
  else feed.close();
  return stream.response;
}

/** The route options of a task's stream (GET /task/:id/events, /task/:id/stream). */
export const TASK_STREAM_ROUTE = {
  params: t.Object({ id: t.String({ pattern: TASK_ID_PATTERN }) }),
  response: { 200: t.String(SSE_RESPONSE), 204: t.String(), ...errorResponses(404, 422, ...COMMON_ERRORS) },
};

/** A comma-separated list of names (task types, queues), as query parameters take them. */
export const LIST = "^[A-Za-z0-9_,]{1,512}$";

/** An event of a named tenant's stream, saying whose it is (the open namespace's names none). */
function withTenant(event: FeedEvent, tenant: string | undefined): FeedEvent {
  return tenant === undefined ? event : { ...event, data: { ...event.data, tenant } };
}

/** `a,b` → {a, b}; absent → no filter. */
function setOf(value: string | undefined): ReadonlySet<string> | undefined {
  return value ? new Set(value.split(",").filter(Boolean)) : undefined;
}

export function eventRoutes(deps: EventRoutesDeps) {
  const { hub, store, redis, logger, tenantOf = () => undefined } = deps;

  const open = (request: Request, log: Record<string, unknown>): SseStream => {
    const stream = createSseStream({
      ...deps.sse,
      signal: request.signal,
      onClose: (reason) => {
        feeds.get(stream)?.close();
        if (reason === "slow_client") logger.warn(log, "event stream client dropped: it read too slowly");
      },
    });
    return stream;
  };
  // The feed of each open stream, closed with it (a stream is made before its feed exists).
  const feeds = new WeakMap<SseStream, { close(): void }>();

  const sinkOf = (stream: SseStream, log: Record<string, unknown>) => ({
    event(event: FeedEvent) {
      stream.send({ id: event.id, data: JSON.stringify(event.data) });
      if (event.final) stream.close();
    },
    gap() {
      stream.send({
        event: "gap",
        data: JSON.stringify({ message: "events after your Last-Event-ID were trimmed (EVENTS_STREAM_MAXLEN)" }),
      });
    },
    error(error: unknown) {
      logger.warn({ ...log, error: String(error) }, "event stream failed");
      stream.send({
        event: "error",
        data: JSON.stringify({ code: "STREAM_FAILED", message: "the event log could not be read; reconnect" }),
      });
      stream.close();
    },
  });

  return new Elysia({ name: "events" })
    .get(
      "/task/:id/events",
      async ({ params, request }) => {
        const tenant = tenantOf(request);
        const log = { task_id: params.id, route: "GET /task/:id/events" };
        const stream = open(request, log);
        const feed = await followTask(
          { hub, store, redis },
          { taskId: params.id, tenant, after: lastEventIdOf(request) },
          sinkOf(stream, log),
        );
        return taskStreamResponse(stream, feed, params.id, (kept) => feeds.set(stream, kept));
      },
      {
        ...TASK_STREAM_ROUTE,
        detail: {
          summary: "Every state change of one task, pushed as Server-Sent Events",
          description:
            "Streams PENDING, STARTED, RETRY (with its error) and the final SUCCESS or FAILURE, whose data is the task exactly as GET /task/{id} shows it; the stream then closes. Each event has an id: reconnect with `Last-Event-ID` to resume after it. A client whose Last-Event-ID is already the final event gets 204 (EventSource then stops reconnecting). Comments (`: ping`) keep idle connections open; a client that reads too slowly gets `event: error` (SLOW_CLIENT) and is dropped.",
          tags: ["events"],
        },
      },
    )
    .get(
      "/events",
      ({ query, request }) => {
        const tenant = tenantOf(request);
        const filter: CompletionFilter = {
          ...(query.task_type ? { taskTypes: setOf(query.task_type) } : {}),
          ...(query.queue ? { queues: setOf(query.queue) } : {}),
          ...(query.status ? { statuses: setOf(query.status) } : {}),
        };
        const scope = deps.scope ?? { tenants: [], tenantOf, isAdmin: () => false };
        const tenants = query.tenant === undefined ? [tenant] : namespacesOf(scope, request, query.tenant, "own");
        const log = { tenant, route: "GET /events" };
        const stream = open(request, log);
        const sink = sinkOf(stream, log);
        // Each stream's ids are the Redis server's clock: one Last-Event-ID resumes every followed stream.
        const follows = tenants.map((one) =>
          followCompletions(
            { hub },
            { tenant: one, filter, after: lastEventIdOf(request) },
            // Named tenants: each event says whose it is.
            query.tenant === undefined ? sink : { ...sink, event: (event) => sink.event(withTenant(event, one)) },
          ),
        );
        feeds.set(stream, {
          close() {
            for (const follow of follows) follow.close();
          },
        });
        return stream.response;
      },
      {
        query: t.Object({
          task_type: t.Optional(t.String({ pattern: LIST, description: "only these task types, comma-separated" })),
          queue: t.Optional(t.String({ pattern: LIST, description: "only tasks of these queues, comma-separated" })),
          status: t.Optional(
            t.String({
              pattern: "^(SUCCESS|FAILURE)(,(SUCCESS|FAILURE))?$",
              description: "only SUCCESS or FAILURE (comma-separated for both)",
            }),
          ),
          tenant: t.Optional(
            t.String({
              pattern: TENANT_PARAM_PATTERN,
              description:
                "another tenant's completions (an API key name), or * for every tenant's and the open namespace's: admin keys only; each event then carries its tenant",
            }),
          ),
        }),
        response: { 200: t.String(SSE_RESPONSE), ...errorResponses(403, 422, ...COMMON_ERRORS) },
        detail: {
          summary: "The completions of your tasks, pushed as Server-Sent Events",
          description:
            "Each SUCCESS or FAILURE of the caller's tasks (API key's tenant) as it happens: task_id, status, task_type, queue, finished_at and the result or error. Starts with what happens next; with `Last-Event-ID`, resumes after that event while it is within the retention (EVENTS_STREAM_MAXLEN completions), else sends `event: gap` first. An admin key may follow another tenant's (`tenant=name`) or every namespace's (`tenant=*`): each event then carries `tenant` (absent for the open namespace), and one Last-Event-ID resumes them all (stream ids are the Redis server's clock).",
          tags: ["events"],
        },
      },
    );
}
