/**
 * GET /tasks and GET /tasks/:id: the operator console's view of tasks (issue
 * 16). The list is store/task-list.ts's, the same as GraphQL's `tasks`,
 * with filters by status, task type, queue and tenant: a key sees its own
 * tenant's tasks, an admin key every tenant's merged newest first (or one
 * tenant's with `tenant=`), and without keys the open namespace. The detail
 * adds what the console shows of one task: attempts, timings, the text while
 * its job record still exists, and its webhook deliveries.
 */
import { Elysia, t } from "elysia";
import type Redis from "ioredis";
import { AppError } from "../errors";
import { listTasks, MAX_PAGE } from "../store/task-list";
import type { TaskStore } from "../store/task-store";
import {
  TASK_ID_PATTERN,
  TASK_STATUSES,
  TaskErrorSchema,
  TaskResultSchema,
  TaskSchema,
  type TaskStatus,
} from "../task/contract";
import type { DeliveryStore } from "../webhooks/delivery-store";
import { namespacesOf, TENANT_PARAM_PATTERN, type TenantScope } from "./auth";
import { COMMON_ERRORS, errorResponses } from "./error-responses";
import { LIST } from "./events";
import { DeliveriesSchema, deliveriesView } from "./webhooks";

export interface TaskListRoutesDeps {
  redis: Redis;
  store: Pick<TaskStore, "get">;
  resultTtlSeconds: number;
  scope: TenantScope;
  /** A task's webhook deliveries, shown in its detail; absent: none shown. */
  deliveries?: Pick<DeliveryStore, "read">;
}

/** Characters of a task's text the detail carries at most: enough to recognise it, not a copy of a 10,000-character body. */
export const INPUT_PREVIEW_CHARS = 1000;

const STATUS = TASK_STATUSES.join("|");
const Epoch = (what: string) => t.Optional(t.Number({ description: `epoch ms ${what}` }));

const Listed = {
  task_id: t.String(),
  status: TaskSchema.properties.status,
  tenant: t.Optional(t.String({ description: "the API key name that owns it; absent: the open namespace" })),
  task_type: t.Optional(t.String()),
  queue: t.Optional(t.String()),
  accepted_at: Epoch("it was accepted (unfinished tasks in the list)"),
  finished_at: Epoch("it ended"),
  result: t.Optional(TaskResultSchema),
  error: t.Optional(TaskErrorSchema),
};

const TaskListSchema = t.Object({
  tasks: t.Array(t.Object({ ...Listed, cursor: t.String({ description: "pass as ?cursor= to continue after it" }) })),
  next_cursor: t.Union([t.String(), t.Null()], { description: "the next page's ?cursor=; null at the end" }),
  has_more: t.Boolean({
    description: "more tasks may follow (a page can be short when the filters matched few of the tasks examined)",
  }),
});

const TaskDetailSchema = t.Object({
  ...Listed,
  attempts: t.Optional(t.Integer({ minimum: 0, description: "attempts started, retries included" })),
  started_at: Epoch("its last attempt started"),
  input: t.Optional(
    t.String({
      description: `the text, its first ${INPUT_PREVIEW_CHARS} characters, while the task's job record exists (queued, running, retrying, failed); a succeeded task's text is not kept`,
    }),
  ),
  input_chars: t.Optional(t.Integer({ minimum: 0, description: "the text's whole length" })),
  deliveries: DeliveriesSchema.properties.deliveries,
});

const setOf = <T extends string>(value: string | undefined) =>
  value ? (new Set(value.split(",").filter(Boolean)) as ReadonlySet<string> as ReadonlySet<T>) : undefined;

export function taskListRoutes(deps: TaskListRoutesDeps) {
  const { redis, store, scope } = deps;
  return new Elysia({ name: "task-list" })
    .get(
      "/tasks",
      async ({ query, request }) => {
        const tenants = namespacesOf(scope, request, query.tenant, "all");
        const page = await listTasks(
          { redis, store, resultTtlSeconds: deps.resultTtlSeconds },
          {
            tenants,
            first: query.limit ?? 50,
            after: query.cursor,
            cursorField: "cursor",
            filter: {
              statuses: setOf<TaskStatus>(query.status),
              taskTypes: setOf(query.task_type),
              queues: setOf(query.queue),
            },
          },
        );
        return {
          tasks: page.tasks,
          next_cursor: page.hasNextPage ? (page.endCursor ?? null) : null,
          has_more: page.hasNextPage,
        };
      },
      {
        query: t.Object({
          status: t.Optional(
            t.String({ pattern: `^(${STATUS})(,(${STATUS}))*$`, description: "only these statuses, comma-separated" }),
          ),
          task_type: t.Optional(t.String({ pattern: LIST, description: "only these task types, comma-separated" })),
          queue: t.Optional(t.String({ pattern: LIST, description: "only tasks of these queues, comma-separated" })),
          tenant: t.Optional(
            t.String({
              pattern: TENANT_PARAM_PATTERN,
              description: "one tenant's tasks (an API key name), or * for all: admin keys only, besides your own",
            }),
          ),
          cursor: t.Optional(t.String({ minLength: 1, maxLength: 600, description: "next_cursor of the last page" })),
          limit: t.Optional(t.Integer({ minimum: 1, maximum: MAX_PAGE, default: 50, description: "tasks per page" })),
        }),
        response: { 200: TaskListSchema, ...errorResponses(403, 422, ...COMMON_ERRORS) },
        detail: {
          summary: "The latest tasks, newest first, filtered",
          description:
            "Unfinished tasks first (tracked only with API keys and API_MAX_PENDING_TASKS on), then finished ones from the completion streams while their results live (RESULT_TTL_SECONDS, EVENTS_STREAM_MAXLEN). A key sees its own tenant's tasks; an admin key (API_ADMINS) sees every tenant's, merged newest first, and may name one with `tenant` (403 for other keys); without keys, every task. At most 1,000 entries are examined per request, so a narrow filter can give a short page with has_more true.",
          tags: ["tasks"],
        },
      },
    )
    .get(
      "/tasks/:id",
      async ({ params, request }) => {
        // An admin reads any tenant's task, as in the list; another key only its own.
        const tenant = scope.isAdmin(request) ? undefined : scope.tenantOf(request);
        const [state, found] = await Promise.all([store.get(params.id, tenant), deps.deliveries?.read(params.id)]);
        if (!state) throw new AppError("TASK_NOT_FOUND", `no task with id '${params.id}'`, { status: 404 });
        const { input, tenant: owner, ...rest } = state;
        return {
          ...rest,
          ...(owner ? { tenant: owner } : {}),
          ...(input === undefined ? {} : { input: input.slice(0, INPUT_PREVIEW_CHARS), input_chars: input.length }),
          deliveries: found && (tenant === undefined || found.delivery.tenant === tenant) ? deliveriesView(found) : [],
        };
      },
      {
        params: t.Object({ id: t.String({ pattern: TASK_ID_PATTERN }) }),
        response: { 200: TaskDetailSchema, ...errorResponses(404, 422, ...COMMON_ERRORS) },
        detail: {
          summary: "One task as the operator console shows it",
          description:
            "GET /task/{id}'s status, result and error, with its tenant, task type, queue, attempts, timings (epoch ms), the start of its text while the job record exists, and its webhook deliveries. An admin key reads any tenant's task; another key only its own (404 otherwise).",
          tags: ["tasks"],
        },
      },
    );
}
