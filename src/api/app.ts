/** The Elysia application: route groups, request limits, the error shape and the OpenAPI document. */
import { swagger } from "@elysiajs/swagger";
import { type AnyElysia, Elysia, ParseError } from "elysia";
import type Redis from "ioredis";
import { AppError } from "../errors";
import type { HealthProbe } from "../health-probe";
import type { Logger } from "../log";
import { listWorkers, WORKER_HEARTBEAT_MS } from "../queue/worker-registry";
import { APP_VERSION } from "../version";
import { createTaskAcceptor } from "./accept-task";
import { type AdminRoutesDeps, adminRoutes, readControlView } from "./admin";
import { adminGuard, authGuard, consoleGuard, type Keyring } from "./auth";
import { type CacheRoutesDeps, cacheRoutes } from "./cache";
import { clientIdentity, rateLimitGuard } from "./client-limits";
import { dashboardRoutes } from "./dashboard/routes";
import { errorHandler, errorResponse } from "./error-responses";
import { type EventRoutesDeps, eventRoutes } from "./events";
import { type ExperimentRoutesDeps, experimentRoutes } from "./experiments";
import { type FeedbackRoutesDeps, feedbackRoutes } from "./feedback";
import { type FineTuneRoutesDeps, fineTuneRoutes } from "./fine-tunes";
import { GRAPHQL_PATH, type GraphqlLimits, graphqlRoutes } from "./graphql/routes";
import { healthRoutes } from "./health";
import { createBroadcast, createMetricsBroadcast, metricsStreamRoutes, type WorkersTick } from "./metrics-stream";
import { type OperationsRoutesDeps, operationsRoutes, readOperationsMetrics } from "./operations";
import { type StreamRoutesDeps, streamRoutes } from "./stream";
import { type StreamTokens, streamTokenRoutes } from "./stream-tokens";
import { type TaskListRoutesDeps, taskListRoutes } from "./task-list";
import { type TaskRoutesDeps, taskRoutes } from "./tasks";
import { type WebhookRoutesDeps, webhookRoutes } from "./webhooks";
import { wsRoutes } from "./ws";

export interface AppDeps {
  logger: Logger;
  probes: readonly HealthProbe[];
  roles: readonly string[];
  startedAt?: number;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes?: number;
  /** POST /process and GET /task/:id; absent in an app that only reports health. */
  tasks?: TaskRoutesDeps;
  /** GET /tasks and GET /tasks/:id: the operator console's list and detail. */
  taskList?: TaskListRoutesDeps;
  /** GET /task/:id/events, GET /events (Server-Sent Events) and the WebSocket /ws. */
  events?: EventRoutesDeps;
  /** GET /auth/stream-token, for browsers' EventSource and WebSocket. */
  streamTokens?: StreamTokens;
  /** GET /task/:id/stream: a task's answer token by token (Server-Sent Events). */
  stream?: StreamRoutesDeps;
  /** GET /metrics, /metrics/prometheus, /workers. */
  operations?: OperationsRoutesDeps;
  /** DELETE /cache/clear, DELETE /cache/:id. */
  cache?: CacheRoutesDeps;
  /** /admin/*: the operator's control actions (who did it is the key's name, or the client address). */
  admin?: Omit<AdminRoutesDeps, "actorOf" | "logger">;
  /** Without API keys, /dashboard and /admin/* answer other hosts too (CONSOLE_ALLOW_REMOTE). */
  consoleAllowRemote?: boolean;
  /** /prompts/* and /experiments/*: prompt versions and A/B experiments (the operator's, like /admin/*). */
  experiments?: Omit<ExperimentRoutesDeps, "actorOf" | "logger">;
  /** GET /webhooks/secret, GET /task/:id/deliveries. */
  webhooks?: WebhookRoutesDeps;
  /**
   * /fine-tunes (operators only, audited like /admin/*), and the training examples that feedback feeds
   * (POST /task/:id/feedback's positive ones).
   */
  fineTunes?: Omit<FineTuneRoutesDeps, "actorOf" | "logger"> & {
    examples: NonNullable<FeedbackRoutesDeps["examples"]>;
  };
  /** GraphQL at /graphql, over the tasks, events and operations above (all three needed). */
  graphql?: { resultTtlSeconds: number; limits?: GraphqlLimits };
  /**
   * API keys (every route but /health needs one when any is configured), who is an admin (what spans
   * tenants: metrics, workers, /health's checks, the cache), and the per-client request rate.
   */
  access?: {
    keyring: Keyring;
    isAdmin: (request: Request) => boolean;
    redis: Redis;
    rateLimit: { calls: number; periodMs: number } | undefined;
  };
}

/** 1 MiB: a maximal task (10,000 characters, 4 bytes each in UTF-8) is 40 KB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

const WITH_BODY = new Set(["POST", "PUT", "PATCH"]);

/** Bun's own body limit: far above MAX_BODY_BYTES (≤ 100 MiB), which the app enforces with its JSON 413. */
const BUN_BODY_BACKSTOP_BYTES = 2 ** 31 - 1;

/** The body as text, read chunk by chunk and abandoned with a 413 as soon as it passes `max` bytes. */
async function readCapped(request: Request, max: number, onTooLarge: () => void): Promise<string> {
  const reader = (request.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.byteLength;
    if (length > max) {
      await reader.cancel().catch(() => {});
      onTooLarge();
      throw new AppError("PAYLOAD_TOO_LARGE", `the body is over ${max} bytes, the limit`, { status: 413 });
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Whether a Content-Type names JSON: the media type `application/json` in any
 * case (media types are case-insensitive, RFC 9110 §8.3.1), with any
 * parameters. Other JSON-based types (application/json-seq, …+json) are 415:
 * the API does not speak them.
 */
export function isJson(contentType: string): boolean {
  const semicolon = contentType.indexOf(";");
  return (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase() === "application/json";
}

/**
 * The app, typed as any Elysia: no caller uses its routes' inferred types (there is no Eden client), and
 * with every route group that inference exceeds TypeScript's complexity limit where the type is compared.
 */
export function createApp(deps: AppDeps): AnyElysia {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  // Bun's own limit answers a bare 413 and closes the connection, so it is only a distant backstop: declared
  // sizes are refused below in the JSON error shape before the body is read, and a chunked body is counted
  // as it is read and abandoned at the limit.
  const access = deps.access;
  // The server exists once the app listens; the rate limit reads the remote address through it.
  const listening: { server?: { requestIP(request: Request): { address: string } | null } | null } = {};
  const addressOf = (request: Request) => listening.server?.requestIP(request)?.address;
  /** Who made a request, for audit lines: the key's name, or the client's address without keys. */
  const actorOf = (request: Request) =>
    (access?.keyring.enabled ? access.keyring.tenantOf(request) : undefined) ??
    `local:${addressOf(request) ?? "in-process"}`;
  // Filled once every route is registered; the error handler answers 405 from it.
  const routeTable: { routes: readonly { method: string; path: string }[]; exact: ReadonlySet<string> } = {
    routes: [],
    exact: new Set(),
  };
  // POST /process is checked on every request: a Set lookup for routes without parameters, the patterns otherwise.
  const isRoute = (method: string, path: string) =>
    routeTable.exact.has(`${method} ${path}`) || allowedMethods(routeTable.routes, path).includes(method);
  const app = new Elysia({ name: "ai-eventstream", serve: { maxRequestBodySize: BUN_BODY_BACKSTOP_BYTES } })
    .use(errorHandler(deps.logger, (path) => allowedMethods(routeTable.routes, path)))
    // Before anything reads a body: a request without a key, or over its rate, costs no parsing.
    .use(access ? authGuard(access.keyring, deps.logger) : new Elysia({ name: "auth" }))
    .use(
      access
        ? rateLimitGuard({
            redis: access.redis,
            limit: access.rateLimit,
            clientOf: clientIdentity(access.keyring, addressOf),
            logger: deps.logger,
          })
        : new Elysia({ name: "rate-limit" }),
    )
    // After the rate limit: refused requests count toward it too.
    .use(access ? adminGuard(access.keyring, access.isAdmin, deps.logger) : new Elysia({ name: "admin" }))
    .use(
      consoleGuard({
        keysOn: access?.keyring.enabled ?? false,
        allowRemote: deps.consoleAllowRemote ?? false,
        addressOf: addressOf,
        logger: deps.logger,
      }),
    )
    .onRequest(({ request }) => {
      if (!WITH_BODY.has(request.method)) return;
      // A method the path does not have is the error handler's 405, whatever its body.
      if (!isRoute(request.method, new URL(request.url).pathname)) return;
      // Refused before the body is read: a declared oversize body, or one that is not JSON.
      const length = Number(request.headers.get("content-length") ?? 0);
      if (length > maxBodyBytes) {
        deps.logger.info({ route: new URL(request.url).pathname, length }, "request rejected: body too large");
        return errorResponse(413, "PAYLOAD_TOO_LARGE", `the body is ${length} bytes; the limit is ${maxBodyBytes}`);
      }
      const type = request.headers.get("content-type") ?? "";
      // A request with no body at all (the /admin/ actions: `curl -X POST`) declares no type and needs none.
      const bodyless = length === 0 && !request.headers.has("transfer-encoding") && type === "";
      if (!bodyless && !isJson(type)) {
        deps.logger.info({ route: new URL(request.url).pathname, content_type: type }, "request rejected: not JSON");
        return errorResponse(
          415,
          "UNSUPPORTED_MEDIA_TYPE",
          `content-type must be application/json, not '${type || "(none)"}'`,
        );
      }
    })
    .onParse(async ({ request }) => {
      // Elysia's own parser is the fast path; it needs the media type in lower case, and a declared length.
      const declaredJson = request.headers.get("content-type")?.startsWith("application/json") ?? false;
      if ((declaredJson && request.headers.has("content-length")) || !request.body) return;
      const text = await readCapped(request, maxBodyBytes, () =>
        deps.logger.info({ route: new URL(request.url).pathname }, "request rejected: chunked body too large"),
      );
      try {
        return JSON.parse(text);
      } catch {
        throw new ParseError();
      }
    })
    .onAfterHandle({ as: "global" }, ({ request, response }) => {
      if (new URL(request.url).pathname === SPEC_PATH) {
        return cleanOpenApi(response, deps.tasks?.taskTypes, { webhooks: deps.tasks?.checkCallback !== undefined });
      }
    })
    .use(
      swagger({
        path: "/swagger",
        documentation: {
          info: {
            title: "AI-EventStream",
            version: APP_VERSION,
            description: `A Bun-native, high-throughput AI stream processor. The same tasks, metrics and updates are served as GraphQL at ${GRAPHQL_PATH} (not in this document: the GraphQL schema describes itself by introspection; GraphiQL at GET ${GRAPHQL_PATH}).`,
          },
          tags: [
            { name: "tasks", description: "Submit texts and read their results" },
            { name: "events", description: "Task updates pushed as they happen (Server-Sent Events)" },
            { name: "operations", description: "Health, metrics and workers" },
            { name: "cache", description: "The semantic cache's entries" },
            { name: "webhooks", description: "Signed webhooks of task results: the signing secret, deliveries" },
            {
              name: "fine-tuning",
              description: "Fine-tune a model on positively rated results and register it as an experiment variant",
            },
          ],
        },
      }),
    )
    .use(
      healthRoutes({
        probes: deps.probes,
        roles: deps.roles,
        startedAt: deps.startedAt ?? Date.now(),
        ...(access?.keyring.enabled ? { maySeeDetail: access.isAdmin } : {}),
      }),
    )
    .use(deps.tasks ? taskRoutes(deps.tasks) : new Elysia({ name: "tasks" }))
    .use(deps.taskList ? taskListRoutes(deps.taskList) : new Elysia({ name: "task-list" }))
    .use(deps.events ? eventRoutes(deps.events) : new Elysia({ name: "events" }))
    .use(
      deps.events
        ? wsRoutes({ ...deps.events, maxBufferBytes: deps.events.sse.maxBufferBytes })
        : new Elysia({ name: "ws" }),
    )
    .use(
      deps.streamTokens
        ? streamTokenRoutes({ tokens: deps.streamTokens, tenantOf: (request) => access?.keyring.tenantOf(request) })
        : new Elysia({ name: "stream-tokens" }),
    )
    .use(deps.stream ? streamRoutes(deps.stream) : new Elysia({ name: "stream" }))
    .use(deps.operations ? operationsRoutes(deps.operations) : new Elysia({ name: "operations" }))
    .use(metricsStream(deps))
    .use(deps.operations && deps.events ? dashboardRoutes() : new Elysia({ name: "dashboard" }))
    .use(deps.cache ? cacheRoutes({ actorOf, ...deps.cache }) : new Elysia({ name: "cache" }))
    .use(
      deps.admin
        ? adminRoutes({
            ...deps.admin,
            logger: deps.logger.child({ component: "admin" }),
            actorOf,
          })
        : new Elysia({ name: "admin-routes" }),
    )
    .use(
      deps.experiments
        ? experimentRoutes({ ...deps.experiments, logger: deps.logger.child({ component: "experiments" }), actorOf })
        : new Elysia({ name: "experiment-routes" }),
    )
    .use(deps.webhooks ? webhookRoutes(deps.webhooks) : new Elysia({ name: "webhooks" }))
    .use(
      deps.tasks && deps.cache
        ? feedbackRoutes({
            store: deps.tasks.store,
            cache: deps.cache.admin,
            bus: deps.tasks.bus,
            logger: deps.logger,
            ...(deps.tasks.tenantOf ? { tenantOf: deps.tasks.tenantOf } : {}),
            ...(deps.fineTunes ? { examples: deps.fineTunes.examples } : {}),
          })
        : new Elysia({ name: "feedback" }),
    )
    .use(
      deps.fineTunes
        ? fineTuneRoutes({ ...deps.fineTunes, logger: deps.logger.child({ component: "fine-tunes" }), actorOf })
        : new Elysia({ name: "fine-tunes" }),
    )
    .use(
      deps.tasks && deps.events && deps.operations && deps.graphql
        ? graphqlRoutes({
            redis: deps.tasks.redis,
            store: deps.tasks.store,
            hub: deps.events.hub,
            accept: createTaskAcceptor(deps.tasks),
            resultTtlSeconds: deps.graphql.resultTtlSeconds,
            queues: deps.operations.queues,
            ...(deps.operations.supervisor ? { supervisor: deps.operations.supervisor } : {}),
            tenantOf: deps.tasks.tenantOf ?? (() => undefined),
            // As the REST admin guard: without keys everyone may.
            isAdmin: access?.keyring.enabled ? access.isAdmin : () => true,
            logger: deps.logger,
            ...(deps.graphql.limits ? { limits: deps.graphql.limits } : {}),
          })
        : new Elysia({ name: "graphql" }),
    )
    .onStart(({ server }) => {
      listening.server = server;
    });
  routeTable.routes = app.routes;
  routeTable.exact = new Set(app.routes.filter((r) => !/[:*]/.test(r.path)).map((r) => `${r.method} ${r.path}`));
  return app;
}

/** GET /metrics/stream: needs the operations (what to read) and the events' SSE settings. */
function metricsStream(deps: AppDeps) {
  const { operations, events } = deps;
  if (!operations || !events) return new Elysia({ name: "metrics-stream" });
  const logger = deps.logger.child({ component: "metrics-stream" });
  const broadcast = createMetricsBroadcast({
    read: () => readOperationsMetrics(operations),
    onError: (error) => logger.warn({ error: String(error) }, "metrics snapshot for the stream failed"),
  });
  // The workers list rides on the same stream (event: workers): one listing per tick, whatever the number of clients.
  const workers = createBroadcast<WorkersTick>({
    read: async () => {
      const at = Date.now();
      const [workers, control] = await Promise.all([
        listWorkers({ redis: operations.redis, now: at }),
        deps.admin ? readControlView(deps.admin) : undefined,
      ]);
      return { at: new Date(at).toISOString(), workers, ...(control ? { control } : {}) };
    },
    onError: (error) => logger.warn({ error: String(error) }, "workers list for the stream failed"),
  });
  return metricsStreamRoutes({
    broadcast,
    workers,
    workerHeartbeatMs: WORKER_HEARTBEAT_MS,
    sse: events.sse,
    logger,
    ...(operations.prices ? { prices: operations.prices } : {}),
  });
}

const SPEC_PATH = "/swagger/json";

/**
 * The OpenAPI document as clients should read it. Elysia documents every
 * body as JSON, form data or text, and every integer as "an integer or a
 * numeric string" (it coerces query strings); the API takes JSON bodies and
 * numbers, so those alternatives are dropped. A property with a default is
 * not required (the default fills it in), task_type lists the task types
 * this deployment knows, and an event stream is documented as
 * text/event-stream. A deployment without webhooks (no WEBHOOK_SECRET)
 * takes no callback_url, so the body does not offer one. Fuzzers
 * (schemathesis) then test the contract the API actually has.
 */
export function cleanOpenApi(
  document: unknown,
  taskTypes?: ReadonlySet<string>,
  options: { webhooks?: boolean } = {},
): unknown {
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(visit);
    if (node === null || typeof node !== "object") return node;
    const entries = Object.entries(node as Record<string, unknown>);
    const out: Record<string, unknown> = {};
    for (const [key, value] of entries) out[key] = visit(value);
    const anyOf = out.anyOf as Record<string, unknown>[] | undefined;
    if (Array.isArray(anyOf)) {
      const real = anyOf.filter(
        (option) =>
          !(
            option.type === "string" &&
            typeof option.format === "string" &&
            /^(integer|numeric|number|boolean)$/.test(option.format)
          ),
      );
      if (real.length === 1 && real.length < anyOf.length) {
        delete out.anyOf;
        Object.assign(out, real[0]);
      }
    }
    const properties = out.properties as Record<string, Record<string, unknown>> | undefined;
    if (properties && Array.isArray(out.required)) {
      out.required = (out.required as string[]).filter((name) => properties[name]?.default === undefined);
    }
    if (taskTypes && properties?.task_type?.pattern !== undefined) {
      properties.task_type = { ...properties.task_type, enum: [...taskTypes].sort() };
    }
    if (options.webhooks === false && properties?.callback_url !== undefined) delete properties.callback_url;
    const content = out.content as Record<string, unknown> | undefined;
    if (content && typeof content === "object" && "application/json" in content) {
      // A response schema that names its own media types (SSE_RESPONSE: text/event-stream) is documented as
      // those, not as the JSON Elysia assumes for every body.
      const own = (content["application/json"] as { schema?: { content?: unknown } } | undefined)?.schema?.content;
      out.content = own && typeof own === "object" ? own : { "application/json": content["application/json"] };
    }
    return out;
  };
  return visit(document);
}

const patterns = new Map<string, RegExp>();

/** The methods of the routes whose path pattern (`/task/:id`) matches `path`; HEAD comes with GET. */
function allowedMethods(routes: readonly { method: string; path: string }[], path: string): string[] {
  const methods = new Set<string>();
  for (const route of routes) {
    let pattern = patterns.get(route.path);
    if (!pattern) {
      const source = route.path
        .split("/")
        .map((part) =>
          part.startsWith(":") ? "[^/]+" : part === "*" ? ".*" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
        )
        .join("/");
      pattern = new RegExp(`^${source}$`);
      patterns.set(route.path, pattern);
    }
    if (pattern.test(path)) methods.add(route.method);
  }
  if (methods.has("GET")) methods.add("HEAD");
  return [...methods].sort();
}
