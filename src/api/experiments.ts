/**
 * Prompt versions and A/B experiments (issue 17 §5):
 *
 *   POST /prompts/:task_type            a new version of a task type's system prompt (they never change)
 *   GET  /prompts/:task_type            its versions: 0 is the deployment's own, and which one is the default
 *   POST /experiments                   split a task type's traffic over variants (prompt version and/or model)
 *   GET  /experiments                   all of them, newest first
 *   GET  /experiments/:id               the experiment with its report: figures, intervals, tests, the leader
 *   POST /experiments/:id/pause|resume  paused, its task type runs its default again
 *   POST /experiments/:id/end           the winner (given, or the report's leader) becomes the default
 *   POST /experiments/:id/variants      a variant added at run time (a fine-tuned model, at a small weight)
 *
 * They change how every tenant's tasks run, so they are the operator's: with
 * API keys only admin keys reach them (auth.ts); without, only this host
 * unless CONSOLE_ALLOW_REMOTE. Every change writes an audit line as the
 * /admin/ actions do. Workers pick a change up within about a second.
 */
import { Elysia, t } from "elysia";
import type Redis from "ioredis";
import { AppError } from "../errors";
import type { Logger } from "../log";
import { readExperimentStats } from "../metrics/experiment-metrics";
import {
  type Experiment,
  type ExperimentStore,
  notFound,
  PRIMARY_METRICS,
  type TaskDefault,
  type Variant,
} from "../store/experiments";
import { TASK_TYPE_PATTERN } from "../task/contract";
import { errorResponses } from "./error-responses";
import { buildReport, ReportSchema } from "./experiment-report";
import { strictJsonBody } from "./strict-body";

export interface ExperimentRoutesDeps {
  redis: Redis;
  store: ExperimentStore;
  /** The deployment's own prompt of each task type (version 0); its keys are the known task types. */
  basePrompts: Readonly<Record<string, string>>;
  /** Throws a 422 AppError for a model no configured provider can answer. */
  checkModel: (model: string) => void;
  metricsPrefix: string;
  logger: Logger;
  actorOf: (request: Request) => string;
}

const ERRORS = [401, 403, 429, 503] as const;
const TAGS = ["experiments"];
const NAME = "^[a-z0-9][a-z0-9_-]{0,31}$";

const VariantInput = t.Object(
  {
    name: t.String({ pattern: NAME, description: "unique in the experiment: lowercase letters, digits, _ and -" }),
    weight: t.Number({ minimum: 0.001, maximum: 1000, description: "relative share of the traffic" }),
    prompt_version: t.Optional(
      t.Integer({ minimum: 0, description: "absent: the task type's default prompt version when created" }),
    ),
    model: t.Optional(
      t.String({
        minLength: 1,
        maxLength: 128,
        pattern: "^[A-Za-z0-9._:/-]+$",
        description: "absent: the task type's route",
      }),
    ),
  },
  { additionalProperties: false },
);

const VariantSchema = t.Object({
  name: t.String(),
  weight: t.Number(),
  prompt_version: t.Integer(),
  model: t.Optional(t.String()),
  added_at: t.String({ format: "date-time" }),
  source: t.Optional(t.String()),
});

const ExperimentSchema = t.Object({
  id: t.String(),
  task_type: t.String(),
  status: t.Union([t.Literal("running"), t.Literal("paused"), t.Literal("ended")]),
  variants: t.Array(VariantSchema),
  significance_level: t.Number(),
  primary_metric: t.String(),
  description: t.Optional(t.String()),
  created_at: t.String({ format: "date-time" }),
  created_by: t.String(),
  updated_at: t.String({ format: "date-time" }),
  ended_at: t.Optional(t.String({ format: "date-time" })),
  winner: t.Optional(t.Union([t.String(), t.Null()])),
  outcome: t.Optional(t.String()),
});

const ExperimentReportSchema = t.Object({ ...ExperimentSchema.properties, report: ReportSchema });

const PromptSchema = t.Object({
  task_type: t.String(),
  version: t.Integer({ minimum: 0 }),
  prompt: t.String(),
  created_at: t.Optional(t.String({ format: "date-time" })),
  created_by: t.Optional(t.String()),
  note: t.Optional(t.String()),
});

const iso = (ms: number) => new Date(ms).toISOString();

function viewOf(e: Experiment): typeof ExperimentSchema.static {
  const { ended_at: endedAt, ...rest } = e;
  return {
    ...rest,
    variants: e.variants.map((v) => ({ ...v, added_at: iso(v.added_at) })),
    created_at: iso(e.created_at),
    updated_at: iso(e.updated_at),
    ...(endedAt === undefined ? {} : { ended_at: iso(endedAt) }),
  };
}

const IdParams = t.Object({ id: t.String({ pattern: NAME }) });

export function experimentRoutes(deps: ExperimentRoutesDeps) {
  const { redis, store, basePrompts, checkModel, logger, actorOf } = deps;
  // The task types this deployment knows, in the schema itself: OpenAPI lists them, validation refuses others.
  const taskTypes = Object.keys(basePrompts).sort();
  const [first, ...rest] = taskTypes;
  const TaskType =
    first === undefined
      ? t.String({ pattern: TASK_TYPE_PATTERN.source, maxLength: 64 })
      : t.UnionEnum([first, ...rest], {
          description: "a task type of this deployment (the built-in ones and PROMPTS_FILE's)",
        });
  // A path names a resource: an unknown task type there is a 404 (knownTaskType), not a malformed request.
  const TaskTypeParams = t.Object({ task_type: t.String({ pattern: TASK_TYPE_PATTERN.source, maxLength: 64 }) });
  const audit = (request: Request, action: string, fields: Record<string, unknown>) =>
    logger.info({ audit: true, action, actor: actorOf(request), ...fields }, "operator action");

  const knownTaskType = (taskType: string) => {
    if (basePrompts[taskType] === undefined)
      throw new AppError("UNKNOWN_TASK_TYPE", `no task type '${taskType}' here`, {
        status: 404,
        details: { known: Object.keys(basePrompts).sort() },
      });
  };
  const defaultVersion = async (taskType: string) => (await store.defaults()).get(taskType)?.prompt_version ?? 0;

  /** A variant as stored: its prompt version checked (or the default's), its model checked. */
  const variantOf = async (
    taskType: string,
    input: typeof VariantInput.static,
    fallbackVersion: number,
    now: number,
  ): Promise<Variant> => {
    const version = input.prompt_version ?? fallbackVersion;
    if (version !== 0 && !(await store.prompt(taskType, version)))
      throw new AppError(
        "PROMPT_VERSION_NOT_FOUND",
        `variant '${input.name}': task type '${taskType}' has no prompt version ${version}`,
        { status: 422, details: { field: "prompt_version" } },
      );
    if (input.model) checkModel(input.model);
    return {
      name: input.name,
      weight: input.weight,
      prompt_version: version,
      ...(input.model ? { model: input.model } : {}),
      added_at: now,
    };
  };

  const report = async (e: Experiment) =>
    buildReport(
      e,
      await readExperimentStats(
        redis,
        deps.metricsPrefix,
        e.id,
        e.variants.map((v) => v.name),
      ),
    );

  /** Pause and resume: the same change of status, audited. */
  const statusRoute = (status: "running" | "paused") => ({
    handler: async ({ params, request }: { params: { id: string }; request: Request }) => {
      const experiment = await store.update(params.id, (e) => {
        if (e.status === "ended")
          throw new AppError("EXPERIMENT_ENDED", `experiment '${params.id}' has ended; start a new one`, {
            status: 409,
          });
        return { ...e, status };
      });
      audit(request, status === "paused" ? "experiment.pause" : "experiment.resume", { experiment_id: params.id });
      return viewOf(experiment);
    },
    hook: {
      params: IdParams,
      response: { 200: ExperimentSchema, ...errorResponses(404, 409, 422, ...ERRORS) },
      detail: {
        summary:
          status === "paused"
            ? "Pause an experiment: its task type runs its default until it resumes"
            : "Resume a paused experiment",
        tags: TAGS,
      },
    },
  });

  return new Elysia({ name: "experiments" })
    .post(
      "/prompts/:task_type",
      async ({ params, body, request, set }) => {
        knownTaskType(params.task_type);
        const version = await store.addPrompt(params.task_type, body.prompt, actorOf(request), body.note);
        audit(request, "prompt.add", { task_type: params.task_type, version: version.version });
        set.status = 201;
        return { ...version, created_at: iso(version.created_at) };
      },
      {
        params: TaskTypeParams,
        parse: strictJsonBody(["prompt", "note"]),
        body: t.Object(
          {
            prompt: t.String({ minLength: 1, maxLength: 20_000, description: "the system prompt's text" }),
            note: t.Optional(t.String({ maxLength: 500, description: "what changed, for the operators" })),
          },
          { additionalProperties: false },
        ),
        response: { 201: PromptSchema, ...errorResponses(400, 404, 413, 415, 422, ...ERRORS) },
        detail: {
          summary: "Add a version of a task type's system prompt (versions never change; 0 is the deployment's own)",
          tags: TAGS,
        },
      },
    )
    .get(
      "/prompts/:task_type",
      async ({ params }) => {
        knownTaskType(params.task_type);
        const versions = await store.prompts(params.task_type);
        return {
          task_type: params.task_type,
          default_version: await defaultVersion(params.task_type),
          versions: [
            { task_type: params.task_type, version: 0, prompt: basePrompts[params.task_type] as string },
            ...versions.map((v) => ({ ...v, created_at: iso(v.created_at) })),
          ],
        };
      },
      {
        params: TaskTypeParams,
        response: {
          200: t.Object({
            task_type: t.String(),
            default_version: t.Integer({
              minimum: 0,
              description: "what tasks outside an experiment get: set by the last experiment that ended with a winner",
            }),
            versions: t.Array(PromptSchema),
          }),
          ...errorResponses(404, 422, ...ERRORS),
        },
        detail: { summary: "A task type's prompt versions, and which one is its default", tags: TAGS },
      },
    )
    .post(
      "/experiments",
      async ({ body, request, set }) => {
        knownTaskType(body.task_type);
        const names = body.variants.map((v) => v.name);
        if (new Set(names).size !== names.length)
          throw new AppError("VARIANT_NAMES_NOT_UNIQUE", "variants: each needs a name of its own", {
            status: 422,
            details: { field: "variants" },
          });
        const now = Date.now();
        const fallbackVersion = await defaultVersion(body.task_type);
        const variants: Variant[] = [];
        for (const v of body.variants) variants.push(await variantOf(body.task_type, v, fallbackVersion, now));
        const by = actorOf(request);
        const experiment = await store.create({
          id: body.id ?? `${body.task_type.replaceAll("_", "-").slice(0, 20)}-${now.toString(36)}`,
          task_type: body.task_type,
          status: "running",
          variants,
          significance_level: body.significance_level ?? 0.05,
          primary_metric: body.primary_metric ?? "rating",
          ...(body.description ? { description: body.description } : {}),
          created_at: now,
          created_by: by,
          updated_at: now,
        });
        audit(request, "experiment.create", {
          experiment_id: experiment.id,
          task_type: experiment.task_type,
          variants: experiment.variants.map((v) => `${v.name}:${v.weight}`),
        });
        set.status = 201;
        return viewOf(experiment);
      },
      {
        parse: strictJsonBody(["id", "task_type", "variants", "significance_level", "primary_metric", "description"]),
        body: t.Object(
          {
            id: t.Optional(t.String({ pattern: NAME, description: "absent: made from the task type and the time" })),
            task_type: TaskType,
            variants: t.Array(VariantInput, {
              minItems: 2,
              maxItems: 10,
              description: "the first is the control every other is compared with",
            }),
            significance_level: t.Optional(
              t.Number({ minimum: 0.0001, maximum: 0.2, description: "default 0.05: intervals at 95 %" }),
            ),
            primary_metric: t.Optional(
              t.UnionEnum(PRIMARY_METRICS, {
                description: "what decides the winner; default rating (the feedback's mean rating)",
              }),
            ),
            description: t.Optional(t.String({ maxLength: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: ExperimentSchema, ...errorResponses(400, 409, 413, 415, 422, ...ERRORS) },
        detail: {
          summary:
            "Start an experiment: a task type's traffic split over variants by weight, sticky per user_id (else per task)",
          tags: TAGS,
        },
      },
    )
    .get("/experiments", async () => ({ experiments: (await store.list()).map(viewOf) }), {
      response: { 200: t.Object({ experiments: t.Array(ExperimentSchema) }), ...errorResponses(...ERRORS) },
      detail: { summary: "Every experiment, newest first", tags: TAGS },
    })
    .get(
      "/experiments/:id",
      async ({ params }) => {
        const experiment = await store.get(params.id);
        if (!experiment) throw notFound(params.id);
        const answer: typeof ExperimentReportSchema.static = {
          ...viewOf(experiment),
          report: await report(experiment),
        };
        // Checked against the schema on the line above; Elysia's own inference gives up on a type this deep.
        return answer as never;
      },
      {
        params: IdParams,
        response: {
          200: ExperimentReportSchema,
          ...errorResponses(404, 422, ...ERRORS),
        },
        detail: {
          summary:
            "An experiment's report: per variant tasks, failures, latency P50/P95/P99, tokens, cost, cache hit rate and feedback, with confidence intervals and tests against the control",
          tags: TAGS,
        },
      },
    )
    .post("/experiments/:id/pause", statusRoute("paused").handler, statusRoute("paused").hook)
    .post("/experiments/:id/resume", statusRoute("running").handler, statusRoute("running").hook)
    .post(
      "/experiments/:id/end",
      async ({ params, body, request }) => {
        const before = await store.get(params.id);
        if (!before) throw notFound(params.id);
        if (before.status === "ended")
          throw new AppError("EXPERIMENT_ENDED", `experiment '${params.id}' has already ended`, { status: 409 });
        const leader = (await report(before)).leader;
        const chosen = body?.winner ?? leader.variant;
        if (!before.variants.some((v) => v.name === chosen))
          throw new AppError("VARIANT_NOT_FOUND", `experiment '${params.id}' has no variant '${chosen}'`, {
            status: 422,
            details: { field: "winner" },
          });
        const setDefault = body?.set_default ?? true;
        const outcome = body?.winner
          ? `'${chosen}' chosen by ${actorOf(request)}; the report's leader was '${leader.variant}' (${leader.reason})`
          : leader.reason;
        const by = actorOf(request);
        const ended = await store.update(
          params.id,
          (e) => {
            if (e.status === "ended")
              throw new AppError("EXPERIMENT_ENDED", `experiment '${params.id}' has already ended`, { status: 409 });
            return { ...e, status: "ended", ended_at: Date.now(), winner: setDefault ? chosen : null, outcome };
          },
          (e): TaskDefault | undefined => {
            const winner = e.variants.find((v) => v.name === chosen);
            if (!setDefault || !winner) return undefined;
            return {
              task_type: e.task_type,
              prompt_version: winner.prompt_version,
              ...(winner.model ? { model: winner.model } : {}),
              experiment_id: e.id,
              variant: winner.name,
              at: Date.now(),
              by,
            };
          },
        );
        audit(request, "experiment.end", {
          experiment_id: params.id,
          winner: ended.winner,
          leader: leader.variant,
          significant: leader.significant,
        });
        return viewOf(ended);
      },
      {
        params: IdParams,
        // Optional (`curl -X POST …/end`): an empty body is none, malformed JSON still a 400.
        parse: strictJsonBody(["winner", "set_default"]),
        body: t.Optional(
          t.Object(
            {
              winner: t.Optional(t.String({ pattern: NAME, description: "absent: the report's leader" })),
              set_default: t.Optional(
                t.Boolean({ description: "default true: the winner's prompt version and model become the default" }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
        response: { 200: ExperimentSchema, ...errorResponses(400, 404, 409, 413, 415, 422, ...ERRORS) },
        detail: {
          summary:
            "End an experiment; its winner (the report's leader unless one is named) becomes the task type's default",
          tags: TAGS,
        },
      },
    )
    .post(
      "/experiments/:id/variants",
      async ({ params, body, request, set }) => {
        const current = await store.get(params.id);
        if (!current) throw notFound(params.id);
        const variant = await variantOf(current.task_type, body, await defaultVersion(current.task_type), Date.now());
        const updated = await store.update(params.id, (e) => {
          if (e.status === "ended")
            throw new AppError("EXPERIMENT_ENDED", `experiment '${params.id}' has ended`, { status: 409 });
          if (e.variants.some((v) => v.name === variant.name))
            throw new AppError("VARIANT_EXISTS", `experiment '${params.id}' already has a variant '${variant.name}'`, {
              status: 409,
            });
          return { ...e, variants: [...e.variants, variant] };
        });
        audit(request, "experiment.add_variant", { experiment_id: params.id, variant: variant.name });
        set.status = 201;
        return viewOf(updated);
      },
      {
        params: IdParams,
        parse: strictJsonBody(["name", "weight", "prompt_version", "model"]),
        body: VariantInput,
        response: { 201: ExperimentSchema, ...errorResponses(400, 404, 409, 413, 415, 422, ...ERRORS) },
        detail: {
          summary: "Add a variant to a running or paused experiment; only new assignments move to it",
          tags: TAGS,
        },
      },
    );
}
