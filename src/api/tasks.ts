/**
 * POST /process and GET /task/:id. A task is accepted only once its job is in
 * Redis (batched with concurrent requests into one pipelined save); the
 * answer is 202 with a sortable task id.
 */

import { Elysia, t } from "elysia";
import type Redis from "ioredis";
import { AppError, errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import { type Enqueuer, QueuedUnknownError } from "../queue/enqueuer";
import { type TaskStore, viewOf } from "../store/task-store";
import type { TaskWaiter } from "../store/task-waiter";
import {
  AcceptedSchema,
  newTaskId,
  ProcessBody,
  TASK_ID_PATTERN,
  type TaskJob,
  TaskSchema,
  TERMINAL,
} from "../task/contract";
import { routeTask } from "../task/routing";
import type { PendingCap } from "./client-limits";
import { COMMON_ERRORS, errorResponses } from "./error-responses";
import { createIdempotency, fingerprint } from "./idempotency";

/** The longest a GET /task/:id?wait= request is held. */
export const MAX_WAIT_MS = 60_000;

export interface TaskRoutesDeps {
  redis: Redis;
  enqueuer: Enqueuer;
  store: TaskStore;
  waiter: TaskWaiter;
  bus: EventBus;
  routes: ReadonlyMap<string, string>;
  /** Task types a worker has a prompt for; others are refused at once. */
  taskTypes: ReadonlySet<string>;
  /** The tenant of a request (the API key's name), or undefined when auth is off. */
  tenantOf?: (request: Request) => string | undefined;
  /** API_MAX_PENDING_TASKS per tenant; absent: no cap. */
  pendingCap?: PendingCap;
  logger?: Logger;
}

export function taskRoutes(deps: TaskRoutesDeps) {
  const { redis, enqueuer, store, waiter, bus, routes, taskTypes, tenantOf = () => undefined, pendingCap } = deps;

  const idempotency = createIdempotency(redis);

  return new Elysia({ name: "tasks" })
    .post(
      "/process",
      async ({ body, headers, request, set }) => {
        if (!taskTypes.has(body.task_type)) {
          throw new AppError("UNKNOWN_TASK_TYPE", `task_type: unknown task type '${body.task_type}'`, {
            status: 422,
            details: { field: "task_type", known: [...taskTypes].sort() },
          });
        }
        const tenant = tenantOf(request);
        const taskId = newTaskId();
        const idempotencyKey = headers["idempotency-key"];
        const claim = idempotencyKey
          ? await idempotency.claim(
              tenant,
              idempotencyKey,
              fingerprint([
                body.text,
                body.task_type,
                body.use_cache,
                body.refresh_cache ?? false,
                body.model ?? null,
                body.temperature,
                body.max_tokens,
              ]),
              taskId,
            )
          : undefined;
        if (claim?.kind === "replay") {
          set.status = 202;
          set.headers["idempotent-replayed"] = "true";
          return {
            task_id: claim.taskId,
            status: "PENDING" as const,
            message: "already accepted under this Idempotency-Key",
          };
        }
        const queue = routeTask(routes, body.task_type, "api");
        // A resumed claim (its first enqueue had no answer) enqueues the same task id: written at most once.
        const id = claim?.kind === "resume" ? claim.taskId : taskId;
        const job: TaskJob = {
          task_id: id,
          text: body.text,
          task_type: body.task_type,
          use_cache: body.use_cache,
          ...(body.refresh_cache ? { refresh_cache: true } : {}),
          ...(body.model ? { model: body.model } : {}),
          temperature: body.temperature,
          max_tokens: body.max_tokens,
          // Not in the idempotency fingerprint: how the answer is delivered, not which answer; GET
          // /task/:id/stream serves a task that was not streamed too, as one chunk.
          ...(body.stream ? { stream: true } : {}),
          ...(tenant ? { tenant } : {}),
          source: "api",
          accepted_at: Date.now(),
        };
        try {
          await pendingCap?.reserve(tenant, id);
        } catch (error) {
          await claim?.abandon().catch(() => {});
          throw error;
        }
        let added: boolean;
        try {
          added = await enqueuer.enqueue(queue, job);
        } catch (error) {
          if (error instanceof QueuedUnknownError) {
            // The job may exist: its 503 carries the id, and a retry with this key resumes it, never a second task.
            await claim?.unknown().catch(() => {});
          } else {
            await claim?.abandon().catch(() => {});
            await pendingCap?.release(tenant, id).catch(() => {});
          }
          throw error;
        }
        // The task is durable: retries now get its id. Should this write fail, the claim's short TTL frees the key.
        await claim
          ?.complete()
          .catch((error: unknown) =>
            deps.logger?.warn(
              { task_id: id, error: errorMessage(error) },
              "could not finish the Idempotency-Key claim",
            ),
          );
        // A resumed claim whose first enqueue did land was counted then.
        if (added) bus.emit("task.accepted", { task_id: id, queue, task_type: body.task_type, source: "api" });
        set.status = 202;
        return { task_id: id, status: "PENDING" as const, message: `accepted; queued on ${queue}` };
      },
      {
        body: ProcessBody,
        headers: t.Object({ "idempotency-key": t.Optional(t.String({ minLength: 1, maxLength: 200 })) }),
        response: { 202: AcceptedSchema, ...errorResponses(400, 409, 413, 415, 422, ...COMMON_ERRORS) },
        detail: {
          summary: "Submit a text for processing",
          description:
            "Answers 202 once the job is durably in Redis. With an Idempotency-Key header, a retry of the same request returns the same task instead of creating a second one; a retry while the first is still being accepted gets 409 with Retry-After, and the same key with another body 422.",
          tags: ["tasks"],
        },
      },
    )
    .get(
      "/task/:id",
      async ({ params, query, request }) => {
        const tenant = tenantOf(request);
        const waitMs = Math.min(query.wait ?? 0, MAX_WAIT_MS);
        // Listen before reading, so an end announced between the read and the wait is not missed.
        const wait = waitMs > 0 ? waiter.wait(params.id, waitMs, request.signal) : undefined;
        try {
          let state = await store.get(params.id, tenant);
          if (!state) throw new AppError("TASK_NOT_FOUND", `no task with id '${params.id}'`, { status: 404 });
          if (wait && !TERMINAL.has(state.status) && (await wait.done)) {
            state = (await store.get(params.id, tenant)) ?? state;
          }
          return viewOf(state);
        } finally {
          wait?.cancel();
        }
      },
      {
        params: t.Object({ id: t.String({ pattern: TASK_ID_PATTERN }) }),
        query: t.Object({
          wait: t.Optional(
            t.Integer({ minimum: 0, maximum: MAX_WAIT_MS, description: "ms to hold the request until the task ends" }),
          ),
        }),
        response: { 200: TaskSchema, ...errorResponses(404, 422, ...COMMON_ERRORS) },
        detail: { summary: "A task's status and result", tags: ["tasks"] },
      },
    );
}
