/**
 * The webhook routes (issue 15 §4): GET /webhooks/secret gives the caller's
 * tenant the secret its webhooks are signed with, so a receiver can verify
 * them; GET /task/:id/deliveries shows a task's webhook and every attempt.
 */
import { Elysia, t } from "elysia";
import { AppError } from "../errors";
import type { TaskStore } from "../store/task-store";
import { TASK_ID_PATTERN } from "../task/contract";
import { WEBHOOKS_DISABLED_REASON } from "../webhooks/callback-url";
import type { DeliveryStore } from "../webhooks/delivery-store";
import { COMMON_ERRORS, errorResponses } from "./error-responses";

export interface WebhookRoutesDeps {
  /** A tenant's signing secret; absent when webhooks are off (no WEBHOOK_SECRET). */
  secretOf?: (tenant: string) => string;
  deliveries: Pick<DeliveryStore, "read">;
  store: Pick<TaskStore, "get">;
  /** The tenant of a request (the API key's name), or undefined when auth is off. */
  tenantOf?: (request: Request) => string | undefined;
}

const State = t.Union(
  [t.Literal("pending"), t.Literal("retrying"), t.Literal("delivered"), t.Literal("failed"), t.Literal("gone")],
  { description: "pending, retrying, delivered, failed or gone" },
);

const SecretSchema = t.Object({
  secret: t.String({ description: "whsec_ + base64 key: the HMAC-SHA256 key is the base64 part, decoded" }),
  tenant: t.Union([t.String(), t.Null()], { description: "the API key's name; null when auth is off" }),
  scheme: t.String(),
});

const AttemptSchema = t.Object({
  n: t.Integer({ minimum: 1 }),
  at: t.String({ description: "when the attempt started, ISO 8601" }),
  status_code: t.Optional(t.Integer({ description: "the receiver's HTTP status" })),
  error: t.Optional(t.String({ description: "why no response came: timeout, connection error, refused address" })),
  duration_ms: t.Number(),
  state: State,
  next_attempt_at: t.Optional(t.String({ description: "when the next attempt is due, ISO 8601" })),
});

export const DeliveriesSchema = t.Object({
  task_id: t.String(),
  deliveries: t.Array(
    t.Object({
      webhook_id: t.String({ description: "the webhook-id header, the same on every attempt" }),
      url: t.String(),
      type: t.Union([t.Literal("task.completed"), t.Literal("task.failed")]),
      state: State,
      created_at: t.String(),
      next_attempt_at: t.Optional(t.String()),
      detail: t.Optional(t.String()),
      attempts: t.Array(AttemptSchema),
    }),
    { description: "empty until the task ends, or when it has no callback_url" },
  ),
});

type Found = NonNullable<Awaited<ReturnType<DeliveryStore["read"]>>>;

/** What GET /task/:id/deliveries shows of a task's delivery (also the operator console's task detail). */
export function deliveriesView(found: Found | undefined): (typeof DeliveriesSchema.static)["deliveries"] {
  if (!found) return [];
  const { delivery, attempts } = found;
  return [
    {
      webhook_id: delivery.id,
      url: delivery.url,
      type: delivery.type,
      state: delivery.state,
      created_at: new Date(delivery.created_at).toISOString(),
      ...(delivery.next_attempt_at === undefined
        ? {}
        : { next_attempt_at: new Date(delivery.next_attempt_at).toISOString() }),
      ...(delivery.detail ? { detail: delivery.detail } : {}),
      attempts,
    },
  ];
}

export function webhookRoutes(deps: WebhookRoutesDeps) {
  const { deliveries, store, tenantOf = () => undefined } = deps;
  return new Elysia({ name: "webhooks" })
    .get(
      "/webhooks/secret",
      ({ request }) => {
        if (!deps.secretOf) {
          throw new AppError("WEBHOOKS_DISABLED", WEBHOOKS_DISABLED_REASON, { status: 404 });
        }
        const tenant = tenantOf(request);
        return {
          secret: deps.secretOf(tenant ?? ""),
          tenant: tenant ?? null,
          scheme:
            "Standard Webhooks v1: webhook-signature = v1,base64(HMAC-SHA256(key, webhook-id + '.' + webhook-timestamp + '.' + body))",
        };
      },
      {
        response: { 200: SecretSchema, ...errorResponses(404, ...COMMON_ERRORS) },
        detail: {
          summary: "The secret your webhooks are signed with",
          description:
            "Each tenant (API key name) has its own secret, derived from the server's WEBHOOK_SECRET; 404 WEBHOOKS_DISABLED when it is unset. Verify every webhook with it, e.g. with a Standard Webhooks library.",
          tags: ["webhooks"],
        },
      },
    )
    .get(
      "/task/:id/deliveries",
      async ({ params, request }) => {
        const tenant = tenantOf(request);
        const found = await deliveries.read(params.id);
        const visible = found && (tenant === undefined || found.delivery.tenant === tenant);
        if (!visible) {
          if (!(await store.get(params.id, tenant))) {
            throw new AppError("TASK_NOT_FOUND", `no task with id '${params.id}'`, { status: 404 });
          }
          return { task_id: params.id, deliveries: [] };
        }
        return { task_id: params.id, deliveries: deliveriesView(found) };
      },
      {
        params: t.Object({ id: t.String({ pattern: TASK_ID_PATTERN }) }),
        response: { 200: DeliveriesSchema, ...errorResponses(404, 422, ...COMMON_ERRORS) },
        detail: {
          summary: "A task's webhook deliveries and every attempt",
          description:
            "Each attempt: its number, time, the receiver's status code or the error, duration, and the state it led to (retrying with next_attempt_at, delivered, failed, gone). Kept 7 days after the last attempt, beyond the task's own result.",
          tags: ["webhooks"],
        },
      },
    );
}
