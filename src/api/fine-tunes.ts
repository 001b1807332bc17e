/**
 * /fine-tunes: the feedback → fine-tuning loop's endpoints (issue 17 §6).
 * POST /fine-tunes builds a training file from a task type's positively
 * rated results, uploads it with a validation split, starts a fine-tuning job
 * and answers 202 with the fine-tune's record; GET /fine-tunes/:id follows
 * it (finetune/fine-tuner.ts does the work). Operators only, like /admin/*:
 * the admin guard (auth.ts) lets only API_ADMINS keys reach these routes, or
 * only this host without keys; every start and cancel writes an audit line.
 */
import { Elysia, t } from "elysia";
import { AppError } from "../errors";
import type { FineTuneRecord } from "../finetune/fine-tune-records";
import { FINE_TUNE_STATUSES } from "../finetune/fine-tune-records";
import type { FineTuner } from "../finetune/fine-tuner";
import { SKIP_REASONS } from "../finetune/training-file";
import type { Logger } from "../log";
import { errorResponses } from "./error-responses";
import { strictJsonBody } from "./strict-body";

export interface FineTuneRoutesDeps {
  tuner: Pick<FineTuner, "start" | "get" | "list" | "cancel">;
  /** The task types this deployment knows (its prompts). */
  taskTypes: ReadonlySet<string>;
  logger: Logger;
  /** Who made a request, for the audit line (app.ts). */
  actorOf: (request: Request) => string;
}

const TAGS = ["fine-tuning"];
const ADMIN_ERRORS = [401, 403, 429, 503] as const;
/** Defaults of POST /fine-tunes, which the scheduled mode takes too. */
export const FINE_TUNE_DEFAULTS = { validationFraction: 0.1, minExamples: 10, weight: 0.1 } as const;

const isoTime = (description: string) => t.String({ format: "date-time", description });

export const FineTuneSchema = t.Object({
  id: t.String(),
  status: t.UnionEnum(FINE_TUNE_STATUSES, {
    description:
      "preparing (files being uploaded, job being created), the provider's validating_files, queued, running, then registering (the model becomes a variant), succeeded, failed or cancelled",
  }),
  task_type: t.String(),
  tenant: t.Optional(t.String({ description: "whose examples; absent: tasks without a tenant" })),
  base_model: t.String({ description: "provider/model that was fine-tuned" }),
  suffix: t.Optional(t.String()),
  validation_fraction: t.Number(),
  min_examples: t.Integer(),
  weight: t.Number({ description: "the weight of the variant the model is registered as" }),
  experiment_id: t.Optional(t.String()),
  origin: t.Union([t.Literal("api"), t.Literal("auto")], {
    description: "api: POST /fine-tunes; auto: FINETUNE_AUTO_INTERVAL_MS",
  }),
  created_by: t.String({ description: "the API key name (or client address) that started it; scheduler for auto" }),
  created_at: isoTime("when it was started"),
  updated_at: isoTime("its record's last change"),
  finished_at: t.Optional(isoTime("when it ended")),
  counts: t.Object({
    examples: t.Integer({ description: "usable examples: training + validation" }),
    training: t.Integer(),
    validation: t.Integer(),
    skipped: t.Integer({ description: "positively rated tasks left out, all reasons" }),
    skipped_by_reason: t.Object(
      Object.fromEntries(SKIP_REASONS.map((reason) => [reason, t.Integer()])) as Record<
        (typeof SKIP_REASONS)[number],
        ReturnType<typeof t.Integer>
      >,
      {
        description:
          "gone: the example expired (FINETUNE_EXAMPLE_TTL_DAYS); no_text: its task kept no text (RESULT_KEEP_INPUT=false); not_positive; empty: an empty answer; duplicate: the same prompt, text and answer again",
      },
    ),
  }),
  last_example_at: t.Optional(isoTime("the newest example's feedback")),
  files: t.Optional(
    t.Object({ training: t.Optional(t.String()), validation: t.Optional(t.String()) }, { description: "file ids" }),
  ),
  provider_job_id: t.Optional(t.String()),
  provider_status: t.Optional(t.String({ description: "the provider's job status as last read" })),
  fine_tuned_model: t.Optional(t.String({ description: "the provider's name of the new model" })),
  trained_tokens: t.Optional(t.Integer()),
  variant: t.Optional(
    t.Object(
      { experiment_id: t.String(), variant: t.String() },
      { description: "the experiment variant the fine-tuned model was registered as" },
    ),
  ),
  error: t.Optional(
    t.Object({ code: t.String(), message: t.String() }, { description: "why it failed, the provider's words" }),
  ),
  note: t.Optional(t.String({ description: "a problem on the way that did not end it" })),
});

export type FineTuneView = typeof FineTuneSchema.static;

/** The record as clients read it: times as ISO strings, the provider's internal names left out. */
export function fineTuneView(record: FineTuneRecord): FineTuneView {
  const { provider: _, provider_model: __, created_at, updated_at, finished_at, last_example_at, ...rest } = record;
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    ...rest,
    created_at: iso(created_at),
    updated_at: iso(updated_at),
    ...(finished_at === undefined ? {} : { finished_at: iso(finished_at) }),
    ...(last_example_at === undefined ? {} : { last_example_at: iso(last_example_at) }),
  };
}

const IdParams = t.Object({ id: t.String({ pattern: "^ft-[0-9a-f-]{36}$", description: "a fine-tune's id" }) });

export function fineTuneRoutes(deps: FineTuneRoutesDeps) {
  const { tuner, logger, actorOf } = deps;
  const audit = (request: Request, action: string, fields: Record<string, unknown>) =>
    logger.info({ audit: true, action, actor: actorOf(request), ...fields }, "operator action");
  const outcomeOf = (error: unknown) => (error instanceof AppError ? error.code : "error");
  const notFound = (id: string) => new AppError("FINETUNE_NOT_FOUND", `no fine-tune with id '${id}'`, { status: 404 });
  return new Elysia({ name: "fine-tunes" })
    .post(
      "/fine-tunes",
      async ({ body, request, set }) => {
        if (!deps.taskTypes.has(body.task_type)) {
          throw new AppError("UNKNOWN_TASK_TYPE", `task_type: unknown task type '${body.task_type}'`, {
            status: 422,
            details: { field: "task_type", known: [...deps.taskTypes].sort() },
          });
        }
        const target = { task_type: body.task_type, tenant: body.tenant };
        let record: FineTuneRecord;
        try {
          record = await tuner.start({
            taskType: body.task_type,
            ...(body.tenant === undefined ? {} : { tenant: body.tenant }),
            ...(body.base_model === undefined ? {} : { baseModel: body.base_model }),
            validationFraction: body.validation_fraction,
            minExamples: body.min_examples,
            weight: body.weight,
            ...(body.experiment_id === undefined ? {} : { experimentId: body.experiment_id }),
            ...(body.suffix === undefined ? {} : { suffix: body.suffix }),
            origin: "api",
            createdBy: actorOf(request),
          });
        } catch (error) {
          audit(request, "fine_tune.start", { ...target, outcome: outcomeOf(error) });
          throw error;
        }
        audit(request, "fine_tune.start", { ...target, outcome: "started", fine_tune_id: record.id, ...record.counts });
        set.status = 202;
        return fineTuneView(record);
      },
      {
        parse: strictJsonBody([
          "task_type",
          "tenant",
          "base_model",
          "validation_fraction",
          "min_examples",
          "experiment_id",
          "weight",
          "suffix",
        ]),
        body: t.Object(
          {
            task_type: t.String({ pattern: "^[a-z_]+$", maxLength: 64, description: "whose results train the model" }),
            tenant: t.Optional(
              t.String({
                pattern: "^[a-zA-Z0-9_.-]{1,128}$",
                description: "train on this tenant's (API key name's) tasks; absent: tasks without a tenant",
              }),
            ),
            base_model: t.Optional(
              t.String({
                pattern: "^[A-Za-z0-9._:/-]{1,128}$",
                description:
                  "the model to fine-tune, of an OpenAI-compatible provider (openai/gpt-4o-mini); absent: the task type's routed model",
              }),
            ),
            validation_fraction: t.Number({
              minimum: 0,
              maximum: 0.5,
              default: FINE_TUNE_DEFAULTS.validationFraction,
              description: "share of the examples held out for validation (never below 10 training examples)",
            }),
            min_examples: t.Integer({
              minimum: 10,
              maximum: 10_000_000,
              default: FINE_TUNE_DEFAULTS.minExamples,
              description: "fewer usable examples: 409, nothing is uploaded",
            }),
            experiment_id: t.Optional(
              t.String({ minLength: 1, maxLength: 128, description: "register the model in this experiment" }),
            ),
            weight: t.Number({
              // Above 0 (a variant of weight 0 would never answer); OpenAPI 3.0 has no numeric exclusiveMinimum.
              minimum: 0.001,
              maximum: 1,
              default: FINE_TUNE_DEFAULTS.weight,
              description: "the traffic share of the variant the fine-tuned model becomes",
            }),
            suffix: t.Optional(
              // OpenAI takes 64; 40 keeps `openai/ft:<base>:<org>:<suffix>:<id>` within a request's 128-character model.
              t.String({ pattern: "^[A-Za-z0-9_-]{1,40}$", description: "added to the fine-tuned model's name" }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 202: FineTuneSchema, ...errorResponses(400, 409, 413, 415, 422, ...ADMIN_ERRORS) },
        detail: {
          summary: "Fine-tune a model on a task type's positively rated results, and make it an experiment's variant",
          description:
            "Builds a training file in OpenAI's chat JSONL format (the system prompt, the task's text, the answer) from the tasks whose feedback was positive (rating ≥ 4, or correct: true with no rating below 4) and never one with negative feedback, holds out a validation split, uploads both and starts a fine-tuning job. 202 with the fine-tune's record; GET /fine-tunes/{id} follows it until the fine-tuned model is registered as a new variant at `weight`. 409 FINETUNE_TOO_FEW_EXAMPLES under min_examples, 409 FINETUNE_IN_PROGRESS while one of the same task type (and tenant) runs, 409 FINETUNE_UNAVAILABLE when no OpenAI-compatible provider has a key here (or the task type is routed to a model of a provider without fine-tuning, and no base_model is named), 422 FINETUNE_PROVIDER_UNSUPPORTED for a base_model whose provider has no fine-tuning API (Anthropic, Cohere, simulated).",
          tags: TAGS,
        },
      },
    )
    .get(
      "/fine-tunes",
      async ({ query }) => ({ fine_tunes: (await tuner.list(query.limit ?? 50)).map(fineTuneView) }),
      {
        query: t.Object({
          limit: t.Optional(
            t.Integer({ minimum: 1, maximum: 200, default: 50, description: "fine-tunes, newest first" }),
          ),
        }),
        response: { 200: t.Object({ fine_tunes: t.Array(FineTuneSchema) }), ...errorResponses(422, ...ADMIN_ERRORS) },
        detail: { summary: "The fine-tunes, newest first", tags: TAGS },
      },
    )
    .get(
      "/fine-tunes/:id",
      async ({ params }) => {
        const record = await tuner.get(params.id);
        if (!record) throw notFound(params.id);
        return fineTuneView(record);
      },
      {
        params: IdParams,
        response: { 200: FineTuneSchema, ...errorResponses(404, 422, ...ADMIN_ERRORS) },
        detail: {
          summary: "A fine-tune: status, counts, files, the provider's job, the fine-tuned model and its variant",
          tags: TAGS,
        },
      },
    )
    .post(
      "/fine-tunes/:id/cancel",
      async ({ params, request, set }) => {
        const record = await tuner.cancel(params.id).catch((error: unknown) => {
          audit(request, "fine_tune.cancel", { fine_tune_id: params.id, outcome: outcomeOf(error) });
          throw error;
        });
        audit(request, "fine_tune.cancel", { fine_tune_id: params.id, outcome: record ? "requested" : "not_found" });
        if (!record) throw notFound(params.id);
        set.status = 202;
        return fineTuneView(record);
      },
      {
        params: IdParams,
        response: { 202: FineTuneSchema, ...errorResponses(404, 409, 422, 502, ...ADMIN_ERRORS) },
        detail: {
          summary: "Cancel a fine-tune's job at the provider; its record says cancelled once the provider does",
          tags: TAGS,
        },
      },
    );
}
