/** DELETE /cache/clear and DELETE /cache/:id: the cache's entries really go, and the answer says how many. */
import { Elysia, t } from "elysia";
import type { CacheAdmin } from "../cache";
import { AppError } from "../errors";
import type { Logger } from "../log";
import { COMMON_ERRORS, errorResponses } from "./error-responses";

export interface CacheRoutesDeps {
  admin: CacheAdmin;
  logger: Logger;
  /**
   * Whether a request may delete entries. With API keys on, entries of every
   * tenant live in one keyspace: only the keys named in API_ADMINS may.
   */
  mayAdminister?: (request: Request) => boolean;
  /** Who made a request, for the audit line (api/admin.ts): the key's name, or the client's address. */
  actorOf?: (request: Request) => string;
}

export function cacheRoutes(deps: CacheRoutesDeps) {
  const { admin, logger, mayAdminister = () => true, actorOf = () => "unknown" } = deps;
  return new Elysia({ name: "cache" })
    .onBeforeHandle(({ request }) => {
      if (mayAdminister(request)) return;
      logger.info(
        { route: `${request.method} ${new URL(request.url).pathname}` },
        "request rejected: not a cache admin",
      );
      throw new AppError("FORBIDDEN", "deleting cache entries needs an API key named in API_ADMINS", { status: 403 });
    })
    .delete(
      "/cache/clear",
      async ({ query, request }) => {
        const started = performance.now();
        const deleted = await admin.clear(query.task_type);
        logger.info(
          {
            audit: true,
            action: "cache.clear",
            actor: actorOf(request),
            task_type: query.task_type ?? "(all)",
            deleted,
            ms: Math.round(performance.now() - started),
          },
          "cache cleared",
        );
        return { deleted, ...(query.task_type ? { task_type: query.task_type } : {}) };
      },
      {
        query: t.Object({
          task_type: t.Optional(
            t.String({ pattern: "^[a-z_]+$", maxLength: 64, description: "clear only this task type's entries" }),
          ),
        }),
        response: {
          200: t.Object({
            deleted: t.Integer({ minimum: 0, description: "entries removed" }),
            task_type: t.Optional(t.String()),
          }),
          ...errorResponses(403, 422, ...COMMON_ERRORS),
        },
        detail: { summary: "Delete every cached answer, or one task type's", tags: ["cache"] },
      },
    )
    .delete(
      "/cache/:id",
      async ({ params, request }) => {
        if (!(await admin.remove(params.id))) {
          throw new AppError("CACHE_ENTRY_NOT_FOUND", `no cache entry '${params.id}'`, { status: 404 });
        }
        logger.info(
          { audit: true, action: "cache.delete", actor: actorOf(request), cache_id: params.id },
          "cache entry deleted",
        );
        return { deleted: 1, id: params.id };
      },
      {
        params: t.Object({
          id: t.String({
            pattern: "^[0-9a-f]{32}:[a-z_]{1,64}$",
            description: "the entry id, as results give it in cache_id",
          }),
        }),
        response: {
          200: t.Object({ deleted: t.Literal(1), id: t.String() }),
          ...errorResponses(403, 404, 422, ...COMMON_ERRORS),
        },
        detail: { summary: "Delete one cached answer by its id (a result's cache_id)", tags: ["cache"] },
      },
    );
}
