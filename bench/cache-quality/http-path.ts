/**
 * The labelled pairs through the real path: the app the harness starts (`bun
 * src/main.ts`, ROLES=api,worker, the simulated LLM at 0 ms, the configured
 * embedder), each pair as two tasks: POST A and wait for its end, then POST B
 * and read B's `result.from_cache` and `cache_tier`. Served different-answer
 * pairs are false hits, served same-answer pairs paraphrase hits.
 *
 * Pairs are kept apart by tenant: the app starts with one API key per pair
 * (API_KEYS, names p0, p1, …), and a key's name scopes the cache entries it
 * stores and finds. That is what the module path does (one tenant per pair)
 * and it keeps each pair's own task_type, so the per-type lookup is the one
 * users get. Distinct task types per pair would instead change what is
 * measured (the task type is part of the request), and running the pairs
 * one at a time would not stop B from finding an earlier pair's entry.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_PROMPTS } from "../../src/llm/prompts";
import type { BenchOptions } from "../options";
import { UsageError } from "../options";
import type { Progress } from "../progress";
import { dropCache } from "../scenarios/cache";
import { resolveTarget } from "../targets/app-target";
import { round } from "./analysis";
import type { LabelledPair } from "./pairs";

/** Pairs in flight at once: each is two tasks in a row, so about 8 tasks at a time. */
const HTTP_CONCURRENCY = 8;

export interface HttpObservation {
  pair: LabelledPair;
  /** B's result.from_cache; undefined when A or B did not end in SUCCESS. */
  served: boolean | undefined;
  tier: string | undefined;
  error?: string;
}

export interface HttpPathRun {
  target: string;
  seconds: number;
  observations: HttpObservation[];
}

interface TaskView {
  status: string;
  result?: { from_cache: boolean; cache_tier?: string };
}

const TERMINAL = new Set(["SUCCESS", "FAILURE"]);

/** POST /process, then GET /task/:id?wait= until the task ends. */
async function runTask(url: string, key: string, pair: LabelledPair, text: string, waitMs: number): Promise<TaskView> {
  const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
  const accepted = await fetch(`${url}/process`, {
    method: "POST",
    headers,
    body: JSON.stringify({ text, task_type: pair.task_type }),
  });
  if (accepted.status !== 202) throw new Error(`POST /process: HTTP ${accepted.status} ${await accepted.text()}`);
  const { task_id } = (await accepted.json()) as { task_id: string };
  for (let attempt = 0; attempt < 10; attempt++) {
    const answer = await fetch(`${url}/task/${encodeURIComponent(task_id)}?wait=${waitMs}`, { headers });
    if (answer.status !== 200) throw new Error(`GET /task: HTTP ${answer.status}`);
    const task = (await answer.json()) as TaskView;
    if (TERMINAL.has(task.status)) return task;
  }
  throw new Error(`task ${task_id} did not end`);
}

export async function runHttpPath(args: {
  pairs: readonly LabelledPair[];
  options: BenchOptions;
  progress: Progress;
  signal: AbortSignal;
  threshold: number;
}): Promise<HttpPathRun> {
  const { pairs, options, progress, signal, threshold } = args;
  if (options.url)
    throw new UsageError("cache-quality --path http|both starts its own app (one API key per pair): drop --url");
  const keys = pairs.map((_, i) => ({ name: `p${i}`, key: randomBytes(12).toString("base64url") }));
  const cacheDb = new URL(options.redisUrl);
  cacheDb.pathname = "/0"; // the Query Engine indexes database 0 only
  const prefix = `benchqualityhttp-${process.pid}`;
  // The pair set has task types the app does not know (translation): a prompts file adds them, so
  // every pair is sent with its own task_type, as the module path looks it up.
  const extraTypes = [...new Set(pairs.map((p) => p.task_type))].filter((t) => !(t in DEFAULT_PROMPTS));
  const promptsDir = mkdtempSync(join(tmpdir(), "bench-cache-quality-"));
  const promptsFile = join(promptsDir, "prompts.json");
  writeFileSync(
    promptsFile,
    JSON.stringify(Object.fromEntries(extraTypes.map((t) => [t, `Perform the task "${t}" on the text.`]))),
  );
  const target = await resolveTarget({ ...options, llm: "simulated", latency: "0" }, progress, {
    roles: "api,worker",
    env: {
      EMBEDDING_PROVIDER: options.embeddings,
      CACHE_REDIS_URL: cacheDb.toString(),
      CACHE_PREFIX: prefix,
      // The module path's settings: one threshold for every task type, the guard on.
      CACHE_SIMILARITY_THRESHOLD: String(threshold),
      CACHE_SIMILARITY_THRESHOLDS: "",
      CACHE_FALSE_HIT_GUARD: "true",
      API_KEYS: keys.map((k) => `${k.name}:${k.key}`).join(","),
      API_RATE_LIMIT: "",
      API_MAX_PENDING_TASKS: "0",
      PROMPTS_FILE: promptsFile,
    },
  }).catch((error: unknown) => {
    rmSync(promptsDir, { recursive: true, force: true });
    throw error;
  });
  const observations: HttpObservation[] = [];
  const started = performance.now();
  try {
    let next = 0;
    const worker = async () => {
      while (!signal.aborted) {
        const i = next++;
        const pair = pairs[i];
        const key = keys[i];
        if (pair === undefined || key === undefined) return;
        try {
          const a = await runTask(target.url, key.key, pair, pair.a, options.waitMs);
          if (a.status !== "SUCCESS") throw new Error(`A ended ${a.status}`);
          const b = await runTask(target.url, key.key, pair, pair.b, options.waitMs);
          if (b.status !== "SUCCESS" || !b.result) throw new Error(`B ended ${b.status}`);
          observations[i] = { pair, served: b.result.from_cache, tier: b.result.cache_tier };
        } catch (error) {
          observations[i] = { pair, served: undefined, tier: undefined, error: String(error) };
        }
        const done = observations.filter(Boolean).length;
        if (done % 64 === 0 || done === pairs.length) progress.note(`  http: ${done}/${pairs.length} pairs`);
      }
    };
    await Promise.all(Array.from({ length: HTTP_CONCURRENCY }, worker));
  } finally {
    await target.stop();
    await dropCache(cacheDb.toString(), prefix).catch(() => {});
    rmSync(promptsDir, { recursive: true, force: true });
  }
  return {
    target: `${target.describe}; EMBEDDING_PROVIDER=${options.embeddings}, CACHE_PREFIX=${prefix}, one API key per pair`,
    seconds: round((performance.now() - started) / 1000, 3),
    observations: observations.filter(Boolean),
  };
}

export interface HttpKindRow {
  kind: string;
  same: boolean;
  /** Pairs whose two tasks ended in SUCCESS. */
  pairs: number;
  /** B answered from the cache: false hits for a different-answer kind, paraphrase hits for a same-answer one. */
  served: number;
  rate: number;
  /** B's cache_tier when served: exact, semantic or single_flight. */
  tiers: Record<string, number>;
}

export interface PathAgreement {
  /** Pairs measured by both paths. */
  pairs: number;
  agree: number;
  rate: number;
  /** Pairs one path served and the other did not, with the module path's similarity (near the threshold, expectedly). */
  disagreements: {
    kind: string;
    same: boolean;
    similarity: number;
    module: boolean;
    http: boolean;
    a: string;
    b: string;
  }[];
}

export interface HttpPathReport {
  target: string;
  durationS: number;
  /** Pairs measured (both tasks ended in SUCCESS) and the pairs that failed. */
  pairs: number;
  errors: number;
  firstError?: string;
  /** The app runs with CACHE_FALSE_HIT_GUARD=true: the rates are the threshold + guard ones. */
  falseHitRate: number;
  paraphraseHitRate: number;
  kinds: HttpKindRow[];
  /** With --path both: does the app serve the pairs the module path served (guard on)? */
  agreement?: PathAgreement;
}

const share = (n: number, of: number) => (of === 0 ? 0 : round(n / of, 4));

export function httpPathReport(
  run: HttpPathRun,
  modulePath?: readonly { pair: LabelledPair; similarity: number; servedWithGuard: boolean }[],
): HttpPathReport {
  const measured = run.observations.filter((o) => o.served !== undefined);
  const failed = run.observations.filter((o) => o.served === undefined);
  const same = measured.filter((o) => o.pair.same);
  const different = measured.filter((o) => !o.pair.same);
  const kinds = [...new Set(run.observations.map((o) => o.pair.kind))].map((kind): HttpKindRow => {
    const list = measured.filter((o) => o.pair.kind === kind);
    const served = list.filter((o) => o.served);
    const tiers: Record<string, number> = {};
    for (const o of served) tiers[o.tier ?? "unknown"] = (tiers[o.tier ?? "unknown"] ?? 0) + 1;
    return {
      kind,
      same: list[0]?.pair.same ?? run.observations.find((o) => o.pair.kind === kind)?.pair.same ?? false,
      pairs: list.length,
      served: served.length,
      rate: share(served.length, list.length),
      tiers,
    };
  });
  let agreement: PathAgreement | undefined;
  if (modulePath) {
    const byPair = new Map(modulePath.map((o) => [o.pair, o]));
    const both = measured.flatMap((o) => {
      const m = byPair.get(o.pair);
      return m ? [{ http: o.served === true, module: m.servedWithGuard, similarity: m.similarity, pair: o.pair }] : [];
    });
    const agree = both.filter((o) => o.http === o.module).length;
    agreement = {
      pairs: both.length,
      agree,
      rate: share(agree, both.length),
      disagreements: both
        .filter((o) => o.http !== o.module)
        .map((o) => ({
          kind: o.pair.kind,
          same: o.pair.same,
          similarity: o.similarity,
          module: o.module,
          http: o.http,
          a: o.pair.a,
          b: o.pair.b,
        })),
    };
  }
  return {
    target: run.target,
    durationS: run.seconds,
    pairs: measured.length,
    errors: failed.length,
    ...(failed[0]?.error ? { firstError: failed[0].error } : {}),
    falseHitRate: share(different.filter((o) => o.served).length, different.length),
    paraphraseHitRate: share(same.filter((o) => o.served).length, same.length),
    kinds,
    ...(agreement ? { agreement } : {}),
  };
}
