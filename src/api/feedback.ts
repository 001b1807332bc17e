/**
 * POST /task/:id/feedback: a client says whether a finished task's answer was
 * right (`correct`) and how good it was (`rating` 1..5). An answer judged
 * wrong leaves the semantic cache at once: the entry it was served from, or
 * stored as, is deleted, so the next similar request asks the LLM instead of
 * serving the mistake again (issue 14). Every feedback is counted in /metrics;
 * the task record keeps the latest one, and a task of a prompt experiment
 * counts it in its variant's feedback score (a later one replaces it there
 * too). Tenants only reach their own tasks, and so only entries of their own
 * cache scope. A positive one makes the task a training example for
 * fine-tunes, any other takes it out (store/training-examples.ts), in the
 * same MULTI as the record's.
 */
import { Elysia, t } from "elysia";
import type { CacheAdmin } from "../cache";
import { AppError } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import type { TaskStore } from "../store/task-store";
import type { TrainingExamples } from "../store/training-examples";
import { TASK_ID_PATTERN } from "../task/contract";
import { COMMON_ERRORS, errorResponses } from "./error-responses";
import { strictJsonBody } from "./strict-body";

export interface FeedbackRoutesDeps {
  store: Pick<TaskStore, "get" | "recordFeedback">;
  cache: Pick<CacheAdmin, "remove">;
  bus: EventBus;
  logger: Logger;
  tenantOf?: (request: Request) => string | undefined;
  /** The fine-tunes' examples; absent: feedback trains nothing. */
  examples?: Pick<TrainingExamples, "queueFeedback">;
}

export function feedbackRoutes(deps: FeedbackRoutesDeps) {
  const { store, cache, bus, logger, examples, tenantOf = () => undefined } = deps;
  return new Elysia({ name: "feedback" }).post(
    "/task/:id/feedback",
    async ({ params, body, request }) => {
      const state = await store.get(params.id, tenantOf(request));
      if (!state) throw new AppError("TASK_NOT_FOUND", `no task with id '${params.id}'`, { status: 404 });
      if (state.status !== "SUCCESS" || !state.result) {
        throw new AppError("TASK_NOT_ANSWERED", `task '${params.id}' is ${state.status}: feedback is for an answer`, {
          status: 409,
        });
      }
      const cacheId = state.result.cache_id;
      const invalidated = body.correct === false && cacheId !== undefined ? await cache.remove(cacheId) : false;
      const at = Date.now();
      // The feedback this one replaces, read where it is replaced: a second feedback sent at the same instant
      // replaces this one, and never subtracts the same earlier score twice.
      const previous = await store.recordFeedback(
        params.id,
        { ...body, at },
        examples ? (tx) => examples.queueFeedback(tx, state, body, at) : undefined,
      );
      const experiment = state.result.metadata.experiment;
      bus.emit("task.feedback", {
        task_id: params.id,
        ...(body.correct === undefined ? {} : { correct: body.correct }),
        ...(body.rating === undefined ? {} : { rating: body.rating }),
        from_cache: state.result.from_cache,
        invalidated,
        // Counted in its experiment variant's score (metrics/experiment-metrics.ts), replacing an earlier one.
        ...(experiment ? { experiment } : {}),
        ...(previous ? { previous: { correct: previous.correct, rating: previous.rating } } : {}),
      });
      logger.info(
        { task_id: params.id, correct: body.correct, rating: body.rating, cache_id: cacheId, invalidated },
        "task feedback",
      );
      return { task_id: params.id, invalidated, ...(invalidated && cacheId ? { cache_id: cacheId } : {}) };
    },
    {
      params: t.Object({ id: t.String({ pattern: TASK_ID_PATTERN }) }),
      // A misspelt field is a 422 that names it, never dropped in silence.
      parse: strictJsonBody(["correct", "rating"]),
      body: t.Object(
        {
          correct: t.Optional(t.Boolean({ description: "false: the answer was wrong; its cache entry is deleted" })),
          rating: t.Optional(t.Integer({ minimum: 1, maximum: 5, description: "how good the answer was, 1..5" })),
        },
        { minProperties: 1, additionalProperties: false, description: "correct, rating, or both" },
      ),
      response: {
        200: t.Object({
          task_id: t.String(),
          invalidated: t.Boolean({ description: "whether a cache entry was deleted because of this feedback" }),
          cache_id: t.Optional(t.String()),
        }),
        ...errorResponses(400, 404, 409, 413, 415, 422, ...COMMON_ERRORS),
      },
      detail: {
        summary: "Say whether a task's answer was right; a wrong one leaves the semantic cache",
        tags: ["tasks"],
      },
    },
  );
}
