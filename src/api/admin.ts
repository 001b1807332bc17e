/**
 * /admin/*: the operator's control actions (issue 16 §2), the ones Flower and
 * Bull Board offer, as HTTP endpoints so they can be scripted as well as
 * clicked in /dashboard: retry a failed task or a queue's failed tasks,
 * cancel a task that has not started, purge a queue's failed jobs, pause and
 * resume a queue's workers or Kafka consumption, set the LLM rate limit at
 * run time, recycle a worker process. Clearing the cache is DELETE
 * /cache/clear and DELETE /cache/:id (api/cache.ts).
 *
 * With API keys on, only admin keys (API_ADMINS) reach these routes
 * (auth.ts, adminGuard); without keys, only clients on this host unless
 * CONSOLE_ALLOW_REMOTE (consoleGuard). Every action writes one audit line:
 * `audit: true`, the action, who (the key's name, or the client address
 * without keys), its target and its outcome.
 *
 * Pauses, the rate limit and recycles are written to the control hash that
 * every process reads once a second (store/control.ts): they take effect
 * within about a second and outlive restarts.
 */
import { Elysia, t } from "elysia";
import type Redis from "ioredis";
import { parseRateLimit } from "../config";
import { AppError } from "../errors";
import type { Logger } from "../log";
import type { TaskControl } from "../queue/task-control";
import { listWorkers } from "../queue/worker-registry";
import { type ControlMark, control, readControl } from "../store/control";
import { errorResponses } from "./error-responses";

export interface AdminRoutesDeps {
  redis: Redis;
  queues: readonly string[];
  tasks: TaskControl;
  /** LLM_RATE_LIMIT, what an operator's limit overrides and DELETE /admin/rate-limit restores. */
  configuredRateLimit: { calls: number; periodMs: number } | undefined;
  logger: Logger;
  /** Who made a request, for the audit line: the key's name, or the client's address without keys. */
  actorOf: (request: Request) => string;
}

const ADMIN_ERRORS = [401, 403, 429, 503] as const;
const TAGS = ["admin"];

const Mark = {
  at: t.Optional(t.String({ format: "date-time", description: "when an operator set it" })),
  by: t.Optional(t.String({ description: "the key name (or client address) that set it" })),
};
const markOf = (mark: ControlMark | undefined) => (mark ? { at: new Date(mark.at).toISOString(), by: mark.by } : {});

const ControlSchema = t.Object({
  queues: t.Array(t.Object({ name: t.String(), paused: t.Boolean(), ...Mark })),
  kafka: t.Object({ paused: t.Boolean(), ...Mark }),
  llm_rate_limit: t.Object({
    source: t.Union([t.Literal("operator"), t.Literal("config"), t.Literal("none")], {
      description: "operator: set by PUT /admin/rate-limit; config: LLM_RATE_LIMIT; none: unlimited",
    }),
    calls: t.Optional(t.Integer()),
    period_ms: t.Optional(t.Integer()),
    ...Mark,
  }),
});

export type ControlView = typeof ControlSchema.static;

/** GET /admin/control's answer; also sent on GET /metrics/stream with the workers (the console's controls). */
export async function readControlView(
  deps: Pick<AdminRoutesDeps, "redis" | "queues" | "configuredRateLimit">,
): Promise<ControlView> {
  const state = await readControl(deps.redis);
  const limit = state.rateLimit;
  const configured = deps.configuredRateLimit;
  return {
    queues: deps.queues.map((name) => ({
      name,
      paused: name in state.pausedQueues,
      ...markOf(state.pausedQueues[name]),
    })),
    kafka: { paused: state.kafkaPaused !== undefined, ...markOf(state.kafkaPaused) },
    llm_rate_limit: limit
      ? { source: "operator" as const, calls: limit.calls, period_ms: limit.period_ms, ...markOf(limit) }
      : configured
        ? { source: "config" as const, calls: configured.calls, period_ms: configured.periodMs }
        : { source: "none" as const },
  };
}

const QueueParams = t.Object({ queue: t.String({ pattern: "^[a-z0-9_-]{1,64}$" }) });
const TaskParams = t.Object({ id: t.String({ minLength: 1, maxLength: 128 }) });

export function adminRoutes(deps: AdminRoutesDeps) {
  const { redis, queues, tasks, logger, actorOf } = deps;
  const audit = (request: Request, action: string, fields: Record<string, unknown>) =>
    logger.info({ audit: true, action, actor: actorOf(request), ...fields }, "operator action");
  const knownQueue = (queue: string) => {
    if (!queues.includes(queue))
      throw new AppError("QUEUE_NOT_FOUND", `no queue named '${queue}'; the queues are ${queues.join(", ")}`, {
        status: 404,
      });
  };

  const readState = () => readControlView(deps);

  const pauseRoute = (paused: boolean) =>
    ({
      params: QueueParams,
      response: {
        200: t.Object({ queue: t.String(), paused: t.Boolean(), changed: t.Boolean() }),
        ...errorResponses(404, 422, ...ADMIN_ERRORS),
      },
      detail: {
        summary: paused
          ? "Pause a queue: workers take no new jobs of it (those running finish); tasks still queue up"
          : "Resume a paused queue's workers",
        tags: TAGS,
      },
    }) as const;

  const kafkaRoute = (paused: boolean) =>
    ({
      response: { 200: t.Object({ paused: t.Boolean(), changed: t.Boolean() }), ...errorResponses(...ADMIN_ERRORS) },
      detail: {
        summary: paused
          ? "Pause Kafka consumption on every consumer (offsets stay where they are)"
          : "Resume Kafka consumption",
        tags: TAGS,
      },
    }) as const;

  return new Elysia({ name: "admin-routes" })
    .get("/admin/control", readState, {
      response: { 200: ControlSchema, ...errorResponses(...ADMIN_ERRORS) },
      detail: { summary: "What operators changed: paused queues, Kafka, the LLM rate limit", tags: TAGS },
    })
    .post(
      "/admin/queues/:queue/pause",
      async ({ params, request }) => {
        knownQueue(params.queue);
        const changed = await control.setQueuePaused(redis, params.queue, true, actorOf(request));
        audit(request, "queue.pause", { queue: params.queue, changed });
        return { queue: params.queue, paused: true, changed };
      },
      pauseRoute(true),
    )
    .post(
      "/admin/queues/:queue/resume",
      async ({ params, request }) => {
        knownQueue(params.queue);
        const changed = await control.setQueuePaused(redis, params.queue, false, actorOf(request));
        audit(request, "queue.resume", { queue: params.queue, changed });
        return { queue: params.queue, paused: false, changed };
      },
      pauseRoute(false),
    )
    .post(
      "/admin/queues/:queue/retry-failed",
      async ({ params, request }) => {
        knownQueue(params.queue);
        const { queued, gone } = await tasks.retryFailed(params.queue);
        audit(request, "queue.retry_failed", { queue: params.queue, retried: queued, gone });
        return { queue: params.queue, retried: queued, gone };
      },
      {
        params: QueueParams,
        response: {
          200: t.Object({
            queue: t.String(),
            retried: t.Integer({ description: "failed tasks queued again, from their first attempt" }),
            gone: t.Integer({ description: "failed jobs whose record was already pruned (JOB_FAILED_KEEP)" }),
          }),
          ...errorResponses(404, 422, ...ADMIN_ERRORS),
        },
        detail: { summary: "Retry every task of a queue that failed for good", tags: TAGS },
      },
    )
    .post(
      "/admin/queues/:queue/purge-failed",
      async ({ params, request }) => {
        knownQueue(params.queue);
        const purged = await tasks.purgeFailed(params.queue);
        audit(request, "queue.purge_failed", { queue: params.queue, purged });
        return { queue: params.queue, purged };
      },
      {
        params: QueueParams,
        response: {
          200: t.Object({ queue: t.String(), purged: t.Integer({ description: "failed jobs dropped" }) }),
          ...errorResponses(404, 422, ...ADMIN_ERRORS),
        },
        detail: {
          summary: "Drop a queue's failed jobs (the tasks' FAILURE records stay readable until they expire)",
          tags: TAGS,
        },
      },
    )
    .post(
      "/admin/tasks/:id/retry",
      async ({ params, request, set }) => {
        const { outcome, queue } = await tasks.retry(params.id);
        audit(request, "task.retry", { task_id: params.id, queue, outcome });
        if (outcome === "not_failed")
          throw new AppError("TASK_NOT_FAILED", `task ${params.id} is not a failed task: only those can be retried`, {
            status: 409,
          });
        if (outcome === "gone")
          throw new AppError(
            "FAILED_JOB_GONE",
            `task ${params.id} failed, but its job was purged (or pruned: JOB_FAILED_KEEP): submit it again`,
            { status: 409 },
          );
        if (outcome === "not_found") throw new AppError("TASK_NOT_FOUND", `no task ${params.id}`, { status: 404 });
        set.status = 202;
        return { task_id: params.id, status: "PENDING" as const, queue: queue as string };
      },
      {
        params: TaskParams,
        response: {
          202: t.Object({ task_id: t.String(), status: t.Literal("PENDING"), queue: t.String() }),
          ...errorResponses(404, 409, 422, ...ADMIN_ERRORS),
        },
        detail: {
          summary: "Retry a task that failed for good: it is queued again at the head of its queue",
          tags: TAGS,
        },
      },
    )
    .post(
      "/admin/tasks/:id/cancel",
      async ({ params, request }) => {
        const { outcome, queue } = await tasks.cancel(params.id);
        audit(request, "task.cancel", { task_id: params.id, queue, outcome });
        if (outcome === "not_waiting") {
          if (!queue)
            throw new AppError("TASK_NOT_WAITING", `task ${params.id} is not waiting in any queue`, { status: 409 });
          throw new AppError(
            "TASK_NOT_WAITING",
            `task ${params.id} has started or ended: only waiting tasks can be cancelled`,
            {
              status: 409,
            },
          );
        }
        return { task_id: params.id, status: "FAILURE" as const, queue: queue as string, error: { code: "CANCELLED" } };
      },
      {
        params: TaskParams,
        response: {
          200: t.Object({
            task_id: t.String(),
            status: t.Literal("FAILURE"),
            queue: t.String(),
            error: t.Object({ code: t.Literal("CANCELLED") }),
          }),
          ...errorResponses(409, 422, ...ADMIN_ERRORS),
        },
        detail: {
          summary: "Cancel a task that has not started: it ends FAILURE with the code CANCELLED",
          tags: TAGS,
        },
      },
    )
    .post(
      "/admin/kafka/pause",
      async ({ request }) => {
        const changed = await control.setKafkaPaused(redis, true, actorOf(request));
        audit(request, "kafka.pause", { changed });
        return { paused: true, changed };
      },
      kafkaRoute(true),
    )
    .post(
      "/admin/kafka/resume",
      async ({ request }) => {
        const changed = await control.setKafkaPaused(redis, false, actorOf(request));
        audit(request, "kafka.resume", { changed });
        return { paused: false, changed };
      },
      kafkaRoute(false),
    )
    .put(
      "/admin/rate-limit",
      async ({ body, request }) => {
        const limit = parseRateLimit(body.limit);
        if (!limit || limit.calls === 0 || limit.periodMs === 0)
          throw new AppError("VALIDATION_FAILED", "limit: calls and period must be above 0, as in 60/60s", {
            status: 422,
          });
        await control.setRateLimit(redis, limit, actorOf(request));
        audit(request, "llm_rate_limit.set", { calls: limit.calls, period_ms: limit.periodMs });
        return (await readState()).llm_rate_limit;
      },
      {
        body: t.Object({
          limit: t.String({
            pattern: "^[1-9][0-9]{0,8}/[1-9][0-9]{0,8}(ms|s|m|h)$",
            description: "calls per period, as LLM_RATE_LIMIT: 60/60s, 1000/1m",
            examples: ["120/60s"],
          }),
        }),
        response: { 200: ControlSchema.properties.llm_rate_limit, ...errorResponses(400, 422, ...ADMIN_ERRORS) },
        detail: {
          summary: "Set the global LLM rate limit now, for every worker (within a second), overriding LLM_RATE_LIMIT",
          tags: TAGS,
        },
      },
    )
    .delete(
      "/admin/rate-limit",
      async ({ request }) => {
        const changed = await control.setRateLimit(redis, undefined, actorOf(request));
        audit(request, "llm_rate_limit.reset", { changed });
        return (await readState()).llm_rate_limit;
      },
      {
        response: { 200: ControlSchema.properties.llm_rate_limit, ...errorResponses(...ADMIN_ERRORS) },
        detail: { summary: "Drop the operator's LLM rate limit: LLM_RATE_LIMIT applies again", tags: TAGS },
      },
    )
    .post(
      "/admin/workers/:id/recycle",
      async ({ params, request, set }) => {
        const workers = await listWorkers({ redis });
        if (!workers.some((worker) => worker.id === params.id)) {
          audit(request, "worker.recycle", { worker_id: params.id, outcome: "not_found" });
          throw new AppError("WORKER_NOT_FOUND", `no live worker process '${params.id}' (see GET /workers)`, {
            status: 404,
          });
        }
        const changed = await control.requestRecycle(redis, params.id, actorOf(request));
        audit(request, "worker.recycle", {
          worker_id: params.id,
          outcome: changed ? "requested" : "already_requested",
        });
        set.status = 202;
        return { worker_id: params.id, requested: true };
      },
      {
        params: t.Object({ id: t.String({ minLength: 1, maxLength: 200 }) }),
        response: {
          202: t.Object({ worker_id: t.String(), requested: t.Boolean() }),
          ...errorResponses(404, 422, ...ADMIN_ERRORS),
        },
        detail: {
          summary:
            "Recycle a worker process: under a supervisor a replacement starts, then it drains; alone, it drains and exits",
          tags: TAGS,
        },
      },
    );
}
