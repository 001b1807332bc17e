/**
 * The operator console's arithmetic, with no DOM: rates from successive
 * /metrics snapshots, sentiment labels from results, per-minute buckets.
 * The page loads it as an ES module (dashboard.ts transpiles it once at
 * start, no build step); the unit tests import it as it is.
 *
 * The snapshot's counters are totals since the deployment's Redis was new,
 * so a rate is a difference of two snapshots over their time apart. The
 * console keeps the last minutes of snapshots and measures per-second rates
 * over the last two and per-minute ones over the last 60 s (or what it has,
 * scaled up, in the first minute).
 */

/** The fields of a /metrics snapshot the console reads. */
export interface Sample {
  /** ms, the browser's clock when the snapshot arrived. */
  at: number;
  total_tasks: number;
  completed_tasks: number;
  failed_tasks: number;
  retried_tasks: number;
  started_tasks: number;
  latency_ms: { p50: number; p95: number; p99: number };
  llm: { calls: number; prompt_tokens: number; completion_tokens: number };
}

export interface Prices {
  /** USD per million prompt tokens. */
  input: number;
  /** USD per million completion tokens. */
  output: number;
}

export interface Rates {
  accepted_per_s: number;
  completed_per_s: number;
  failed_per_s: number;
  /** failed / ended over the window; 0 when nothing ended. */
  failure_rate: number;
  /** retries / attempts started over the window; 0 when none started. */
  retry_rate: number;
  llm_calls_per_min: number;
  tokens_per_min: number;
  /** undefined without prices. */
  cost_usd_per_min: number | undefined;
}

const perSecond = (delta: number, ms: number) => (ms > 0 ? (delta * 1000) / ms : 0);
const ratio = (part: number, whole: number) => (whole > 0 ? part / whole : 0);

/** The sample `windowMs` before the last, or the oldest one kept. */
function baseOf<T extends { at: number }>(samples: readonly T[], windowMs: number): T | undefined {
  const last = samples[samples.length - 1];
  if (!last) return undefined;
  let base: T | undefined;
  for (let i = samples.length - 2; i >= 0; i--) {
    const sample = samples[i] as T;
    base = sample;
    if (last.at - sample.at >= windowMs) break;
  }
  return base;
}

/**
 * Rates over the kept samples, oldest first: per second over the last ~2 s,
 * per minute over the last 60 s. A counter that went down (Redis emptied)
 * counts as 0, not as a negative rate. Undefined with fewer than two samples.
 */
export function ratesOf(samples: readonly Sample[], prices?: Prices): Rates | undefined {
  const last = samples[samples.length - 1];
  const recent = baseOf(samples, 2000);
  const minute = baseOf(samples, 60_000);
  if (!last || !recent || !minute) return undefined;
  const d = (a: Sample, pick: (s: Sample) => number) => Math.max(0, pick(last) - pick(a));
  const recentMs = last.at - recent.at;
  const minuteMs = last.at - minute.at;
  const completed = d(minute, (s) => s.completed_tasks);
  const failed = d(minute, (s) => s.failed_tasks);
  const prompt = d(minute, (s) => s.llm.prompt_tokens);
  const completion = d(minute, (s) => s.llm.completion_tokens);
  const perMinute = (delta: number) => perSecond(delta, minuteMs) * 60;
  return {
    accepted_per_s: perSecond(
      d(recent, (s) => s.total_tasks),
      recentMs,
    ),
    completed_per_s: perSecond(
      d(recent, (s) => s.completed_tasks),
      recentMs,
    ),
    failed_per_s: perSecond(
      d(recent, (s) => s.failed_tasks),
      recentMs,
    ),
    failure_rate: ratio(failed, completed + failed),
    retry_rate: ratio(
      d(minute, (s) => s.retried_tasks),
      d(minute, (s) => s.started_tasks),
    ),
    llm_calls_per_min: perMinute(d(minute, (s) => s.llm.calls)),
    tokens_per_min: perMinute(prompt + completion),
    cost_usd_per_min: prices ? perMinute((prompt * prices.input + completion * prices.output) / 1e6) : undefined,
  };
}

export type Label = "positive" | "neutral" | "negative";
export const LABELS: readonly Label[] = ["positive", "neutral", "negative"];

/**
 * The label a sentiment answer starts with ("positive (confidence 0.70; …)",
 * llm/simulated-provider.ts; a model is prompted to answer the same way), in
 * any case, before any punctuation. Anything else is undefined: the console
 * counts it as unlabelled rather than guessing.
 */
export function labelOf(result: unknown): Label | undefined {
  const text =
    typeof result === "string"
      ? result
      : result && typeof result === "object" && typeof (result as { response?: unknown }).response === "string"
        ? (result as { response: string }).response
        : undefined;
  const word = text
    ?.trimStart()
    .match(/^[A-Za-z]+/)?.[0]
    ?.toLowerCase();
  return LABELS.find((label) => label === word);
}

export interface MinuteCounts {
  /** ms, the minute's start. */
  minute: number;
  positive: number;
  neutral: number;
  negative: number;
}

/** Adds one label at `at` (ms) to per-minute buckets, newest last, keeping at most `keep` minutes. */
export function countLabel(buckets: MinuteCounts[], label: Label, at: number, keep = 10): MinuteCounts[] {
  const minute = Math.floor(at / 60_000) * 60_000;
  let bucket = buckets.find((b) => b.minute === minute);
  if (!bucket) {
    bucket = { minute, positive: 0, neutral: 0, negative: 0 };
    buckets.push(bucket);
    buckets.sort((a, b) => a.minute - b.minute);
    while (buckets.length > keep) buckets.shift();
  }
  bucket[label]++;
  return buckets;
}

/** An SVG polyline's points for `values` in a width × height box, 0 at the bottom, `max` at the top. */
export function polylinePoints(values: readonly number[], width: number, height: number, max: number): string {
  if (values.length === 0) return "";
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const top = max > 0 ? max : 1;
  return values
    .map((value, i) => `${(i * step).toFixed(1)},${(height - (Math.min(value, top) / top) * height).toFixed(1)}`)
    .join(" ");
}

/** The states of a queue the console shows, in the order of GET /metrics's `queues`. */
export const QUEUE_STATES = ["waiting", "active", "delayed", "failed"] as const;
export type QueueState = (typeof QUEUE_STATES)[number];
export type QueueDepths = Record<QueueState, number> & { accepted?: number };

/** A sample that may carry the snapshot's queue depths. */
export interface QueueSample {
  at: number;
  queues?: Record<string, QueueDepths>;
}

/**
 * Each state's depth over the kept samples, oldest first, for one queue's
 * sparkline: a sample without that queue counts as 0 (the queue was empty or
 * not reported yet), so every series has one value per sample.
 */
export function queueSeries(samples: readonly QueueSample[], queue: string): Record<QueueState, number[]> {
  const series = { waiting: [], active: [], delayed: [], failed: [] } as Record<QueueState, number[]>;
  for (const sample of samples) {
    const depths = sample.queues?.[queue];
    for (const state of QUEUE_STATES) series[state].push(depths?.[state] ?? 0);
  }
  return series;
}

/** Tasks accepted into `queue` per second over the last ~2 s (its `accepted` counter); undefined with fewer than two samples. */
export function queueAcceptedPerSecond(samples: readonly QueueSample[], queue: string): number | undefined {
  const last = samples[samples.length - 1];
  const base = baseOf(samples, 2000);
  if (!last || !base) return undefined;
  const delta = Math.max(0, (last.queues?.[queue]?.accepted ?? 0) - (base.queues?.[queue]?.accepted ?? 0));
  return perSecond(delta, last.at - base.at);
}

/** The fields of a GET /workers entry the console reads. */
export interface WorkerEntry {
  id: string;
  pid: number;
  started_at: string;
  last_seen: string;
}

export interface WorkerAges {
  /** ms since the process started, by the server's clock. */
  uptime_ms: number;
  /** ms since its last heartbeat, by the server's clock. */
  heartbeat_age_ms: number;
  /** No heartbeat for more than twice the interval: the process is late, hung or gone (its entry expires at 3×). */
  stale: boolean;
}

/**
 * A worker's uptime and heartbeat age at `now` (ms, the server's clock when
 * it listed the workers, so a skewed browser clock does not matter), and
 * whether it is stale. Negative ages (a beat landed after `now` was read)
 * count as 0.
 */
export function workerAges(worker: WorkerEntry, now: number, heartbeatMs: number): WorkerAges {
  const age = Math.max(0, now - Date.parse(worker.last_seen));
  return {
    uptime_ms: Math.max(0, now - Date.parse(worker.started_at)),
    heartbeat_age_ms: age,
    stale: age > 2 * heartbeatMs,
  };
}

/** A duration as an operator reads it: "850 ms", "42 s", "3 m 05 s", "2 h 07 m", "3 d 04 h". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${pad(s % 60)} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${pad(Math.floor(s / 60) % 60)} m`;
  return `${Math.floor(s / 86_400)} d ${pad(Math.floor(s / 3600) % 24)} h`;
}

/** The Tasks section's filters, as its form holds them ("" for any). */
export interface TaskFilter {
  status: string;
  task_type: string;
  queue: string;
  tenant: string;
}

/** The fields of a listed task or a completion (GET /events) the Tasks section reads. */
export interface TaskRow {
  task_id: string;
  status: string;
  tenant?: string;
  task_type?: string;
  queue?: string;
  accepted_at?: number;
  finished_at?: number;
}

/** GET /tasks's query for the filters: only those set, and the page size. */
export function tasksQuery(filter: TaskFilter, limit: number): string {
  const params = new URLSearchParams();
  for (const name of ["status", "task_type", "queue", "tenant"] as const) {
    const value = filter[name].trim();
    if (value) params.set(name, value);
  }
  params.set("limit", String(limit));
  return params.toString();
}

/** Whether a task (a live completion) belongs in the list the filters asked for. */
export function matchesTaskFilter(filter: TaskFilter, task: TaskRow): boolean {
  const is = (wanted: string, value: string | undefined) => !wanted.trim() || wanted.trim() === (value ?? "");
  return (
    is(filter.status, task.status) &&
    is(filter.task_type, task.task_type) &&
    is(filter.queue, task.queue) &&
    is(filter.tenant, task.tenant)
  );
}

/**
 * Puts a task at the top of the list (newest first), replacing its older
 * row (a PENDING task that has ended), and keeps at most `keep` rows.
 */
export function upsertTask<T extends TaskRow>(rows: readonly T[], task: T, keep: number): T[] {
  return [task, ...rows.filter((row) => row.task_id !== task.task_id)].slice(0, keep);
}

/** The fields of GET /tasks/:id the detail reads for its timings. */
export interface TaskTimes {
  accepted_at?: number;
  started_at?: number;
  finished_at?: number;
  result?: { processing_time?: number };
}

export interface TaskTimings {
  /** ms from acceptance to the last attempt's start. */
  queued_ms?: number;
  /** ms the worker spent on it (the result's processing_time). */
  processing_ms?: number;
  /** ms from acceptance to the end. */
  total_ms?: number;
}

/** A task's timings from its timestamps; each is absent where a timestamp is, never negative. */
export function taskTimings(task: TaskTimes): TaskTimings {
  const between = (from?: number, to?: number) =>
    from === undefined || to === undefined ? undefined : Math.max(0, to - from);
  const timings: TaskTimings = {};
  const queued = between(task.accepted_at, task.started_at);
  const total = between(task.accepted_at, task.finished_at);
  if (queued !== undefined) timings.queued_ms = queued;
  if (typeof task.result?.processing_time === "number") timings.processing_ms = task.result.processing_time * 1000;
  if (total !== undefined) timings.total_ms = total;
  return timings;
}

/** `text` cut to `max` characters with an ellipsis, saying how long the whole was (`of`, when known, else its own length). */
export function truncate(text: string, max: number, of = text.length): string {
  if (of <= max && text.length <= max) return text;
  return `${text.slice(0, max)}… (${of} characters)`;
}

/** The cache figures of a snapshot the Cache section reads. */
export interface CacheFigures {
  hits: number;
  misses: number;
  exact_hits: number;
  semantic_hits: number;
  single_flight_hits: number;
}

export const CACHE_TIERS = ["exact", "semantic", "single_flight"] as const;
export type CacheTier = (typeof CACHE_TIERS)[number];

/** Each tier's hits and its share of the lookups (hits + misses); 0 before any lookup. */
export function hitRatesByTier(cache: CacheFigures): Record<CacheTier, { hits: number; rate: number }> {
  const lookups = cache.hits + cache.misses;
  const of = (hits: number) => ({ hits, rate: lookups > 0 ? hits / lookups : 0 });
  return {
    exact: of(cache.exact_hits),
    semantic: of(cache.semantic_hits),
    single_flight: of(cache.single_flight_hits),
  };
}

/** A lag entry of the snapshot (`kafka.lag`, keyed `topic:partition`). */
export interface PartitionLag {
  lag: number;
  committed: string;
  at: number;
}

/** The lag entries as rows, by topic then partition number (so 10 comes after 9). */
export function partitionRows(
  lag: Record<string, PartitionLag>,
): ({ topic: string; partition: number } & PartitionLag)[] {
  return Object.entries(lag)
    .map(([key, entry]) => {
      const cut = key.lastIndexOf(":");
      return { topic: key.slice(0, cut), partition: Number(key.slice(cut + 1)), ...entry };
    })
    .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
}

/** US dollars as the console shows them: small amounts keep their significant digits. */
export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd)) return "–";
  const sign = usd < 0 ? "-" : "";
  const abs = Math.abs(usd);
  return `${sign}$${abs === 0 ? "0" : abs >= 1 ? abs.toFixed(2) : abs >= 0.01 ? abs.toFixed(4) : abs.toPrecision(2)}`;
}
