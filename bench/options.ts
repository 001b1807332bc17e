/**
 * `bun bench` flags: parsed strictly (an unknown flag or a bad value is a
 * UsageError naming the flag, exit code 2), never replaced by a default.
 */
import { parseArgs } from "node:util";
import { parseLatency } from "../src/util/latency";

export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A service the scenario needs is not running: exit 2, with how to start it. */
export class MissingServiceError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "MissingServiceError";
  }
}

export type LoadMode = "open" | "closed" | "step";
export type LlmChoice = "simulated" | "mock";

export interface StepPlan {
  start: number;
  max: number;
  increment: number;
}

export interface BenchOptions {
  mode: LoadMode;
  rate: number;
  durationMs: number;
  warmupMs: number;
  connections: number;
  concurrency: number;
  timeoutMs: number;
  steps: StepPlan;
  p99TargetMs: number;
  /** A running deployment; undefined: the harness starts the app itself. */
  url: string | undefined;
  /** Process (tree) of the system under test to sample, when --url is given. */
  pid: number | undefined;
  brokers: string[];
  redisUrl: string;
  llm: LlmChoice;
  /** LLM latency for the app the harness starts: "50", "20-80" or "lognormal:1000:4000" (ms); before the first token of a streamed answer. */
  latency: string;
  /** LLM_RATE_LIMIT of the app the harness starts, e.g. 2000/1s; undefined: none. */
  rateLimit: string | undefined;
  /** LLM_RATE_BURST of the app the harness starts; undefined: the app's default (0). */
  rateBurst: number | undefined;
  /** WORKER_JOBS_PER_PROCESS of the app the harness starts: auto or a number; undefined: the app's default. */
  jobsPerProcess: string | undefined;
  /** Streamed answers (`stream`): tokens per answer, and ms between two (the mock server's, or the simulated provider's). */
  tokens: number;
  tokenLatencyMs: number;
  workers: string;
  text: string;
  taskType: string;
  /** `cache`: shares of requests repeating a sent text, near-duplicating one, or new. */
  cacheMix: { exact: number; near: number; unique: number };
  waitMs: number;
  /** `cache-quality`: the embedder the pairs go through. */
  embeddings: "local" | "simulated";
  /** `cache-quality`: at most this many pairs, spread over the set (undefined: all). */
  limit: number | undefined;
  /** `cache-quality`: print the threshold per task type for CACHE_SIMILARITY_THRESHOLDS. */
  calibrate: boolean;
  /** `cache-quality`: the cache module directly, the app over HTTP (A then B as tasks), or both. */
  qualityPath: "module" | "http" | "both";
  /** `events`: SSE subscribers held open during the middle part. */
  subscribers: number;
  /** `events`: also measure a client that reads nothing, with how long and how many completions. */
  slowClient: boolean;
  slowSeconds: number;
  slowEvents: number;
  /** Redis commands, round trips (reads) and CPU per task over the measured part, from INFO (http, e2e, kafka). */
  redisStats: boolean;
  /** Directory where the app the harness starts (and each of its worker processes) writes a CPU profile on exit. */
  cpuProf: string | undefined;
  outDir: string;
  name: string | undefined;
  quiet: boolean;
}

export const DEFAULTS = {
  mode: "open",
  rate: "1000",
  duration: "10s",
  warmup: "2s",
  connections: "256",
  concurrency: "64",
  timeout: "5s",
  steps: "1000:30000:1000",
  "p99-target": "10",
  brokers: "127.0.0.1:9092",
  "redis-url": "redis://127.0.0.1:6379/6",
  llm: "simulated",
  latency: "50",
  tokens: "100",
  "token-latency": "5",
  workers: "2",
  text: "The delivery was fast and the product works well, but the manual is confusing.",
  "task-type": "sentiment_analysis",
  mix: "exact=0.4,near=0.3,unique=0.3",
  wait: "30s",
  embeddings: "local",
  path: "module",
  subscribers: "1000",
  "slow-seconds": "60",
  "slow-events": "10000",
  out: "bench/results",
} as const;

/**
 * What the `console` scenario changes of DEFAULTS when the flag is not given: a steady 10,000 events a minute
 * for 10 minutes, after a warm-up long enough for the page to open and fill its charts' first points.
 */
export const CONSOLE_DEFAULTS = {
  rate: String(10_000 / 60),
  duration: "10m",
  warmup: "10s",
} as const;

const FLAGS = {
  mode: { type: "string", default: DEFAULTS.mode },
  // Their defaults depend on the scenario (CONSOLE_DEFAULTS): applied after parsing.
  rate: { type: "string" },
  duration: { type: "string" },
  warmup: { type: "string" },
  connections: { type: "string", default: DEFAULTS.connections },
  concurrency: { type: "string", default: DEFAULTS.concurrency },
  timeout: { type: "string", default: DEFAULTS.timeout },
  steps: { type: "string", default: DEFAULTS.steps },
  "p99-target": { type: "string", default: DEFAULTS["p99-target"] },
  url: { type: "string" },
  pid: { type: "string" },
  brokers: { type: "string", default: DEFAULTS.brokers },
  "redis-url": { type: "string", default: DEFAULTS["redis-url"] },
  llm: { type: "string", default: DEFAULTS.llm },
  latency: { type: "string", default: DEFAULTS.latency },
  "rate-limit": { type: "string" },
  "rate-burst": { type: "string" },
  "jobs-per-process": { type: "string" },
  tokens: { type: "string", default: DEFAULTS.tokens },
  "token-latency": { type: "string", default: DEFAULTS["token-latency"] },
  workers: { type: "string", default: DEFAULTS.workers },
  text: { type: "string", default: DEFAULTS.text },
  "task-type": { type: "string", default: DEFAULTS["task-type"] },
  mix: { type: "string", default: DEFAULTS.mix },
  wait: { type: "string", default: DEFAULTS.wait },
  embeddings: { type: "string", default: DEFAULTS.embeddings },
  limit: { type: "string" },
  calibrate: { type: "boolean", default: false },
  path: { type: "string", default: DEFAULTS.path },
  subscribers: { type: "string", default: DEFAULTS.subscribers },
  "slow-client": { type: "boolean", default: false },
  "slow-seconds": { type: "string", default: DEFAULTS["slow-seconds"] },
  "slow-events": { type: "string", default: DEFAULTS["slow-events"] },
  "redis-stats": { type: "boolean", default: false },
  "cpu-prof": { type: "string" },
  out: { type: "string", default: DEFAULTS.out },
  name: { type: "string" },
  quiet: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** "10s", "500ms", "2m", or a bare number of seconds. */
export function parseDuration(flag: string, value: string, allowZero = false): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!match) throw new UsageError(`--${flag} "${value}": expected a duration such as 10s, 500ms or 2m`);
  const ms = Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[(match[2] ?? "s") as "ms" | "s" | "m"];
  if (ms === 0 && !allowZero) throw new UsageError(`--${flag} "${value}": must be greater than 0`);
  return ms;
}

/** A number of ms, 0 allowed (a bare number: --latency's unit). */
function parseMs(flag: string, value: string): number {
  if (!/^\d{1,6}(\.\d+)?$/.test(value)) throw new UsageError(`--${flag} "${value}": expected ms, e.g. 5 or 0`);
  return Number(value);
}

export function parsePositive(flag: string, value: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0) || n > max) {
    throw new UsageError(
      `--${flag} "${value}": expected a number greater than 0${max < Number.MAX_SAFE_INTEGER ? ` and at most ${max}` : ""}`,
    );
  }
  return n;
}

function parseInteger(flag: string, value: string, max: number): number {
  const n = parsePositive(flag, value, max);
  if (!Number.isInteger(n)) throw new UsageError(`--${flag} "${value}": expected a whole number`);
  return n;
}

function parseSteps(value: string): StepPlan {
  const match = /^(\d+):(\d+):(\d+)$/.exec(value);
  const [start, max, increment] = match ? [Number(match[1]), Number(match[2]), Number(match[3])] : [0, 0, 0];
  if (!match || start <= 0 || increment <= 0 || max < start) {
    throw new UsageError(`--steps "${value}": expected start:max:increment in requests/s, e.g. 1000:30000:1000`);
  }
  return { start, max, increment };
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} "${value}": expected one of ${allowed.join(", ")}`);
  }
  return value as T;
}

export interface ParsedCommand {
  positionals: string[];
  help: boolean;
  options: BenchOptions;
}

export function parseCommand(argv: readonly string[]): ParsedCommand {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: FLAGS, allowPositionals: true, strict: true });
  } catch (error) {
    // node's messages name the flag ("Unknown option '--rat'"); keep them, add the way out.
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}. See \`bun bench --help\`.`);
  }
  const v = parsed.values;
  const defaults = parsed.positionals[0] === "console" ? CONSOLE_DEFAULTS : DEFAULTS;
  const rate = v.rate ?? defaults.rate;
  const duration = v.duration ?? defaults.duration;
  const warmup = v.warmup ?? defaults.warmup;
  const url = v.url;
  if (url !== undefined && !/^http:\/\/[^/]+(:\d+)?\/?$/.test(url)) {
    throw new UsageError(
      `--url "${url}": expected http://host:port (the API's base URL, no path; https is not supported)`,
    );
  }
  if (!/^rediss?:\/\//.test(v["redis-url"]))
    throw new UsageError(`--redis-url "${v["redis-url"]}": expected redis://host:port/db`);
  if (!parseLatency(v.latency))
    throw new UsageError(
      `--latency "${v.latency}": expected ms, fixed (50), a range (20-80) or log-normal lognormal:MEDIAN:P99 (lognormal:1000:4000)`,
    );
  const rateLimit = v["rate-limit"];
  if (rateLimit !== undefined && !/^[1-9]\d*\/[1-9]\d*(ms|s|m|h)$/.test(rateLimit))
    throw new UsageError(`--rate-limit "${rateLimit}": expected calls/period, such as 2000/1s`);
  const jobsPerProcess = v["jobs-per-process"];
  if (jobsPerProcess !== undefined && !/^(auto|[1-9]\d{0,3}|10000)$/.test(jobsPerProcess))
    throw new UsageError(`--jobs-per-process "${jobsPerProcess}": expected auto or 1..10000`);
  if (!/^(auto|[1-9]\d{0,2})$/.test(v.workers))
    throw new UsageError(`--workers "${v.workers}": expected 1..999 or auto`);
  if (!/^[a-z_]+$/.test(v["task-type"]))
    throw new UsageError(`--task-type "${v["task-type"]}": expected lowercase letters and _`);
  if (v.text.length === 0) throw new UsageError("--text: must not be empty");
  if (v["cpu-prof"] !== undefined && (v["cpu-prof"] === "" || url !== undefined))
    throw new UsageError(`--cpu-prof: expected a directory, and the app the harness starts (not --url)`);
  const brokers = v.brokers.split(",");
  if (!brokers.every((b) => /^[\w.-]+:\d{1,5}$/.test(b)))
    throw new UsageError(`--brokers "${v.brokers}": expected host:port[,host:port]`);
  return {
    positionals: parsed.positionals,
    help: v.help,
    options: {
      mode: oneOf("mode", v.mode, ["open", "closed", "step"] as const),
      rate: parsePositive("rate", rate, 1_000_000),
      durationMs: parseDuration("duration", duration),
      warmupMs: parseDuration("warmup", warmup, true),
      connections: parseInteger("connections", v.connections, 10_000),
      concurrency: parseInteger("concurrency", v.concurrency, 10_000),
      timeoutMs: parseDuration("timeout", v.timeout),
      steps: parseSteps(v.steps),
      p99TargetMs: parsePositive("p99-target", v["p99-target"]),
      url: url?.replace(/\/$/, ""),
      pid: v.pid === undefined ? undefined : parseInteger("pid", v.pid, 4_194_304),
      brokers,
      redisUrl: v["redis-url"],
      llm: oneOf("llm", v.llm, ["simulated", "mock"] as const),
      latency: v.latency,
      rateLimit,
      rateBurst:
        v["rate-burst"] === undefined || v["rate-burst"] === "0"
          ? undefined
          : parseInteger("rate-burst", v["rate-burst"], 1_000_000),
      jobsPerProcess,
      tokens: parseInteger("tokens", v.tokens, 4000),
      tokenLatencyMs: parseMs("token-latency", v["token-latency"]),
      workers: v.workers,
      text: v.text,
      taskType: v["task-type"],
      cacheMix: parseMix(v.mix),
      waitMs: parseDuration("wait", v.wait),
      embeddings: oneOf("embeddings", v.embeddings, ["local", "simulated"] as const),
      limit: v.limit === undefined ? undefined : parseInteger("limit", v.limit, 1_000_000),
      calibrate: v.calibrate,
      qualityPath: oneOf("path", v.path, ["module", "http", "both"] as const),
      subscribers: parseInteger("subscribers", v.subscribers, 100_000),
      slowClient: v["slow-client"],
      slowSeconds: parseInteger("slow-seconds", v["slow-seconds"], 3600),
      slowEvents: parseInteger("slow-events", v["slow-events"], 10_000_000),
      redisStats: v["redis-stats"],
      cpuProf: v["cpu-prof"],
      outDir: v.out,
      name: v.name,
      quiet: v.quiet,
    },
  };
}

/** "exact=0.4,near=0.3,unique=0.3": shares of the `cache` scenario's requests; they must add up to 1. */
function parseMix(value: string): BenchOptions["cacheMix"] {
  const mix = { exact: 0, near: 0, unique: 0 };
  for (const part of value.split(",")) {
    const match = /^(exact|near|unique)=(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!match) throw new UsageError(`--mix "${value}": expected exact=S,near=S,unique=S with shares adding up to 1`);
    mix[match[1] as keyof typeof mix] = Number(match[2]);
  }
  const total = mix.exact + mix.near + mix.unique;
  if (Math.abs(total - 1) > 1e-9) throw new UsageError(`--mix "${value}": the shares add up to ${total}, not 1`);
  return mix;
}
