/**
 * POST /process and GET /task/:id. A task is accepted only once its job is in
 * Redis (batched with concurrent requests into one pipelined save); the
 * answer is 202 with a sortable task id.
 */

import { Elysia, t } from "elysia";
import { AppError } from "../errors";
import type { TaskStore } from "../store/task-store";
import type { TaskWaiter } from "../store/task-waiter";
import { AcceptedSchema, ProcessBody, TASK_ID_PATTERN, TaskSchema, TERMINAL, taskView } from "../task/contract";
import { createTaskAcceptor, type TaskAcceptorDeps } from "./accept-task";
import { COMMON_ERRORS, errorResponses } from "./error-responses";

/** The longest a GET /task/:id?wait= request is held. */
export const MAX_WAIT_MS = 60_000;

export interface TaskRoutesDeps extends TaskAcceptorDeps {
  store: TaskStore;
  waiter: TaskWaiter;
  /** The tenant of a request (the API key's name), or undefined when auth is off. */
  tenantOf?: (request: Request) => string | undefined;
}

export function taskRoutes(deps: TaskRoutesDeps) {
  const { store, waiter, tenantOf = () => undefined } = deps;
  const accept = createTaskAcceptor(deps);

  return new Elysia({ name: "tasks" })
    .post(
      "/process",
      async ({ body, headers, request, set }) => {
        const accepted = await accept(body, {
          tenant: tenantOf(request),
          idempotencyKey: headers["idempotency-key"],
        });
        set.status = 202;
        if (accepted.replayed) set.headers["idempotent-replayed"] = "true";
        return { task_id: accepted.task_id, status: accepted.status, message: accepted.message };
      },
      {
        body: ProcessBody,
        headers: t.Object({ "idempotency-key": t.Optional(t.String({ minLength: 1, maxLength: 200 })) }),
        response: { 202: AcceptedSchema, ...errorResponses(400, 409, 413, 415, 422, ...COMMON_ERRORS) },
        detail: {
          summary: "Submit a text for processing",
          description:
            "Answers 202 once the job is durably in Redis. With an Idempotency-Key header, a retry of the same request returns the same task instead of creating a second one; a retry while the first is still being accepted gets 409 with Retry-After, and the same key with another body 422. With callback_url, the task's final result is POSTed there as a signed webhook (Standard Webhooks; GET /webhooks/secret gives the key); a URL that is not http(s), carries credentials, or resolves to a private, loopback or link-local address is refused with 422 CALLBACK_URL_REFUSED, and without WEBHOOK_SECRET on the server with 422 WEBHOOKS_DISABLED.",
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
          return taskView(state);
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
