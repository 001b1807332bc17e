/**
 * Prompt versions and experiments (issue 17 §5), in Redis so that every
 * process sees the same ones:
 *
 *   prompts:versions      hash `{task_type}:{version}` → {prompt, created_at, created_by, note}
 *   prompts:next          hash task_type → the last version number given out
 *   experiments:defs      hash id → the experiment (JSON): task type, variants and weights, status
 *   experiments:defaults  hash task_type → the prompt version and model a task type uses outside any
 *                         experiment: the winner of the last experiment ended with one
 *   experiments:rev       a counter bumped by every change, so a worker re-reads the rest only then
 *
 * Version 0 of a task type's prompt is the deployment's own (the built-in
 * prompts and PROMPTS_FILE, llm/prompts.ts); versions 1.. are added through
 * the API and never change, so a result's `prompt_version` always names the
 * text it was made with. At most one experiment per task type is running or
 * paused at a time; ending one may make its winner the task type's default.
 *
 * Every change is one Lua script that compares the experiment's JSON with
 * the one it was read as (a compare-and-set): two operators acting at once
 * never lose each other's change; the loser retries on the new state.
 *
 * Workers never read these per task: they keep a snapshot, re-read within a
 * second of a change (watchExperiments), and assign a task with planTask(),
 * a pure function of the snapshot and the task.
 */
import type Redis from "ioredis";
import { AppError } from "../errors";
import type { Logger } from "../log";
import { defineScript, execChecked } from "../redis/script";

export const EXPERIMENT_KEYS = {
  prompts: "prompts:versions",
  promptSeq: "prompts:next",
  experiments: "experiments:defs",
  defaults: "experiments:defaults",
  rev: "experiments:rev",
} as const;

export const EXPERIMENT_STATUSES = ["running", "paused", "ended"] as const;
export type ExperimentStatus = (typeof EXPERIMENT_STATUSES)[number];
/** What decides the winner: mean feedback rating (higher is better), share judged correct, failure rate, mean latency or cost (lower is better). */
export const PRIMARY_METRICS = ["rating", "correct", "failure_rate", "latency", "cost"] as const;
export type PrimaryMetric = (typeof PRIMARY_METRICS)[number];

export interface Variant {
  name: string;
  /** Relative share of the experiment's traffic (weights need not sum to 1). */
  weight: number;
  /** The prompt version its tasks get (0: the deployment's own prompt). */
  prompt_version: number;
  /** The model its tasks get; absent: the task type's route, as outside the experiment. */
  model?: string;
  added_at: number;
  /** Where it came from when not from the experiment's creation, e.g. `fine-tune:{id}`. */
  source?: string;
}

export interface Experiment {
  id: string;
  task_type: string;
  status: ExperimentStatus;
  variants: Variant[];
  /** The significance level of the report's tests (its intervals are at 1 - this). */
  significance_level: number;
  primary_metric: PrimaryMetric;
  description?: string;
  created_at: number;
  created_by: string;
  updated_at: number;
  ended_at?: number;
  /** The variant that became the task type's default when it ended; null: it ended with none. */
  winner?: string | null;
  /** Why the winner was (or was not) chosen, in a sentence. */
  outcome?: string;
}

export interface PromptVersion {
  task_type: string;
  version: number;
  prompt: string;
  created_at: number;
  created_by: string;
  note?: string;
}

/** What a task type uses outside any experiment, once an experiment's winner set it. */
export interface TaskDefault {
  task_type: string;
  prompt_version: number;
  model?: string;
  experiment_id: string;
  variant: string;
  at: number;
  by: string;
}

const promptField = (taskType: string, version: number) => `${taskType}:${version}`;
const isActive = (e: Experiment) => e.status !== "ended";

/*
 * KEYS[1] experiments:defs   KEYS[2] experiments:rev   KEYS[3] experiments:defaults
 * ARGV[1] id   ARGV[2] the JSON it was read as ("" for a new one)   ARGV[3] its new JSON
 * ARGV[4] task type whose default to set ("" for none)   ARGV[5] that default's JSON
 * A new experiment is refused (returns "active:{id}") while another of its task type is running or paused;
 * a changed one whose stored JSON is not ARGV[2] returns "stale". Else "ok".
 */
const SAVE = defineScript<string>(
  "experimentSave",
  `
local current = redis.call("HGET", KEYS[1], ARGV[1])
if ARGV[2] == "" then
  if current then return "exists" end
  local incoming = cjson.decode(ARGV[3])
  for _, raw in ipairs(redis.call("HVALS", KEYS[1])) do
    local other = cjson.decode(raw)
    if other.task_type == incoming.task_type and other.status ~= "ended" then return "active:" .. other.id end
  end
elseif current ~= ARGV[2] then
  return "stale"
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] ~= "" then redis.call("HSET", KEYS[3], ARGV[4], ARGV[5]) end
redis.call("INCR", KEYS[2])
return "ok"
`,
);

/*
 * KEYS[1] prompts:versions   KEYS[2] prompts:next   KEYS[3] experiments:rev
 * ARGV[1] task type   ARGV[2] the version's JSON without its number
 */
const ADD_PROMPT = defineScript<number>(
  "promptAdd",
  `
local version = redis.call("HINCRBY", KEYS[2], ARGV[1], 1)
local entry = cjson.decode(ARGV[2])
entry.version = version
redis.call("HSET", KEYS[1], ARGV[1] .. ":" .. version, cjson.encode(entry))
redis.call("INCR", KEYS[3])
return version
`,
);

function parseJson<T>(raw: string | undefined | null): T | undefined {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    // A hand-edited field must not stop every worker's snapshot: it is skipped.
    return undefined;
  }
}

export function notFound(id: string): AppError {
  return new AppError("EXPERIMENT_NOT_FOUND", `no experiment with id '${id}'`, { status: 404 });
}

export interface ExperimentStore {
  addPrompt(taskType: string, prompt: string, by: string, note?: string): Promise<PromptVersion>;
  prompts(taskType: string): Promise<PromptVersion[]>;
  prompt(taskType: string, version: number): Promise<PromptVersion | undefined>;
  create(experiment: Experiment): Promise<Experiment>;
  get(id: string): Promise<Experiment | undefined>;
  list(): Promise<Experiment[]>;
  /** The running or paused experiment of a task type. */
  activeFor(taskType: string): Promise<Experiment | undefined>;
  /**
   * Applies `change` to the stored experiment and saves it, retrying on a
   * concurrent change; `setDefault` (from the changed experiment) is written
   * in the same script. Throws EXPERIMENT_NOT_FOUND.
   */
  update(
    id: string,
    change: (current: Experiment) => Experiment,
    setDefault?: (changed: Experiment) => TaskDefault | undefined,
  ): Promise<Experiment>;
  defaults(): Promise<Map<string, TaskDefault>>;
}

export function createExperimentStore(redis: Redis): ExperimentStore {
  const K = EXPERIMENT_KEYS;
  const saveKeys = [K.experiments, K.rev, K.defaults];
  const all = async () => {
    const hash = await redis.hgetall(K.experiments);
    return Object.values(hash)
      .map((raw) => parseJson<Experiment>(raw))
      .filter((e): e is Experiment => e !== undefined)
      .sort((a, b) => b.created_at - a.created_at);
  };
  return {
    async addPrompt(taskType, prompt, by, note) {
      const entry = { task_type: taskType, prompt, created_at: Date.now(), created_by: by, ...(note ? { note } : {}) };
      const version = await ADD_PROMPT.run(redis, [K.prompts, K.promptSeq, K.rev], [taskType, JSON.stringify(entry)]);
      return { ...entry, version };
    },
    async prompts(taskType) {
      const last = Number((await redis.hget(K.promptSeq, taskType)) ?? 0);
      if (last === 0) return [];
      const fields = Array.from({ length: last }, (_, i) => promptField(taskType, i + 1));
      const raws = await redis.hmget(K.prompts, ...fields);
      return raws.map((raw) => parseJson<PromptVersion>(raw)).filter((p): p is PromptVersion => p !== undefined);
    },
    async prompt(taskType, version) {
      return parseJson<PromptVersion>(await redis.hget(K.prompts, promptField(taskType, version)));
    },
    async create(experiment) {
      const outcome = await SAVE.run(redis, saveKeys, [experiment.id, "", JSON.stringify(experiment), "", ""]);
      if (outcome === "exists")
        throw new AppError("EXPERIMENT_EXISTS", `an experiment with id '${experiment.id}' exists`, { status: 409 });
      if (outcome.startsWith("active:")) {
        const other = outcome.slice("active:".length);
        throw new AppError(
          "EXPERIMENT_ACTIVE",
          `task type '${experiment.task_type}' already has experiment '${other}' running or paused: end it first`,
          { status: 409, details: { experiment_id: other } },
        );
      }
      return experiment;
    },
    async get(id) {
      return parseJson<Experiment>(await redis.hget(K.experiments, id));
    },
    list: all,
    async activeFor(taskType) {
      return (await all()).find((e) => e.task_type === taskType && isActive(e));
    },
    async update(id, change, setDefault) {
      for (let attempt = 0; attempt < 20; attempt++) {
        const raw = await redis.hget(K.experiments, id);
        const current = parseJson<Experiment>(raw);
        if (!raw || !current) throw notFound(id);
        const changed = { ...change(current), updated_at: Date.now() };
        const fallback = setDefault?.(changed);
        const args = [id, raw, JSON.stringify(changed), fallback?.task_type ?? "", JSON.stringify(fallback ?? {})];
        if ((await SAVE.run(redis, saveKeys, args)) === "ok") return changed;
      }
      throw new AppError("EXPERIMENT_BUSY", `experiment '${id}' kept changing under this request; try again`, {
        status: 409,
        retriable: true,
      });
    },
    async defaults() {
      const hash = await redis.hgetall(K.defaults);
      const out = new Map<string, TaskDefault>();
      for (const [taskType, raw] of Object.entries(hash)) {
        const entry = parseJson<TaskDefault>(raw);
        if (entry) out.set(taskType, entry);
      }
      return out;
    },
  };
}

/** What a worker knows of experiments and prompt versions: a snapshot, re-read within a second of a change. */
export interface ExperimentSnapshot {
  /** The running or paused experiment of each task type. */
  active: ReadonlyMap<string, Experiment>;
  /** Prompt texts by `{task_type}:{version}` (versions 1..). */
  prompts: ReadonlyMap<string, string>;
  defaults: ReadonlyMap<string, TaskDefault>;
}

export const EMPTY_SNAPSHOT: ExperimentSnapshot = { active: new Map(), prompts: new Map(), defaults: new Map() };

export async function readSnapshot(redis: Redis): Promise<ExperimentSnapshot> {
  const K = EXPERIMENT_KEYS;
  const [experiments, prompts, defaults] = (await execChecked(
    redis.pipeline().hgetall(K.experiments).hgetall(K.prompts).hgetall(K.defaults),
  )) as Record<string, string>[];
  const active = new Map<string, Experiment>();
  for (const raw of Object.values(experiments ?? {})) {
    const e = parseJson<Experiment>(raw);
    if (e && isActive(e)) active.set(e.task_type, e);
  }
  const texts = new Map<string, string>();
  for (const [field, raw] of Object.entries(prompts ?? {})) {
    const p = parseJson<PromptVersion>(raw);
    if (p) texts.set(field, p.prompt);
  }
  const byType = new Map<string, TaskDefault>();
  for (const [taskType, raw] of Object.entries(defaults ?? {})) {
    const d = parseJson<TaskDefault>(raw);
    if (d) byType.set(taskType, d);
  }
  return { active, prompts: texts, defaults: byType };
}

export interface ExperimentWatch {
  current(): ExperimentSnapshot;
  /** Reads the revision now, and the snapshot if it changed. */
  refresh(): Promise<ExperimentSnapshot>;
  stop(): void;
}

/**
 * Keeps a snapshot that follows Redis: every `intervalMs` one GET of the
 * revision counter, and the three hashes only when it moved. A failed read
 * keeps the last snapshot (an outage must not drop a running experiment's
 * assignments) and is logged once per outage.
 */
export function watchExperiments(deps: { redis: Redis; logger: Logger; intervalMs?: number }): ExperimentWatch {
  const { redis, logger, intervalMs = 1000 } = deps;
  let snapshot = EMPTY_SNAPSHOT;
  let seen: string | null | undefined;
  let failing = false;
  const refresh = async () => {
    try {
      const rev = await redis.get(EXPERIMENT_KEYS.rev);
      if (rev !== seen) {
        snapshot = rev === null ? EMPTY_SNAPSHOT : await readSnapshot(redis);
        seen = rev;
      }
      failing = false;
    } catch (error) {
      if (!failing) logger.warn({ err: error }, "could not read experiments; keeping the last snapshot");
      failing = true;
    }
    return snapshot;
  };
  const timer = setInterval(() => void refresh(), intervalMs);
  timer.unref();
  return { current: () => snapshot, refresh, stop: () => clearInterval(timer) };
}

/** A uniform number in (0, 1) from a string: 53 bits of its 64-bit wyhash. */
function unitHash(text: string): number {
  return (Number(Bun.hash.wyhash(text) >> 11n) + 0.5) / 2 ** 53;
}

/**
 * The variant of `key` (a user id, else the task id), by weighted rendezvous
 * hashing: each variant scores -ln(u)/weight with u a hash of (experiment,
 * variant, key), and the lowest score wins. Each variant gets its weight's
 * share of keys, a key keeps its variant for as long as the variants and
 * weights stay, and a variant added later (a fine-tuned model at a small
 * weight) only takes keys to itself: nobody moves between the others.
 */
export function assignVariant(experiment: Pick<Experiment, "id" | "variants">, key: string): Variant | undefined {
  let best: Variant | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const variant of experiment.variants) {
    if (!(variant.weight > 0)) continue;
    const score = -Math.log(unitHash(`${experiment.id}\u0000${variant.name}\u0000${key}`)) / variant.weight;
    if (score < bestScore) {
      bestScore = score;
      best = variant;
    }
  }
  return best;
}

/** How a task is run: its system prompt and model when they differ from the deployment's, and its experiment. */
export interface TaskPlan {
  /** The prompt version's text; absent: the deployment's own prompt (version 0). */
  system?: string;
  /** Absent: the request's model, else the task type's route. */
  model?: string;
  prompt_version: number;
  experiment?: { id: string; variant: string };
}

/**
 * The plan of a task, from the snapshot. A task that names its own model is
 * not enrolled in an experiment (it would blur a comparison of models), but
 * gets its task type's default prompt. Absent: nothing differs from the
 * deployment's configuration.
 */
export function planTask(
  snapshot: ExperimentSnapshot,
  task: { task_id: string; task_type: string; user_id?: string | undefined; model?: string | undefined },
): TaskPlan | undefined {
  const textOf = (version: number) =>
    version === 0 ? undefined : snapshot.prompts.get(promptField(task.task_type, version));
  const experiment = snapshot.active.get(task.task_type);
  if (experiment?.status === "running" && task.model === undefined) {
    const variant = assignVariant(experiment, task.user_id ?? task.task_id);
    const system = variant ? textOf(variant.prompt_version) : undefined;
    // A prompt version the snapshot lacks (written a moment ago) would run the wrong text: not enrolled.
    if (variant && (variant.prompt_version === 0 || system !== undefined)) {
      return {
        ...(system === undefined ? {} : { system }),
        ...(variant.model ? { model: variant.model } : {}),
        prompt_version: variant.prompt_version,
        experiment: { id: experiment.id, variant: variant.name },
      };
    }
  }
  const fallback = snapshot.defaults.get(task.task_type);
  if (!fallback) return undefined;
  const system = textOf(fallback.prompt_version);
  if (fallback.prompt_version !== 0 && system === undefined) return undefined;
  return {
    ...(system === undefined ? {} : { system }),
    ...(fallback.model && task.model === undefined ? { model: fallback.model } : {}),
    prompt_version: fallback.prompt_version,
  };
}

/** A variant name from any text: lowercase, [a-z0-9_-], at most 32 characters, starting with a letter or digit. */
export function variantName(text: string): string {
  const cleaned = text
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[-_]+/, "");
  return (cleaned || "v").slice(0, 32);
}

/**
 * Puts a new model (a fine-tuned one, issue 17 §6) on live traffic at a
 * small `share` (0..1) of its task type: as a new variant of the running or
 * paused experiment (or of `experimentId`), weighted so that it gets that
 * share, or else in a new experiment against the task type's default. It
 * becomes the default only if it wins that experiment. Idempotent per
 * `source`: a second call returns the first registration.
 */
export async function registerModelVariant(
  store: ExperimentStore,
  input: {
    taskType: string;
    model: string;
    share: number;
    /** Where the model comes from (`fine-tune:{id}`): kept on the variant, and what makes a second call a no-op. */
    source: string;
    /** The variant's name; absent: made from the source. */
    name?: string;
    by: string;
    experimentId?: string;
  },
): Promise<{ experiment_id: string; variant: string }> {
  // Called again for the same source (a follower that died after registering): the first registration stands.
  for (const e of await store.list()) {
    const done = e.variants.find((v) => v.source === input.source);
    if (done) return { experiment_id: e.id, variant: done.name };
  }
  const share = Math.min(0.9, Math.max(0.001, input.share));
  const now = Date.now();
  const fallback = (await store.defaults()).get(input.taskType);
  const promptVersion = fallback?.prompt_version ?? 0;
  const existing = input.experimentId ? await store.get(input.experimentId) : await store.activeFor(input.taskType);
  if (input.experimentId && !existing) throw notFound(input.experimentId);
  if (existing && existing.task_type !== input.taskType)
    throw new AppError(
      "EXPERIMENT_TASK_TYPE",
      `experiment '${existing.id}' is of task type '${existing.task_type}', not '${input.taskType}'`,
      { status: 422 },
    );
  if (existing && existing.status !== "ended") {
    const base = variantName(input.name ?? input.source);
    let name = base;
    for (let i = 2; existing.variants.some((v) => v.name === name); i++)
      name = variantName(`${base.slice(0, 28)}-${i}`);
    const chosen = name;
    await store.update(existing.id, (e) => {
      const total = e.variants.reduce((sum, v) => sum + v.weight, 0);
      const weight = (share * total) / (1 - share);
      return {
        ...e,
        variants: [
          ...e.variants,
          {
            name: chosen,
            weight,
            prompt_version: promptVersion,
            model: input.model,
            added_at: now,
            source: input.source,
          },
        ],
      };
    });
    return { experiment_id: existing.id, variant: chosen };
  }
  const id = variantName(`${input.taskType.replaceAll("_", "-")}-${now.toString(36)}`);
  const variant = variantName(input.name ?? input.source);
  await store.create({
    id,
    task_type: input.taskType,
    status: "running",
    variants: [
      {
        name: "current",
        weight: 1 - share,
        prompt_version: promptVersion,
        ...(fallback?.model ? { model: fallback.model } : {}),
        added_at: now,
      },
      {
        name: variant,
        weight: share,
        prompt_version: promptVersion,
        model: input.model,
        added_at: now,
        source: input.source,
      },
    ],
    significance_level: 0.05,
    primary_metric: "rating",
    description: `${input.model} (${input.source}) against what ${input.taskType} runs today`,
    created_at: now,
    created_by: input.by,
    updated_at: now,
  });
  return { experiment_id: id, variant };
}
