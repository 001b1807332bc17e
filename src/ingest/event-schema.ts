/**
 * A Kafka event, parsed and validated with the same TypeBox schema as the
 * HTTP API's POST /process body (ProcessBody), compiled once per thread, and
 * turned into the task job a worker runs. The rules are the API's: the same
 * defaults, numbers as JSON numbers (a numeric string is refused, as over
 * HTTP), and a task type the workers have a prompt for; an event the API
 * would refuse goes to the DLQ with its reason instead of failing later,
 * unseen by its producer. Pure: no I/O, so every rule is unit tested.
 */
import { type Static, Type as T } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { ProcessBody, type TaskJob } from "../task/contract";
import { callbackUrlProblem, WEBHOOKS_DISABLED_REASON } from "../webhooks/callback-url";

/** Same alphabet as the task ids GET /task/:id accepts, so an event's task can be looked up. */
const EVENT_ID = "^[A-Za-z0-9._:-]{1,200}$";

export const KafkaEventSchema = T.Object({
  ...ProcessBody.properties,
  event_id: T.Optional(T.String({ pattern: EVENT_ID })),
  metadata: T.Optional(T.Record(T.String(), T.Unknown())),
  timestamp: T.Optional(T.Union([T.String(), T.Number()])),
});
export type KafkaEvent = Static<typeof KafkaEventSchema>;

const compiled = TypeCompiler.Compile(KafkaEventSchema);

/**
 * The schema's top-level defaults (task_type, use_cache, temperature,
 * max_tokens), read from it once. Applying them by hand costs a tenth of
 * Value.Default, which walks the schema for every event: on the hot path of
 * tens of thousands of events per second that was half the parse time.
 */
const DEFAULTS: [string, unknown][] = Object.entries(KafkaEventSchema.properties)
  .filter(([, schema]) => "default" in schema)
  .map(([name, schema]) => [name, (schema as { default: unknown }).default]);

export type RejectReason = "not_json" | "schema" | "unknown_task_type" | "webhooks_disabled" | "callback_url_refused";

/**
 * Whether events may carry a callback_url (WEBHOOK_SECRET is set) and the
 * address rules it must pass. Only the rules that need no DNS are checked
 * here, in the consumer's hot path; the deliverer resolves the host and
 * checks every address before each attempt.
 */
export interface EventWebhooks {
  enabled: boolean;
  allowPrivate: boolean;
}

export interface EventOrigin {
  topic: string;
  partition: number;
  offset: string;
  key: string | undefined;
}

export type ParsedEvent =
  | { ok: true; job: TaskJob }
  | { ok: false; reason: RejectReason; detail: string; event_id?: string };

/** The task id of an event: its event_id, else its position in the log, which a redelivery repeats. */
export function taskIdOf(eventId: string | undefined, origin: EventOrigin): string {
  return eventId ?? `kafka:${origin.topic}:${origin.partition}:${origin.offset}`;
}

/**
 * `taskTypes`: the task types a worker has a prompt for (POST /process refuses
 * others with 422); without it any well-formed task type passes. `tenant`:
 * who owns the tasks of events (KAFKA_TENANT), if anyone.
 */
export function parseEvent(
  value: Buffer | null,
  origin: EventOrigin,
  acceptedAt: number,
  taskTypes?: ReadonlySet<string>,
  webhooks: EventWebhooks = { enabled: false, allowPrivate: false },
  tenant?: string,
): ParsedEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(value?.toString("utf8") ?? "");
  } catch (error) {
    return { ok: false, reason: "not_json", detail: error instanceof Error ? error.message : String(error) };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, reason: "schema", detail: "the event is not a JSON object" };
  }
  // Defaults (task_type, use_cache, temperature, max_tokens) as the API applies them.
  const event = raw as Record<string, unknown>;
  for (const [name, value] of DEFAULTS) if (event[name] === undefined) event[name] = value;
  if (!compiled.Check(event)) {
    const first = compiled.Errors(event).First();
    const eventId = (raw as { event_id?: unknown }).event_id;
    return {
      ok: false,
      reason: "schema",
      detail: first ? `${first.path || "/"}: ${first.message}` : "does not match the event schema",
      ...(typeof eventId === "string" ? { event_id: eventId } : {}),
    };
  }
  if (taskTypes && !taskTypes.has(event.task_type)) {
    return {
      ok: false,
      reason: "unknown_task_type",
      detail: `/task_type: unknown task type '${event.task_type}'; known: ${[...taskTypes].sort().join(", ")}`,
      ...(event.event_id === undefined ? {} : { event_id: event.event_id }),
    };
  }
  let callbackUrl: string | undefined;
  if (event.callback_url !== undefined) {
    const eventId = event.event_id === undefined ? {} : { event_id: event.event_id };
    if (!webhooks.enabled) {
      return {
        ok: false,
        reason: "webhooks_disabled",
        detail: `/callback_url: ${WEBHOOKS_DISABLED_REASON}`,
        ...eventId,
      };
    }
    const checked = callbackUrlProblem(event.callback_url, webhooks);
    if (!checked.ok) {
      return { ok: false, reason: "callback_url_refused", detail: `/callback_url: ${checked.reason}`, ...eventId };
    }
    callbackUrl = checked.url.href;
  }
  return {
    ok: true,
    job: {
      task_id: taskIdOf(event.event_id, origin),
      text: event.text,
      task_type: event.task_type,
      use_cache: event.use_cache,
      ...(event.model === undefined ? {} : { model: event.model }),
      temperature: event.temperature,
      max_tokens: event.max_tokens,
      ...(callbackUrl === undefined ? {} : { callback_url: callbackUrl }),
      ...(event.stream ? { stream: true } : {}),
      ...(tenant ? { tenant } : {}),
      ...(event.user_id === undefined ? {} : { user_id: event.user_id }),
      source: "kafka",
      accepted_at: acceptedAt,
      event: {
        topic: origin.topic,
        partition: origin.partition,
        offset: origin.offset,
        ...(origin.key === undefined ? {} : { key: origin.key }),
        ...(event.event_id === undefined ? {} : { event_id: event.event_id }),
      },
    },
  };
}
