/**
 * Accepting a task, written once for every front door (POST /process, the
 * GraphQL `process` mutation): the task-type check, the Idempotency-Key
 * claim, the tenant's pending cap, the durable enqueue and the accounting of
 * each failure on the way. A second copy would drift on exactly the cases
 * that matter (a retry after a lost answer must never become a second task).
 */
import { Value } from "@sinclair/typebox/value";
import type Redis from "ioredis";
import { AppError, errorMessage } from "../errors";
import type { EventBus } from "../events";
import type { Logger } from "../log";
import { type Enqueuer, QueuedUnknownError } from "../queue/enqueuer";
import { newTaskId, ProcessBody, type ProcessRequest, type TaskJob } from "../task/contract";
import { routeTask } from "../task/routing";
import { WebhooksDisabled } from "../webhooks/callback-url";
import type { PendingCap } from "./client-limits";
import { createIdempotency, fingerprint } from "./idempotency";

export interface AcceptedTask {
  task_id: string;
  status: "PENDING";
  message: string;
  /** True when an earlier request with the same Idempotency-Key created this task. */
  replayed: boolean;
}

export interface TaskAcceptorDeps {
  redis: Redis;
  enqueuer: Enqueuer;
  bus: EventBus;
  routes: ReadonlyMap<string, string>;
  /** Task types a worker has a prompt for; others are refused at once. */
  taskTypes: ReadonlySet<string>;
  /** API_MAX_PENDING_TASKS per tenant; absent: no cap. */
  pendingCap?: PendingCap;
  /**
   * Checks a callback_url (after DNS, issue 15 §4) and returns it normalised, or throws its 422; absent:
   * webhooks are off (no WEBHOOK_SECRET) and a callback_url is refused.
   */
  checkCallback?: (url: string) => Promise<string>;
  /**
   * Throws the 422 of a request's `model` that its tenant may not name, or whose provider has no key
   * (llm/model-routes.ts); absent: any model is accepted (the worker still checks).
   */
  checkModel?: (model: string, tenant: string | undefined) => void;
  logger?: Logger;
}

export type AcceptTask = (
  body: ProcessRequest,
  caller: { tenant: string | undefined; idempotencyKey: string | undefined },
) => Promise<AcceptedTask>;

export function createTaskAcceptor(deps: TaskAcceptorDeps): AcceptTask {
  const { enqueuer, bus, routes, taskTypes, pendingCap } = deps;
  const idempotency = createIdempotency(deps.redis);
  const acceptCallback = (url: string) => {
    if (!deps.checkCallback) throw new WebhooksDisabled();
    return deps.checkCallback(url);
  };

  return async (body, { tenant, idempotencyKey }) => {
    if (!taskTypes.has(body.task_type)) {
      throw new AppError("UNKNOWN_TASK_TYPE", `task_type: unknown task type '${body.task_type}'`, {
        status: 422,
        details: { field: "task_type", known: [...taskTypes].sort() },
      });
    }
    if (body.model !== undefined) deps.checkModel?.(body.model, tenant);
    const callbackUrl = body.callback_url === undefined ? undefined : await acceptCallback(body.callback_url);
    const taskId = newTaskId();
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
            // Only when present: keys claimed before callback_url existed keep their fingerprint.
            ...(callbackUrl === undefined ? [] : [callbackUrl]),
            // A user's experiment variant may change the answer; absent, fingerprints of before hold.
            ...(body.user_id === undefined ? [] : [`user:${body.user_id}`]),
          ]),
          taskId,
        )
      : undefined;
    if (claim?.kind === "replay") {
      return {
        task_id: claim.taskId,
        status: "PENDING",
        message: "already accepted under this Idempotency-Key",
        replayed: true,
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
      ...(body.user_id ? { user_id: body.user_id } : {}),
      ...(callbackUrl ? { callback_url: callbackUrl } : {}),
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
        deps.logger?.warn({ task_id: id, error: errorMessage(error) }, "could not finish the Idempotency-Key claim"),
      );
    // A resumed claim whose first enqueue did land was counted then.
    if (added) bus.emit("task.accepted", { task_id: id, queue, task_type: body.task_type, source: "api" });
    return { task_id: id, status: "PENDING", message: `accepted; queued on ${queue}`, replayed: false };
  };
}

/**
 * A task request that did not come through Elysia's body validation (the
 * GraphQL mutation's input): absent fields take ProcessBody's defaults, and a
 * violation is the same 422 VALIDATION_FAILED as POST /process's, naming the
 * field (`text: Expected string length greater or equal to 1`).
 */
export function checkProcessInput(input: Record<string, unknown>): ProcessRequest {
  const present = Object.fromEntries(
    Object.entries(input).filter(([, value]) => value !== null && value !== undefined),
  );
  const value = Value.Default(ProcessBody, present);
  const first = Value.Errors(ProcessBody, value).First();
  if (!first) return value as ProcessRequest;
  const field = first.path.replace(/^\//, "").replaceAll("/", ".") || "(input)";
  throw new AppError("VALIDATION_FAILED", `${field}: ${first.message}`, {
    status: 422,
    details: { field, message: first.message, location: "input" },
  });
}
