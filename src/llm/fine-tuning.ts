/**
 * The narrow port to a provider's fine-tuning API (issue 17 §6): the calls
 * the feedback → fine-tuning loop makes, and the OpenAI adapter behind it
 * (`files.create`, `fineTuning.jobs.create/retrieve/list/cancel`), for
 * api.openai.com or any OpenAI-compatible server that has these endpoints.
 * Nothing above llm/ sees an SDK type. Errors are LlmErrors whose
 * `retriable` follows HTTP, as for chat: the follower retries those and
 * fails the fine-tune on the others.
 */
import type OpenAI from "openai";
import { toFile } from "openai";
import type { LlmProviderName } from "../config";
import { openAiClient } from "./openai-embedder";
import { toLlmError } from "./openai-errors";

/** The states of a provider's job, OpenAI's words. */
export const JOB_STATUSES = ["validating_files", "queued", "running", "succeeded", "failed", "cancelled"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const JOB_ENDED: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "cancelled"]);

/** A provider's fine-tuning job, as the loop reads it. */
export interface FineTuningJob {
  id: string;
  status: JobStatus;
  /** Set once the job succeeded: the model to call (`ft:gpt-4o-mini:org:suffix:id`). */
  fineTunedModel: string | null;
  /** Why the job failed, in the provider's words. */
  error: { code: string; message: string } | null;
  trainedTokens: number | null;
}

export interface FineTuningClient {
  /** Uploads a JSONL file for fine-tuning; its id. */
  uploadFile(name: string, content: string, signal?: AbortSignal): Promise<{ id: string; bytes: number }>;
  createJob(
    input: {
      model: string;
      trainingFile: string;
      validationFile?: string;
      suffix?: string;
      /** Finds the job again (findJob) when the process died between creating it and recording its id. */
      metadata: Readonly<Record<string, string>>;
    },
    signal?: AbortSignal,
  ): Promise<FineTuningJob>;
  retrieveJob(id: string, signal?: AbortSignal): Promise<FineTuningJob>;
  /** The newest job created with this metadata pair, if any. */
  findJob(key: string, value: string, signal?: AbortSignal): Promise<FineTuningJob | undefined>;
  cancelJob(id: string, signal?: AbortSignal): Promise<FineTuningJob>;
}

/** The providers whose API is OpenAI's, and so has its files and fine-tuning endpoints. */
export const FINE_TUNING_PROVIDERS: ReadonlySet<LlmProviderName> = new Set(["openai"]);

function jobOf(job: OpenAI.FineTuning.FineTuningJob): FineTuningJob {
  return {
    id: job.id,
    status: job.status,
    fineTunedModel: job.fine_tuned_model,
    error: job.error ? { code: job.error.code, message: job.error.message } : null,
    trainedTokens: job.trained_tokens,
  };
}

/** The OpenAI adapter; the SDK's own retries are off (the follower retries with its backoff). */
export function createOpenAiFineTuning(options: {
  apiKey: string;
  baseUrl: string | undefined;
  timeoutMs?: number;
}): FineTuningClient {
  const client = openAiClient({
    apiKey: options.apiKey,
    baseUrl: options.baseUrl,
    timeoutMs: options.timeoutMs ?? 120_000,
  });
  const mapped =
    (what: string) =>
    (error: unknown): never => {
      throw toLlmError(error, what);
    };
  return {
    async uploadFile(name, content, signal) {
      const file = await toFile(Buffer.from(content, "utf8"), name, { type: "application/jsonl" });
      const uploaded = await client.files
        .create({ file, purpose: "fine-tune" }, { signal })
        .catch(mapped("file upload"));
      return { id: uploaded.id, bytes: uploaded.bytes };
    },
    async createJob(input, signal) {
      const job = await client.fineTuning.jobs
        .create(
          {
            model: input.model,
            training_file: input.trainingFile,
            ...(input.validationFile ? { validation_file: input.validationFile } : {}),
            ...(input.suffix ? { suffix: input.suffix } : {}),
            metadata: { ...input.metadata },
          },
          { signal },
        )
        .catch(mapped("fine-tuning job creation"));
      return jobOf(job);
    },
    async retrieveJob(id, signal) {
      return jobOf(await client.fineTuning.jobs.retrieve(id, { signal }).catch(mapped("fine-tuning job")));
    },
    async findJob(key, value, signal) {
      const page = await client.fineTuning.jobs
        .list({ metadata: { [key]: value }, limit: 1 }, { signal })
        .catch(mapped("fine-tuning job list"));
      const job = page.data[0];
      return job ? jobOf(job) : undefined;
    },
    async cancelJob(id, signal) {
      return jobOf(await client.fineTuning.jobs.cancel(id, { signal }).catch(mapped("fine-tuning job cancel")));
    },
  };
}
