/**
 * The feedback → fine-tuning loop (issue 17 §6): a fine-tune is started from
 * a task type's positively rated results (training-file.ts), its files are
 * uploaded and its job created through the provider's fine-tuning API
 * (llm/fine-tuning.ts), the job is followed until it ends, and a model that
 * came out of it is registered as a new variant of an experiment at a small
 * weight, so that it must win on live traffic before it becomes the default.
 *
 * Following survives restarts: the record in Redis (fine-tune-records.ts) is
 * the whole state, and a process follows a fine-tune only while it holds its
 * lease, renewed every third of FINETUNE_LEASE_MS. Every process that runs
 * the API looks for active fine-tunes nobody follows (the follower died:
 * its lease expired) every scan interval and takes them over; one stopped
 * gracefully releases its leases so that another takes over at its next scan.
 *
 * A process that dies while `preparing` (after the files were built, before
 * the job's id was recorded) leaves a job it may or may not have created:
 * the job is created with the fine-tune's id in its metadata, and the next
 * follower looks it up by that before creating one, so a restart never
 * trains twice. Files uploaded before such a crash are uploaded again from a
 * fresh build (the provider keeps the first ones; they cost storage only).
 *
 * The provider is polled with backoff (FINETUNE_POLL_MIN_MS doubling to
 * FINETUNE_POLL_MAX_MS while nothing changes, back to the minimum when the
 * status moves). Transient provider errors (5xx, 429, timeouts) are retried
 * at the same pace for as long as it takes; a 4xx ends the fine-tune as
 * failed with the provider's words, as does a job that failed.
 */
import type Redis from "ioredis";
import { AppError, errorMessage } from "../errors";
import { type FineTuningClient, type FineTuningJob, JOB_ENDED } from "../llm/fine-tuning";
import { LlmError } from "../llm/provider";
import type { Logger } from "../log";
import { acquireLease, releaseLease, renewLease } from "../redis/lease";
import type { ExampleScope, TrainingExamples } from "../store/training-examples";
import { sleep } from "../util/backoff";
import {
  FINE_TUNE_ENDED,
  type FineTuneRecord,
  type FineTuneRecords,
  type FineTuneStatus,
  leaseKey,
} from "./fine-tune-records";
import { buildTrainingFiles, MIN_TRAINING_EXAMPLES, type SystemPromptOf, type TrainingFiles } from "./training-file";

/**
 * Registers a fine-tuned model as a new variant; the experiments store implements it (issue 17 §5). It may be
 * called again with the same fineTuneId (a follower that died between the registration and recording it):
 * it must then answer the variant it registered the first time, not add a second.
 */
export interface VariantRegistrar {
  register(input: {
    taskType: string;
    model: string;
    weight: number;
    fineTuneId: string;
    experimentId?: string;
  }): Promise<{ experiment_id: string; variant: string }>;
}

export interface StartFineTune {
  taskType: string;
  tenant?: string;
  /** The model string to fine-tune; absent: the model the task type is routed to. */
  baseModel?: string;
  validationFraction: number;
  minExamples: number;
  weight: number;
  experimentId?: string;
  suffix?: string;
  origin: "api" | "auto";
  createdBy: string;
}

export interface FineTunerTimings {
  /** The first wait between two polls of a job, and the longest. */
  pollMinMs: number;
  pollMaxMs: number;
  /** A follower's lease; it renews it every third. */
  leaseMs: number;
  /** How often a process looks for fine-tunes nobody follows. */
  scanIntervalMs: number;
}

export interface FineTunerDeps {
  redis: Redis;
  records: FineTuneRecords;
  examples: Pick<TrainingExamples, "read">;
  /** FINETUNE_MAX_EXAMPLES: a training file has at most the newest this many examples (it is built in memory). */
  maxExamples?: number;
  /** The provider's fine-tuning API; absent when no OpenAI-compatible provider has a key. */
  client: FineTuningClient | undefined;
  /** A model string → its provider and the provider's name for it (llm/model-routes.ts parseModel). */
  parseModel: (model: string) => { provider: string; model: string };
  /** The model a task type is routed to (the default base model). */
  routedModel: (taskType: string) => string;
  /** The providers whose API has OpenAI's fine-tuning endpoints. */
  fineTunable: ReadonlySet<string>;
  systemPromptOf: SystemPromptOf;
  registrar?: VariantRegistrar;
  logger: Logger;
  timings: FineTunerTimings;
  now?: () => number;
}

export interface FineTuner {
  /**
   * Builds the files and records the fine-tune, then uploads, starts and follows it in the background.
   * Throws 409 FINETUNE_TOO_FEW_EXAMPLES, FINETUNE_IN_PROGRESS or FINETUNE_UNAVAILABLE (no fine-tuning
   * provider here, or the task type's routed model has none), 422 FINETUNE_PROVIDER_UNSUPPORTED (a
   * base_model whose provider has no fine-tuning API).
   */
  start(request: StartFineTune): Promise<FineTuneRecord>;
  get(id: string): Promise<FineTuneRecord | undefined>;
  list(limit: number): Promise<FineTuneRecord[]>;
  /** Asks the provider to cancel the job; its follower records the end. 409 once it has ended. */
  cancel(id: string): Promise<FineTuneRecord | undefined>;
  /** Looks for fine-tunes nobody follows, now and every scan interval, until close(). */
  resume(): void;
  /** Stops following (leases released, so another process takes over at once); waits for the loops. */
  close(): Promise<void>;
}

/** The metadata key a job carries our fine-tune's id under: how a restarted follower finds it. */
export const JOB_METADATA_KEY = "aies_fine_tune_id";

const PROVIDER_STATUSES: ReadonlySet<string> = new Set(["validating_files", "queued", "running"]);

export function createFineTuner(deps: FineTunerDeps): FineTuner {
  const { redis, records, client, logger, timings, registrar } = deps;
  const now = deps.now ?? Date.now;
  const owner = `${process.pid}-${Bun.randomUUIDv7()}`;
  /** Fine-tunes this process follows: their loops, and how to stop them. */
  const following = new Map<string, { stop: AbortController; done: Promise<void> }>();
  let closed = false;
  let scanner: ReturnType<typeof setInterval> | undefined;

  const build = async (scope: ExampleScope, validationFraction: number) => {
    const read = await deps.examples.read(scope, deps.maxExamples === undefined ? {} : { newest: deps.maxExamples });
    if (read.older > 0)
      logger.info(
        { task_type: scope.taskType, tenant: scope.tenant, used: read.examples.length, older_left_out: read.older },
        "fine-tune: only the newest examples go into the training file (FINETUNE_MAX_EXAMPLES)",
      );
    const files = buildTrainingFiles({ ...read, systemPromptOf: deps.systemPromptOf, validationFraction });
    return { files, newestAt: read.newestAt };
  };

  const tooFew = (record: Pick<FineTuneRecord, "task_type" | "tenant" | "min_examples">, files: TrainingFiles) => {
    const { counts } = files;
    const minimum = Math.max(record.min_examples, MIN_TRAINING_EXAMPLES);
    if (counts.examples >= minimum) return undefined;
    const whose = record.tenant === undefined ? "" : ` of tenant '${record.tenant}'`;
    return new AppError(
      "FINETUNE_TOO_FEW_EXAMPLES",
      `task type '${record.task_type}'${whose} has ${counts.examples} usable positively rated examples; min_examples is ${minimum} (${counts.skipped} left out: ${JSON.stringify(counts.skipped_by_reason)})`,
      { status: 409, details: { counts } },
    );
  };

  const save = async (record: FineTuneRecord, changes: Partial<FineTuneRecord>) => {
    Object.assign(record, changes, { updated_at: now() });
    if (FINE_TUNE_ENDED.has(record.status) && record.finished_at === undefined) record.finished_at = now();
    await records.save(record);
  };

  const fail = (record: FineTuneRecord, code: string, message: string) => {
    logger.warn({ fine_tune_id: record.id, task_type: record.task_type, code, message }, "fine-tune failed");
    return save(record, { status: "failed", error: { code, message } });
  };

  /** Uploads the files and creates the job, unless a job with this fine-tune's id already exists. */
  const prepare = async (record: FineTuneRecord, built: TrainingFiles | undefined, signal: AbortSignal) => {
    if (!client) throw new AppError("FINETUNE_UNAVAILABLE", "no fine-tuning provider is configured any more", {});
    const existing = await client.findJob(JOB_METADATA_KEY, record.id, signal);
    if (existing) {
      logger.info({ fine_tune_id: record.id, job_id: existing.id }, "fine-tune job found after a restart");
      return save(record, { provider_job_id: existing.id, ...statusOf(existing) });
    }
    // Files uploaded by a process that died before creating the job are used again, not uploaded a second time
    // (and left at the provider): the record names them once both are uploaded.
    let uploaded =
      record.files?.training === undefined ? undefined : { ...record.files, training: record.files.training };
    if (!uploaded) {
      let files = built;
      if (!files) {
        const rebuilt = await build(scopeOf(record), record.validation_fraction);
        const refused = tooFew(record, rebuilt.files);
        if (refused) return fail(record, refused.code, refused.message);
        files = rebuilt.files;
        await save(record, { counts: files.counts });
      }
      const name = `${record.id}-${record.task_type}`;
      const training = await client.uploadFile(`${name}-train.jsonl`, files.training, signal);
      const validation = files.validation
        ? await client.uploadFile(`${name}-valid.jsonl`, files.validation, signal)
        : undefined;
      uploaded = { training: training.id, ...(validation ? { validation: validation.id } : {}) };
      await save(record, { files: uploaded });
    } else
      logger.info({ fine_tune_id: record.id, files: uploaded }, "fine-tune: using the files uploaded before a restart");
    const job = await client.createJob(
      {
        model: record.provider_model,
        trainingFile: uploaded.training,
        ...(uploaded.validation ? { validationFile: uploaded.validation } : {}),
        ...(record.suffix ? { suffix: record.suffix } : {}),
        metadata: { [JOB_METADATA_KEY]: record.id, task_type: record.task_type },
      },
      signal,
    );
    logger.info(
      {
        fine_tune_id: record.id,
        job_id: job.id,
        training: record.counts.training,
        validation: record.counts.validation,
      },
      "fine-tune job created",
    );
    return save(record, { provider_job_id: job.id, ...statusOf(job) });
  };

  /** Our record's fields for the provider's job as read. */
  const statusOf = (job: FineTuningJob): Partial<FineTuneRecord> => ({
    provider_status: job.status,
    ...(job.trainedTokens === null ? {} : { trained_tokens: job.trainedTokens }),
    ...(job.status === "succeeded"
      ? { status: "registering" as const, ...(job.fineTunedModel ? { fine_tuned_model: job.fineTunedModel } : {}) }
      : job.status === "failed"
        ? {
            status: "failed" as const,
            error: {
              code: job.error?.code ?? "FINETUNE_JOB_FAILED",
              message: job.error?.message ?? "the provider's job failed without a reason",
            },
          }
        : job.status === "cancelled"
          ? { status: "cancelled" as const }
          : // A state this code does not know (OpenAI's jobs can also be paused): still under way; provider_status says which.
            { status: PROVIDER_STATUSES.has(job.status) ? (job.status as FineTuneStatus) : ("running" as const) }),
  });

  const register = async (record: FineTuneRecord) => {
    if (!record.fine_tuned_model)
      return fail(record, "FINETUNE_NO_MODEL", "the provider's job succeeded without naming the fine-tuned model");
    const model = `${record.provider}/${record.fine_tuned_model}`;
    if (!registrar) {
      logger.warn({ fine_tune_id: record.id, model }, "fine-tune succeeded; no variant registrar: route to it by hand");
      return save(record, {
        status: "succeeded",
        note: "no variant registrar is configured: the model was not registered as a variant",
      });
    }
    const variant = await registrar.register({
      taskType: record.task_type,
      model,
      weight: record.weight,
      fineTuneId: record.id,
      ...(record.experiment_id ? { experimentId: record.experiment_id } : {}),
    });
    logger.info({ fine_tune_id: record.id, model, ...variant }, "fine-tuned model registered as a variant");
    delete record.note;
    return save(record, { status: "succeeded", variant });
  };

  /** Follows one fine-tune while this process holds its lease. */
  const follow = async (id: string, built: TrainingFiles | undefined, stop: AbortController) => {
    const lease = leaseKey(id);
    const renewal = setInterval(() => {
      renewLease(redis, lease, owner, timings.leaseMs)
        .then((ours) => {
          if (!ours) {
            logger.warn({ fine_tune_id: id }, "fine-tune lease lost: another process follows it now");
            stop.abort();
          }
        })
        .catch(() => {});
    }, timings.leaseMs / 3);
    let wait = timings.pollMinMs;
    let files = built;
    try {
      for (;;) {
        if (stop.signal.aborted) return;
        const record = await records.get(id);
        if (!record || FINE_TUNE_ENDED.has(record.status)) return;
        const before = record.status;
        try {
          if (record.status === "preparing" && !record.provider_job_id) {
            await prepare(record, files, stop.signal);
            files = undefined;
          } else if (record.status === "registering") {
            await register(record);
          } else if (record.provider_job_id && client) {
            const job = await client.retrieveJob(record.provider_job_id, stop.signal);
            if (job.status !== record.provider_status || JOB_ENDED.has(job.status)) await save(record, statusOf(job));
          } else {
            await fail(
              record,
              "FINETUNE_UNAVAILABLE",
              "no fine-tuning provider is configured any more to follow the job",
            );
          }
        } catch (error) {
          if (stop.signal.aborted) return;
          if (!retriable(error)) {
            if (record.status === "registering") {
              const model = `${record.provider}/${record.fine_tuned_model}`;
              await fail(record, "FINETUNE_REGISTRATION_FAILED", `${model} was not registered: ${errorMessage(error)}`);
            } else await fail(record, error instanceof AppError ? error.code : "FINETUNE_ERROR", errorMessage(error));
            return;
          }
          logger.warn(
            { fine_tune_id: id, status: record.status, error: errorMessage(error), retry_in_ms: wait },
            "fine-tune step failed; retrying",
          );
          if (record.status === "registering")
            await save(record, { note: `registration failed, retrying: ${errorMessage(error)}` });
        }
        const moved = record.status !== before;
        if (FINE_TUNE_ENDED.has(record.status)) return;
        if (moved && (record.status === "registering" || PROVIDER_STATUSES.has(record.status))) {
          wait = timings.pollMinMs;
          if (record.status === "registering") continue;
        }
        await sleep(wait, stop.signal).catch(() => {});
        if (!moved) wait = Math.min(wait * 2, timings.pollMaxMs);
      }
    } finally {
      clearInterval(renewal);
      await releaseLease(redis, lease, owner).catch(() => {});
    }
  };

  /** Follows `id` in the background if its lease is free; true when this process now follows it. */
  const take = async (id: string, built?: TrainingFiles): Promise<boolean> => {
    if (closed || following.has(id)) return following.has(id);
    if (!(await acquireLease(redis, leaseKey(id), owner, timings.leaseMs))) return false;
    const stop = new AbortController();
    const done = follow(id, built, stop)
      .catch((error) => logger.error({ fine_tune_id: id, error: errorMessage(error) }, "fine-tune follower crashed"))
      .finally(() => following.delete(id));
    following.set(id, { stop, done });
    return true;
  };

  const scan = async () => {
    try {
      for (const id of await records.active()) if (!following.has(id)) await take(id);
    } catch (error) {
      logger.warn({ error: errorMessage(error) }, "looking for fine-tunes to follow failed; next scan retries");
    }
  };

  return {
    async start(request) {
      const baseModel = request.baseModel ?? deps.routedModel(request.taskType);
      const target = deps.parseModel(baseModel);
      if (!client) {
        // The deployment's state, not the request's: 409, as for a fine-tune already in progress.
        throw new AppError(
          "FINETUNE_UNAVAILABLE",
          "no OpenAI-compatible provider has a key here (OPENAI_API_KEY): nothing can be fine-tuned",
          { status: 409 },
        );
      }
      if (!deps.fineTunable.has(target.provider)) {
        const why = `'${baseModel}' is ${target.provider}'s, whose API has no fine-tuning; fine-tunes need an OpenAI-compatible provider's model (openai/...)`;
        if (request.baseModel === undefined) {
          throw new AppError(
            "FINETUNE_UNAVAILABLE",
            `task type '${request.taskType}' is routed to ${why}: name a base_model`,
            { status: 409 },
          );
        }
        throw new AppError("FINETUNE_PROVIDER_UNSUPPORTED", `base_model: ${why}`, {
          status: 422,
          details: { field: "base_model" },
        });
      }
      const scope: ExampleScope = {
        taskType: request.taskType,
        ...(request.tenant === undefined ? {} : { tenant: request.tenant }),
      };
      const { files, newestAt } = await build(scope, request.validationFraction);
      const created = now();
      const record: FineTuneRecord = {
        id: `ft-${Bun.randomUUIDv7()}`,
        status: "preparing",
        task_type: request.taskType,
        ...(request.tenant === undefined ? {} : { tenant: request.tenant }),
        base_model: `${target.provider}/${target.model}`,
        provider: target.provider,
        provider_model: target.model,
        ...(request.suffix ? { suffix: request.suffix } : {}),
        validation_fraction: request.validationFraction,
        min_examples: request.minExamples,
        weight: request.weight,
        ...(request.experimentId ? { experiment_id: request.experimentId } : {}),
        origin: request.origin,
        created_by: request.createdBy,
        created_at: created,
        updated_at: created,
        counts: files.counts,
        ...(newestAt === undefined ? {} : { last_example_at: newestAt }),
      };
      const refused = tooFew(record, files);
      if (refused) throw refused;
      const outcome = await records.create(record);
      if (!outcome.created) {
        throw new AppError(
          "FINETUNE_IN_PROGRESS",
          `a fine-tune of task type '${request.taskType}' is already in progress: ${outcome.inProgress}`,
          { status: 409, details: { fine_tune_id: outcome.inProgress } },
        );
      }
      logger.info(
        { fine_tune_id: record.id, task_type: record.task_type, base_model: record.base_model, ...files.counts },
        "fine-tune started",
      );
      // The lease is free (the id is new); a process that closed meanwhile leaves it to the others' scan.
      await take(record.id, files);
      return record;
    },
    get: (id) => records.get(id),
    list: (limit) => records.list(limit),
    async cancel(id) {
      const record = await records.get(id);
      if (!record) return undefined;
      if (FINE_TUNE_ENDED.has(record.status))
        throw new AppError("FINETUNE_ENDED", `fine-tune ${id} has already ended (${record.status})`, { status: 409 });
      if (!record.provider_job_id || !client)
        throw new AppError("FINETUNE_NOT_STARTED", `fine-tune ${id} has no provider job yet: try again in a moment`, {
          status: 409,
        });
      const job = await client.cancelJob(record.provider_job_id);
      return { ...record, provider_status: job.status };
    },
    resume() {
      if (scanner || closed) return;
      void scan();
      scanner = setInterval(() => void scan(), timings.scanIntervalMs);
      scanner.unref?.();
    },
    async close() {
      closed = true;
      if (scanner) clearInterval(scanner);
      const loops = [...following.values()];
      for (const loop of loops) loop.stop.abort();
      await Promise.all(loops.map((loop) => loop.done));
    },
  };
}

function scopeOf(record: FineTuneRecord): ExampleScope {
  return { taskType: record.task_type, ...(record.tenant === undefined ? {} : { tenant: record.tenant }) };
}

/** Worth another try: a provider's transient failure, or Redis going away; a 4xx or a bug is not. */
function retriable(error: unknown): boolean {
  if (error instanceof LlmError) return error.retriable;
  if (error instanceof AppError) return error.retriable;
  if (error instanceof TypeError) return false;
  return true;
}
