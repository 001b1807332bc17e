/**
 * OpenAI's files and fine-tuning jobs endpoints for the mock OpenAI server
 * (issue 17 §6, §7), in the shapes of the `openai` SDK's own types
 * (resources/files.d.ts, resources/fine-tuning/jobs/jobs.d.ts):
 *
 *   POST /v1/files (multipart: file, purpose)      GET /v1/files/:id      GET /v1/files/:id/content
 *   POST /v1/fine_tuning/jobs   GET /v1/fine_tuning/jobs (limit, after, metadata[k]=v)
 *   GET /v1/fine_tuning/jobs/:id   GET /v1/fine_tuning/jobs/:id/events   POST /v1/fine_tuning/jobs/:id/cancel
 *
 * A job moves validating_files → queued → running → succeeded over short
 * durations (options, or POST /__mock/fine-tuning), computed from its age
 * when it is read: no timers, so a stopped test leaves nothing running.
 * While validating, the mock checks the training file as OpenAI does (one
 * JSON object a line, `messages` of system/user/assistant turns with string
 * contents, an assistant turn, at least 10 examples) and fails the job with
 * OpenAI's error (`invalid_training_file`) otherwise; a `job_failed` fault
 * fails it while it runs. Uploaded files are kept, so a test reads back what
 * was sent (GET /v1/files/:id/content, or `files()`).
 */
import { estimateTokens } from "../src/llm/provider";
import type { MockKit, MockRoute } from "./mock-provider-kit";

/** How long a job stays in each state before the next, ms. */
export interface MockFineTuningTimings {
  validatingMs: number;
  queuedMs: number;
  runningMs: number;
}

export interface MockFile {
  id: string;
  object: "file";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: "processed";
  expires_at: null;
  status_details: null;
  /** Not part of OpenAI's object: what was uploaded. */
  content: string;
}

type JobStatus = "validating_files" | "queued" | "running" | "succeeded" | "failed" | "cancelled";
interface JobError {
  code: string;
  message: string;
  param: string | null;
}

interface MockJob {
  id: string;
  createdMs: number;
  model: string;
  training_file: string;
  validation_file: string | null;
  suffix: string | null;
  seed: number;
  metadata: Record<string, string> | null;
  timings: MockFineTuningTimings;
  /** The files' problem, found while validating; or a fault's, served once the job runs. */
  invalid?: JobError;
  faulted?: JobError;
  cancelledMs?: number;
  trainingTokens: number;
  resultFile?: string;
}

export interface MockFineTuning {
  /** The files uploaded, oldest first, with their content. */
  files(): MockFile[];
  /** The jobs as GET /v1/fine_tuning/jobs/:id shows them, oldest first. */
  jobs(): Record<string, unknown>[];
  setTimings(timings: Partial<MockFineTuningTimings>): void;
}

export const DEFAULT_FINE_TUNING_TIMINGS: MockFineTuningTimings = { validatingMs: 50, queuedMs: 50, runningMs: 200 };

const FILE_PURPOSES = new Set(["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]);
const ROLES = new Set(["system", "user", "assistant"]);
/** OpenAI's minimum for a training file. */
const MIN_EXAMPLES = 10;
const N_EPOCHS = 3;

/** OpenAI's error body with its `param` and `code`, which the kit's shared format leaves null. */
function invalidRequest(message: string, param: string | null, code: string | null = null, status = 400): Response {
  return Response.json({ error: { message, type: "invalid_request_error", param, code } }, { status });
}

const paramOf = (request: Request, name: string) =>
  (request as Request & { params: Record<string, string> }).params[name] as string;
const seconds = (ms: number) => Math.floor(ms / 1000);
const shortId = () => Bun.randomUUIDv7().replaceAll("-", "").slice(-12);

/**
 * The problem with a file of chat examples, in OpenAI's words, or undefined
 * when it is fine. A training file needs at least 10 examples.
 */
export function checkChatExamples(content: string, minExamples: number): string | undefined {
  const lines = content.split("\n").filter((line) => line.trim() !== "");
  for (const [index, line] of lines.entries()) {
    const at = `Line ${index + 1}`;
    let example: unknown;
    try {
      example = JSON.parse(line);
    } catch {
      return `Invalid file format. ${at} is not valid JSON.`;
    }
    const messages = (example as { messages?: unknown } | null)?.messages;
    if (!Array.isArray(messages) || messages.length === 0)
      return `Invalid file format. ${at}, key "messages": a non-empty list of messages is required.`;
    for (const [n, message] of messages.entries()) {
      const { role, content: text } = (message ?? {}) as { role?: unknown; content?: unknown };
      if (typeof role !== "string" || !ROLES.has(role))
        return `Invalid file format. ${at}, message ${n + 1}: unrecognized role ${JSON.stringify(role)}.`;
      if (typeof text !== "string" || text === "")
        return `Invalid file format. ${at}, message ${n + 1}: missing or empty "content".`;
    }
    if (!messages.some((message) => (message as { role?: unknown }).role === "assistant"))
      return `Invalid file format. ${at}: examples must have at least one message with the role "assistant".`;
  }
  if (lines.length < minExamples)
    return `Training file has ${lines.length} example(s), but must have at least ${minExamples} examples`;
  return undefined;
}

/** The fine-tuning state of one mock OpenAI server, and its routes. */
export function createFineTuningMock(initial: Partial<MockFineTuningTimings> = {}) {
  let timings: MockFineTuningTimings = { ...DEFAULT_FINE_TUNING_TIMINGS, ...initial };
  let files = new Map<string, MockFile>();
  let jobs = new Map<string, MockJob>();

  /** The job's state at `now`: its status, when it ended, its error, its model. */
  const stateOf = (job: MockJob, now = Date.now()) => {
    const validated = job.createdMs + job.timings.validatingMs;
    const started = validated + job.timings.queuedMs;
    const ended = started + job.timings.runningMs;
    const cancelled = job.cancelledMs;
    const at = (ms: number) => cancelled === undefined || ms <= cancelled;
    let status: JobStatus = "validating_files";
    let finishedMs: number | undefined;
    let error: JobError | undefined;
    if (job.invalid && now >= validated && at(validated)) {
      status = "failed";
      finishedMs = validated;
      error = job.invalid;
    } else if (now >= ended && at(ended)) {
      status = job.faulted ? "failed" : "succeeded";
      finishedMs = ended;
      error = job.faulted;
    } else if (cancelled !== undefined && now >= cancelled) {
      status = "cancelled";
      finishedMs = cancelled;
    } else if (now >= started) status = "running";
    else if (now >= validated) status = "queued";
    return { status, finishedMs, error, validated, started, ended };
  };

  const fineTunedModel = (job: MockJob) => `ft:${job.model}:aies:${job.suffix ?? ""}:${job.id.slice(-8)}`;

  /** A FineTuningJob as the SDK types it. */
  const view = (job: MockJob, now = Date.now()) => {
    const state = stateOf(job, now);
    const succeeded = state.status === "succeeded";
    const resolved = state.status !== "validating_files" && state.status !== "queued";
    const hyperparameters = resolved
      ? { batch_size: 1, learning_rate_multiplier: 1.8, n_epochs: N_EPOCHS }
      : { batch_size: "auto", learning_rate_multiplier: "auto", n_epochs: "auto" };
    if (succeeded && !job.resultFile) job.resultFile = addFile("step_metrics.csv", "fine-tune-results", metrics(job));
    return {
      id: job.id,
      object: "fine_tuning.job",
      created_at: seconds(job.createdMs),
      error: state.error ?? null,
      fine_tuned_model: succeeded ? fineTunedModel(job) : null,
      finished_at: state.finishedMs === undefined ? null : seconds(state.finishedMs),
      hyperparameters,
      model: job.model,
      organization_id: "org-aies-mock",
      result_files: succeeded && job.resultFile ? [job.resultFile] : [],
      seed: job.seed,
      status: state.status,
      trained_tokens: succeeded ? job.trainingTokens * N_EPOCHS : null,
      training_file: job.training_file,
      validation_file: job.validation_file,
      estimated_finish: state.status === "running" ? seconds(state.ended) : null,
      integrations: null,
      metadata: job.metadata,
      suffix: job.suffix,
      method: { type: "supervised", supervised: { hyperparameters } },
    };
  };

  const metrics = (job: MockJob) =>
    `step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n1,1.2,0.6,${job.validation_file ? "1.3,0.55" : ","}\n`;

  /** The job's events, newest first, as GET .../events lists them. */
  const eventsOf = (job: MockJob, now = Date.now()) => {
    const state = stateOf(job, now);
    const list: { ms: number; level: "info" | "warn" | "error"; message: string; type: "message" | "metrics" }[] = [
      { ms: job.createdMs, level: "info", message: `Created fine-tuning job: ${job.id}`, type: "message" },
      {
        ms: job.createdMs,
        level: "info",
        message: `Validating training file: ${job.training_file}${job.validation_file ? ` and validation file: ${job.validation_file}` : ""}`,
        type: "message",
      },
    ];
    const reached = (ms: number) => now >= ms && (state.finishedMs === undefined || ms <= state.finishedMs);
    if (job.invalid && reached(state.validated)) {
      list.push({ ms: state.validated, level: "error", message: job.invalid.message, type: "message" });
    } else {
      if (reached(state.validated))
        list.push({
          ms: state.validated,
          level: "info",
          message: "Files validated, moving job to queued state",
          type: "message",
        });
      if (reached(state.started))
        list.push({ ms: state.started, level: "info", message: "Fine-tuning job started", type: "message" });
      if (state.status === "succeeded") {
        list.push({ ms: state.ended, level: "info", message: "Step 1/1: training loss=1.2000", type: "metrics" });
        list.push({
          ms: state.ended,
          level: "info",
          message: `New fine-tuned model created: ${fineTunedModel(job)}`,
          type: "message",
        });
        list.push({ ms: state.ended, level: "info", message: "The job has successfully completed", type: "message" });
      }
      if (state.status === "failed" && state.error)
        list.push({ ms: state.ended, level: "error", message: state.error.message, type: "message" });
    }
    if (state.status === "cancelled")
      list.push({ ms: state.finishedMs ?? now, level: "info", message: "Fine-tuning job cancelled", type: "message" });
    return list
      .map((event, index) => ({
        object: "fine_tuning.job.event" as const,
        id: `ftevent-${job.id.slice(6)}-${String(index).padStart(3, "0")}`,
        created_at: seconds(event.ms),
        level: event.level,
        message: event.message,
        type: event.type,
        data: {},
      }))
      .reverse();
  };

  /** One page of a list, newest first, OpenAI's cursor pagination (`after` an id, `limit`). */
  const page = <T extends { id: string }>(items: T[], url: URL) => {
    const limit = Math.min(Math.max(Number(url.searchParams.get("limit") ?? 20) || 20, 1), 100);
    const after = url.searchParams.get("after");
    const start = after ? items.findIndex((item) => item.id === after) + 1 : 0;
    const data = items.slice(start, start + limit);
    return Response.json({ object: "list", data, has_more: start + limit < items.length });
  };

  const addFile = (filename: string, purpose: string, content: string): string => {
    const id = `file-${shortId()}`;
    files.set(id, {
      id,
      object: "file",
      bytes: Buffer.byteLength(content),
      created_at: seconds(Date.now()),
      filename,
      purpose,
      status: "processed",
      expires_at: null,
      status_details: null,
      content,
    });
    return id;
  };
  const fileView = ({ content: _, ...file }: MockFile) => file;

  const routes = (kit: MockKit): Record<string, MockRoute> => ({
    "/v1/files": {
      POST: async (request) => {
        let form: FormData;
        try {
          form = await request.formData();
        } catch {
          return invalidRequest("The request must be multipart/form-data with 'file' and 'purpose'.", null);
        }
        const file = form.get("file");
        const purpose = form.get("purpose");
        if (!(file instanceof Blob)) return invalidRequest("'file' is a required property", "file");
        if (typeof purpose !== "string" || !FILE_PURPOSES.has(purpose))
          return invalidRequest(`'${String(purpose)}' is not one of ${[...FILE_PURPOSES].join(", ")}`, "purpose");
        const content = await file.text();
        const filename = file instanceof File ? file.name : "upload";
        const faulted = await kit.serve(request, "files", [content, filename]);
        if (faulted instanceof Response) return faulted;
        if (purpose === "fine-tune" && !filename.endsWith(".jsonl"))
          return invalidRequest("Invalid file format for Fine-Tuning API. Must be .jsonl", "file");
        return Response.json(fileView(files.get(addFile(filename, purpose, content)) as MockFile));
      },
    },
    "/v1/files/:id": {
      GET: (request) => {
        const file = files.get(paramOf(request, "id"));
        return file
          ? Response.json(fileView(file))
          : kit.error(404, "not_found", `No such File object: ${paramOf(request, "id")}`);
      },
    },
    "/v1/files/:id/content": {
      GET: (request) => {
        const file = files.get(paramOf(request, "id"));
        if (!file) return kit.error(404, "not_found", `No such File object: ${paramOf(request, "id")}`);
        return new Response(file.content, { headers: { "content-type": "application/octet-stream" } });
      },
    },
    "/v1/fine_tuning/jobs": {
      GET: (request) => {
        const url = new URL(request.url);
        const wanted = [...url.searchParams].flatMap(([key, value]) => {
          const name = /^metadata\[(.+)\]$/.exec(key)?.[1];
          return name ? [[name, value] as const] : [];
        });
        const listed = [...jobs.values()]
          .filter((job) => wanted.every(([name, value]) => job.metadata?.[name] === value))
          .reverse()
          .map((job) => view(job));
        return page(listed, url);
      },
      POST: async (request) => {
        const body = await kit.readJson<{
          model?: unknown;
          training_file?: unknown;
          validation_file?: unknown;
          suffix?: unknown;
          seed?: unknown;
          metadata?: unknown;
        }>(request);
        if (body instanceof Response) return body;
        if (typeof body.model !== "string" || body.model === "") return invalidRequest("'model' is required", "model");
        const training = typeof body.training_file === "string" ? files.get(body.training_file) : undefined;
        if (training?.purpose !== "fine-tune")
          return invalidRequest(`invalid training_file: ${String(body.training_file)}`, "training_file");
        const validationId = body.validation_file ?? null;
        const validation = typeof validationId === "string" ? files.get(validationId) : undefined;
        if (validationId !== null && validation?.purpose !== "fine-tune")
          return invalidRequest(`invalid validation_file: ${String(validationId)}`, "validation_file");
        const suffix = body.suffix ?? null;
        if (suffix !== null && (typeof suffix !== "string" || suffix.length > 64))
          return invalidRequest("suffix must be a string of at most 64 characters", "suffix");
        const faulted = await kit.serve(request, "fine_tuning", [body.model, suffix ?? "", training.content]);
        if (faulted instanceof Response) return faulted;
        const trainingProblem = checkChatExamples(training.content, MIN_EXAMPLES);
        const validationProblem = validation ? checkChatExamples(validation.content, 1) : undefined;
        const job: MockJob = {
          id: `ftjob-${shortId()}`,
          createdMs: Date.now(),
          model: body.model,
          training_file: training.id,
          validation_file: validation?.id ?? null,
          suffix,
          seed: typeof body.seed === "number" ? body.seed : 42,
          metadata: (body.metadata as Record<string, string> | null | undefined) ?? null,
          timings: { ...timings },
          trainingTokens: estimateTokens(training.content),
          ...(trainingProblem
            ? {
                invalid: {
                  code: "invalid_training_file",
                  message: `The job failed due to an invalid training file. ${trainingProblem}`,
                  param: "training_file",
                },
              }
            : validationProblem
              ? {
                  invalid: {
                    code: "invalid_validation_file",
                    message: `The job failed due to an invalid validation file. ${validationProblem}`,
                    param: "validation_file",
                  },
                }
              : {}),
          ...(faulted
            ? {
                faulted: {
                  code: faulted.jobFailed.code ?? "server_error",
                  message: faulted.jobFailed.message ?? "Fine-tuning failed (mock fault).",
                  param: null,
                },
              }
            : {}),
        };
        jobs.set(job.id, job);
        return Response.json(view(job));
      },
    },
    "/v1/fine_tuning/jobs/:id": {
      GET: (request) => {
        const job = jobs.get(paramOf(request, "id"));
        return job ? Response.json(view(job)) : jobNotFound(kit, paramOf(request, "id"));
      },
    },
    "/v1/fine_tuning/jobs/:id/events": {
      GET: (request) => {
        const job = jobs.get(paramOf(request, "id"));
        return job ? page(eventsOf(job), new URL(request.url)) : jobNotFound(kit, paramOf(request, "id"));
      },
    },
    "/v1/fine_tuning/jobs/:id/cancel": {
      POST: (request) => {
        const job = jobs.get(paramOf(request, "id"));
        if (!job) return jobNotFound(kit, paramOf(request, "id"));
        const { status } = stateOf(job);
        if (status === "succeeded" || status === "failed" || status === "cancelled")
          return invalidRequest(`Job has already ${status === "cancelled" ? "been cancelled" : "completed"}.`, null);
        job.cancelledMs = Date.now();
        return Response.json(view(job));
      },
    },
    "/__mock/fine-tuning": {
      POST: async (request) => {
        const body = await kit.readJson<{ validating_ms?: unknown; queued_ms?: unknown; running_ms?: unknown }>(
          request,
        );
        if (body instanceof Response) return body;
        const values = [body.validating_ms, body.queued_ms, body.running_ms];
        if (!values.every((value) => value === undefined || (typeof value === "number" && value >= 0)))
          return kit.error(400, "invalid", "validating_ms, queued_ms and running_ms must be numbers >= 0");
        control.setTimings({
          ...(body.validating_ms === undefined ? {} : { validatingMs: Number(body.validating_ms) }),
          ...(body.queued_ms === undefined ? {} : { queuedMs: Number(body.queued_ms) }),
          ...(body.running_ms === undefined ? {} : { runningMs: Number(body.running_ms) }),
        });
        return Response.json({ ok: true, timings });
      },
    },
  });

  const control: MockFineTuning = {
    files: () => [...files.values()].map((file) => ({ ...file })),
    jobs: () => [...jobs.values()].map((job) => view(job)),
    setTimings(next) {
      timings = { ...timings, ...next };
    },
  };

  return {
    routes,
    control,
    /** Files, jobs and timings as they were at the start. */
    reset() {
      files = new Map();
      jobs = new Map();
      timings = { ...DEFAULT_FINE_TUNING_TIMINGS, ...initial };
    },
  };
}

function jobNotFound(kit: MockKit, id: string): Response {
  return kit.error(404, "not_found", `Could not find fine tune job: ${id}`);
}
