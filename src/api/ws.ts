/**
 * The WebSocket at /ws: one connection, many subscriptions, the same events
 * as the SSE routes (store/task-feed.ts) and the same authentication (the
 * upgrade request passes the same guards as any request: Bearer key, rate
 * limit). A client that cannot open an EventSource per task (a dashboard
 * following thousands) multiplexes here.
 *
 * Client → server, one JSON object per message:
 *   {"type":"subscribe","id":"a","task_id":"…","last_event_id"?:"…"}
 *   {"type":"subscribe","id":"b","events":{"task_type"?:[…],"queue"?:[…],"status"?:[…]},"last_event_id"?:"…"}
 *   {"type":"unsubscribe","id":"a"}
 * Server → client:
 *   {"type":"subscribed","id"} · {"type":"event","id","event_id","data"} ·
 *   {"type":"complete","id"} (after a task's final event) · {"type":"gap","id"} ·
 *   {"type":"error","id"?,"code","message"}
 *
 * A malformed message gets an error and the connection stays open. A client
 * whose unsent data passes SSE_MAX_BUFFER_BYTES is dropped (close code 4008,
 * SLOW_CLIENT), its subscriptions closed, so it never holds memory or others back.
 */
import { type Static, Type as T } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Elysia } from "elysia";
import type Redis from "ioredis";
import { errorMessage } from "../errors";
import type { Logger } from "../log";
import type { EventHub } from "../store/event-hub";
import { isEventId } from "../store/task-events";
import { type Feed, type FeedSink, followCompletions, followTask } from "../store/task-feed";
import type { TaskStore } from "../store/task-store";
import { TASK_ID_PATTERN } from "../task/contract";

/** Subscriptions one connection may hold at once. */
export const WS_MAX_SUBSCRIPTIONS = 1000;
/** The close code of a client dropped for reading too slowly (4000–4999: the application's own). */
export const SLOW_CLIENT_CLOSE_CODE = 4008;

const SubscriptionId = T.String({ minLength: 1, maxLength: 100 });
const Names = T.Array(T.String({ pattern: "^[A-Za-z0-9_]{1,64}$" }), { minItems: 1, maxItems: 100 });

const ClientMessage = T.Union([
  T.Object({
    type: T.Literal("subscribe"),
    id: SubscriptionId,
    task_id: T.String({ pattern: TASK_ID_PATTERN }),
    last_event_id: T.Optional(T.String({ maxLength: 40 })),
  }),
  T.Object({
    type: T.Literal("subscribe"),
    id: SubscriptionId,
    events: T.Object(
      {
        task_type: T.Optional(Names),
        queue: T.Optional(Names),
        status: T.Optional(T.Array(T.Union([T.Literal("SUCCESS"), T.Literal("FAILURE")]), { minItems: 1 })),
      },
      { additionalProperties: false },
    ),
    last_event_id: T.Optional(T.String({ maxLength: 40 })),
  }),
  T.Object({ type: T.Literal("unsubscribe"), id: SubscriptionId }),
]);
type ClientMessage = Static<typeof ClientMessage>;
const checkMessage = TypeCompiler.Compile(ClientMessage);

export interface WsRoutesDeps {
  hub: EventHub;
  store: Pick<TaskStore, "get">;
  redis: Redis;
  tenantOf?: (request: Request) => string | undefined;
  logger: Logger;
  maxBufferBytes: number;
}

const bufferedOf = (ws: Socket) => (ws.raw as unknown as Bun.ServerWebSocket<unknown>).getBufferedAmount();

interface Connection {
  tenant: string | undefined;
  feeds: Map<string, Feed | "opening">;
  dropped: boolean;
}

/** What the route needs of a socket: Elysia's wrapper satisfies it, and tests can too. */
interface Socket {
  readonly id: string;
  send(data: string): unknown;
  close(code?: number, reason?: string): void;
  /** Bun's ServerWebSocket (Elysia's copy of its type lacks getBufferedAmount, which Bun has). */
  readonly raw: object;
  readonly data: { request: Request };
}

export function wsRoutes(deps: WsRoutesDeps) {
  const { hub, store, redis, logger, maxBufferBytes, tenantOf = () => undefined } = deps;
  const connections = new Map<string, Connection>();

  const closeAll = (connection: Connection) => {
    for (const feed of connection.feeds.values()) if (feed !== "opening") feed.close();
    connection.feeds.clear();
  };

  const send = (ws: Socket, connection: Connection, message: Record<string, unknown>) => {
    if (connection.dropped) return;
    if (bufferedOf(ws) > maxBufferBytes) {
      connection.dropped = true;
      closeAll(connection);
      logger.warn(
        { tenant: connection.tenant, buffered: bufferedOf(ws) },
        "websocket client dropped: it read too slowly",
      );
      ws.send(
        JSON.stringify({
          type: "error",
          code: "SLOW_CLIENT",
          message: `over ${maxBufferBytes} bytes were waiting for you`,
        }),
      );
      ws.close(SLOW_CLIENT_CLOSE_CODE, "SLOW_CLIENT");
      return;
    }
    ws.send(JSON.stringify(message));
  };

  const sinkFor = (ws: Socket, connection: Connection, id: string): FeedSink => ({
    event(event) {
      send(ws, connection, { type: "event", id, event_id: event.id, data: event.data });
      if (event.final) {
        connection.feeds.delete(id);
        send(ws, connection, { type: "complete", id });
      }
    },
    gap: () => send(ws, connection, { type: "gap", id }),
    error(error) {
      connection.feeds.delete(id);
      logger.warn({ subscription: id, error: errorMessage(error) }, "websocket subscription failed");
      send(ws, connection, {
        type: "error",
        id,
        code: "STREAM_FAILED",
        message: "the event log could not be read; subscribe again",
      });
    },
  });

  const subscribe = async (
    ws: Socket,
    connection: Connection,
    message: Extract<ClientMessage, { type: "subscribe" }>,
  ) => {
    const { id } = message;
    if (connection.feeds.has(id)) {
      send(ws, connection, {
        type: "error",
        id,
        code: "DUPLICATE_SUBSCRIPTION",
        message: `subscription '${id}' exists: unsubscribe it first`,
      });
      return;
    }
    if (connection.feeds.size >= WS_MAX_SUBSCRIPTIONS) {
      send(ws, connection, {
        type: "error",
        id,
        code: "TOO_MANY_SUBSCRIPTIONS",
        message: `at most ${WS_MAX_SUBSCRIPTIONS} subscriptions per connection`,
      });
      return;
    }
    const after = message.last_event_id && isEventId(message.last_event_id) ? message.last_event_id : undefined;
    const sink = sinkFor(ws, connection, id);
    if ("events" in message) {
      const { task_type, queue, status } = message.events;
      send(ws, connection, { type: "subscribed", id });
      const feed = followCompletions(
        { hub },
        {
          tenant: connection.tenant,
          filter: {
            ...(task_type ? { taskTypes: new Set(task_type) } : {}),
            ...(queue ? { queues: new Set(queue) } : {}),
            ...(status ? { statuses: new Set<string>(status) } : {}),
          },
          after,
        },
        sink,
      );
      connection.feeds.set(id, feed);
      return;
    }
    connection.feeds.set(id, "opening");
    send(ws, connection, { type: "subscribed", id });
    const feed = await followTask(
      { hub, store, redis },
      { taskId: message.task_id, tenant: connection.tenant, after },
      sink,
    );
    if (feed === "not_found" || feed === "ended") {
      connection.feeds.delete(id);
      if (feed === "not_found")
        send(ws, connection, {
          type: "error",
          id,
          code: "TASK_NOT_FOUND",
          message: `no task with id '${message.task_id}'`,
        });
      else send(ws, connection, { type: "complete", id });
      return;
    }
    // Ended (final event sent) or unsubscribed while opening: nothing to keep.
    if (connection.feeds.get(id) !== "opening") feed.close();
    else connection.feeds.set(id, feed);
  };

  return new Elysia({ name: "ws" }).ws("/ws", {
    open(ws) {
      connections.set(ws.id, { tenant: tenantOf(ws.data.request), feeds: new Map(), dropped: false });
    },
    async message(ws, raw) {
      const connection = connections.get(ws.id);
      if (!connection || connection.dropped) return;
      // Elysia parses a JSON text message for us; anything else arrives as it was sent.
      let message: unknown = raw;
      if (typeof raw === "string") {
        try {
          message = JSON.parse(raw);
        } catch {
          send(ws, connection, { type: "error", code: "INVALID_MESSAGE", message: "a message is one JSON object" });
          return;
        }
      }
      if (!checkMessage.Check(message)) {
        const first = checkMessage.Errors(message).First();
        const field = first?.path.replace(/^\//, "").replaceAll("/", ".") || "(message)";
        send(ws, connection, {
          type: "error",
          code: "INVALID_MESSAGE",
          message: `${field}: ${first?.message ?? "not a subscribe or unsubscribe message"}`,
        });
        return;
      }
      if (message.type === "unsubscribe") {
        const feed = connection.feeds.get(message.id);
        connection.feeds.delete(message.id);
        if (feed && feed !== "opening") feed.close();
        return;
      }
      try {
        await subscribe(ws, connection, message);
      } catch (error) {
        connection.feeds.delete(message.id);
        logger.warn({ subscription: message.id, error: errorMessage(error) }, "websocket subscribe failed");
        send(ws, connection, {
          type: "error",
          id: message.id,
          code: "UNAVAILABLE",
          message: "the event log is unavailable; try again",
        });
      }
    },
    close(ws) {
      const connection = connections.get(ws.id);
      connections.delete(ws.id);
      if (connection) closeAll(connection);
    },
    detail: { hide: true },
  });
}
