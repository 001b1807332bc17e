/**
 * GET /task/:id/stream: the answer of one task, token by token as its worker
 * receives it from the model (Server-Sent Events), then the task as GET
 * /task/:id shows it, and the stream closes. What is sent is
 * store/token-feed.ts's; this file only frames it as SSE, with the
 * heartbeats and slow-client bound of sse.ts.
 */
import { Elysia } from "elysia";
import { errorMessage } from "../errors";
import { followTokens, type TokenFeed, type TokenFeedDeps } from "../store/token-feed";
import { type EventRoutesDeps, lastEventIdOf, TASK_STREAM_ROUTE, taskStreamResponse } from "./events";
import { createSseStream } from "./sse";

export type StreamRoutesDeps = EventRoutesDeps & Pick<TokenFeedDeps, "endGraceMs">;

export function streamRoutes(deps: StreamRoutesDeps) {
  const { hub, store, redis, logger, tenantOf = () => undefined } = deps;
  const feedDeps: TokenFeedDeps = { hub, store, redis, ...(deps.endGraceMs ? { endGraceMs: deps.endGraceMs } : {}) };

  return new Elysia({ name: "stream" }).get(
    "/task/:id/stream",
    async ({ params, request }) => {
      const log = { task_id: params.id, route: "GET /task/:id/stream" };
      let feed: TokenFeed | undefined;
      const stream = createSseStream({
        ...deps.sse,
        signal: request.signal,
        onClose: (reason) => {
          feed?.close();
          if (reason === "slow_client") logger.warn(log, "token stream client dropped: it read too slowly");
        },
      });
      const outcome = await followTokens(
        feedDeps,
        { taskId: params.id, tenant: tenantOf(request), after: lastEventIdOf(request) },
        {
          event(event) {
            stream.send({ ...(event.id ? { id: event.id } : {}), event: event.type, data: event.json });
            if (event.type === "end") stream.close();
          },
          error(error) {
            logger.warn({ ...log, error: errorMessage(error) }, "token stream failed");
            stream.send({
              event: "error",
              data: JSON.stringify({ code: "STREAM_FAILED", message: "the token stream could not be read; reconnect" }),
            });
            stream.close();
          },
        },
      );
      return taskStreamResponse(stream, outcome, params.id, (kept) => {
        feed = kept;
      });
    },
    {
      ...TASK_STREAM_ROUTE,
      detail: {
        summary: "The answer of one task, token by token, pushed as Server-Sent Events",
        description:
          'For a task sent with `"stream": true`: `event: token` with data `{"text": "..."}` for each piece of the answer as the worker receives it from the model, `event: reset` when an attempt starts over (a retry: drop the text so far), and last `event: end`, whose data is the task exactly as GET /task/{id} shows it (SUCCESS with its result, or FAILURE with its error); the stream then closes. The texts of the tokens since the last reset join into the result\'s `response`. A task that was not streamed, or answered from the cache, sends its answer as one token when it ends. A client that connects late gets the tokens so far, then the live ones; each event read from the stream has an id: reconnect with `Last-Event-ID` to resume after it (204 once the end was seen). Comments (`: ping`) keep idle connections open; a client that reads too slowly gets `event: error` (SLOW_CLIENT) and is dropped.',
        tags: ["events"],
      },
    },
  );
}
