/**
 * The task contract, in one neutral place: what a client sends (`POST
 * /process`, and a Kafka event's body), what a queued job carries, what a
 * task's status and result look like. TypeBox only, so the HTTP layer, the
 * Kafka consumer threads, the workers and the stores all import it without
 * loading each other (a consumer thread used to load Elysia, Bee-Queue and
 * the idempotency code to get the request body's schema).
 */
import { type Static, Type as T } from "@sinclair/typebox";

/** The longest callback_url accepted. */
export const CALLBACK_URL_MAX_LENGTH = 2048;

/** Task types are lowercase words joined by `_`: they name a prompt and scope cache entries. */
export const TASK_TYPE_PATTERN = /^[a-z_]+$/;

/** The request body of POST /process; a Kafka event's fields are checked against the same schema. */
export const ProcessBody = T.Object({
  text: T.String({ minLength: 1, maxLength: 10_000, description: "the text to process" }),
  task_type: T.String({
    pattern: TASK_TYPE_PATTERN.source,
    maxLength: 64,
    default: "general_analysis",
    description:
      "what to do with the text: sentiment_analysis, summarization, classification, question_answering, general_analysis, or a type of the prompts file",
  }),
  use_cache: T.Boolean({ default: true, description: "false: neither look the answer up in the cache nor store it" }),
  refresh_cache: T.Boolean({
    default: false,
    description: "true: skip the cache lookup, ask the LLM, and replace the cached answer",
  }),
  model: T.Optional(T.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9._:/-]+$" })),
  // Numbers are JSON numbers, over HTTP and in Kafka events alike: "50" is refused, never converted.
  temperature: T.Number({ minimum: 0, maximum: 2, default: 0.7, description: "a JSON number 0..2" }),
  max_tokens: T.Integer({ minimum: 1, maximum: 4000, default: 1000, description: "a JSON integer 1..4000" }),
  callback_url: T.Optional(
    T.String({
      minLength: 1,
      maxLength: CALLBACK_URL_MAX_LENGTH,
      description:
        "an http(s) URL that receives the task's final result as a signed POST (Standard Webhooks); it must resolve to public addresses",
    }),
  ),
  stream: T.Boolean({
    default: false,
    description: "true: the answer is relayed token by token as the model writes it, on GET /task/{id}/stream",
  }),
  user_id: T.Optional(
    T.String({
      minLength: 1,
      maxLength: 128,
      description:
        "the end user the text comes from: a prompt experiment gives all of one user's tasks the same variant (without it, each task is drawn on its own)",
    }),
  ),
});
export type ProcessRequest = Static<typeof ProcessBody>;

/** What a queued task carries: everything a worker needs, so it never reads the request again. */
export const TaskJobSchema = T.Object({
  task_id: T.String(),
  text: T.String(),
  task_type: T.String(),
  use_cache: T.Boolean(),
  /** Skip the lookup, ask the LLM, replace the cached answer. */
  refresh_cache: T.Optional(T.Boolean()),
  model: T.Optional(T.String()),
  temperature: T.Number(),
  max_tokens: T.Integer(),
  /** Relay the answer's tokens as they come (store/task-tokens.ts); absent: false. */
  stream: T.Optional(T.Boolean()),
  /** The API key's name when auth is on; scopes the task and its cache entries. */
  tenant: T.Optional(T.String()),
  /** The end user, for a sticky experiment variant (store/experiments.ts). */
  user_id: T.Optional(T.String()),
  source: T.Union([T.Literal("api"), T.Literal("kafka"), T.Literal("maintenance")]),
  /** Where the task's final result is POSTed as a signed webhook (issue 15 §4); checked when accepted. */
  callback_url: T.Optional(T.String()),
  /** Epoch ms when the task was accepted: the start of the latency a client sees. */
  accepted_at: T.Number(),
  /** Kafka origin of an event, for results to Kafka and tracing. */
  event: T.Optional(
    T.Object({
      topic: T.String(),
      partition: T.Integer(),
      offset: T.String(),
      key: T.Optional(T.String()),
      event_id: T.Optional(T.String()),
    }),
  ),
});
export type TaskJob = Static<typeof TaskJobSchema>;
export type TaskSource = TaskJob["source"];

/** The task ids the API accepts in a path: its own (UUIDv7), and Kafka events' ids and positions. */
export const TASK_ID_PATTERN = "^[A-Za-z0-9._:-]{1,200}$";

/** Sortable task ids: UUIDv7 starts with the time, so ids sort in acceptance order. */
export function newTaskId(): string {
  return Bun.randomUUIDv7();
}

/** The status names of the Python design this product replaces. */
export const TASK_STATUSES = ["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const TERMINAL: ReadonlySet<TaskStatus> = new Set(["SUCCESS", "FAILURE"]);

export const TaskResultSchema = T.Object({
  response: T.String(),
  task_type: T.String(),
  model: T.String(),
  processing_time: T.Number({ description: "seconds the worker spent on the task" }),
  from_cache: T.Boolean(),
  similarity: T.Optional(T.Number({ description: "cosine similarity of a semantic cache hit" })),
  cache_tier: T.Optional(
    T.Union([T.Literal("exact"), T.Literal("semantic"), T.Literal("single_flight")], {
      description: "how a cached answer was found; single_flight: a concurrent identical request's LLM call",
    }),
  ),
  cache_id: T.Optional(
    T.String({ description: "the cache entry served or stored ({hash}:{task_type}), for DELETE /cache/{id}" }),
  ),
  metadata: T.Object({
    tokens_used: T.Number(),
    prompt_tokens: T.Number(),
    completion_tokens: T.Number(),
    // Issue 17: who answered and what it cost. Optional, so results of before still read.
    provider: T.Optional(T.String({ description: "the provider that answered: openai, anthropic, cohere, simulated" })),
    fallback: T.Optional(
      T.Boolean({ description: "true: the route's first model failed and a model of its fallback chain answered" }),
    ),
    cost_usd: T.Optional(
      T.Number({ description: "what this task's LLM call cost at the price table, USD; 0 for a cache hit" }),
    ),
    cached_prompt_tokens: T.Optional(
      T.Number({ description: "of prompt_tokens, those the provider read from its prompt cache" }),
    ),
    prompt_version: T.Optional(
      T.Integer({
        minimum: 0,
        description: "the task type's prompt version the answer was made with (0: the deployment's own prompt)",
      }),
    ),
    experiment: T.Optional(
      T.Object(
        { id: T.String(), variant: T.String() },
        { description: "the prompt experiment, and its variant, this task was assigned to" },
      ),
    ),
  }),
});
export type TaskResult = Static<typeof TaskResultSchema>;

export const TaskErrorSchema = T.Object({ code: T.String(), message: T.String(), retriable: T.Boolean() });
export type TaskError = Static<typeof TaskErrorSchema>;

/** GET /task/:id: what a client sees of a task. */
export const TaskSchema = T.Object({
  task_id: T.String(),
  status: T.Union(
    [T.Literal("PENDING"), T.Literal("STARTED"), T.Literal("RETRY"), T.Literal("SUCCESS"), T.Literal("FAILURE")],
    { description: `one of ${TASK_STATUSES.join(", ")}` },
  ),
  result: T.Optional(TaskResultSchema),
  error: T.Optional(TaskErrorSchema),
});

export type TaskView = Static<typeof TaskSchema>;

/** What GET /task/:id shows of a task, and what a webhook carries as its `data`: one shape for both. */
export function taskView(task: {
  task_id: string;
  status: TaskStatus;
  result?: TaskResult | undefined;
  error?: TaskError | undefined;
}): TaskView {
  return {
    task_id: task.task_id,
    status: task.status,
    ...(task.result ? { result: task.result } : {}),
    ...(task.error ? { error: task.error } : {}),
  };
}

/** POST /process's 202. */
export const AcceptedSchema = T.Object({
  task_id: T.String(),
  status: T.Literal("PENDING"),
  message: T.String(),
});
