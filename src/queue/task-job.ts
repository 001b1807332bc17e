/** What a queued task carries: everything a worker needs, so it never reads the request again. */
import { type Static, Type as T } from "@sinclair/typebox";

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
  /** The API key's name when auth is on; scopes the task and its cache entries. */
  tenant: T.Optional(T.String()),
  source: T.Union([T.Literal("api"), T.Literal("kafka"), T.Literal("maintenance")]),
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

/** Sortable task ids: UUIDv7 starts with the time, so ids sort in acceptance order. */
export function newTaskId(): string {
  return Bun.randomUUIDv7();
}
