/**
 * `bun bench cache-quality`: the labelled pairs of bench/data/cache-pairs.json
 * through the cache module itself (createCache, the real Redis and Query
 * Engine, under a prefix of its own deleted afterwards) with the configured
 * embedder. Per pair: store A's answer, look B up; served or not, by two
 * caches that differ only in the false-hit guard. Every text is embedded
 * once, in batches of 100, before any lookup (the caches read those vectors),
 * so the threshold sweep and the calibration need no further embedding call.
 *
 * Each pair gets its own tenant, so B can only find A, never another pair's
 * text: the figures are per pair, not an artefact of what else is stored.
 *
 * `--path http` sends the same pairs through the real path instead (the app
 * started here, A then B as tasks, B's from_cache and cache_tier: see
 * bench/cache-quality/http-path.ts); `--path both` runs both and says whether
 * they agree. The default, `module`, is the module path alone.
 */

import { createCache } from "../../src/cache";
import { normaliseForKey } from "../../src/cache/cache-key";
import { checkSemanticHit } from "../../src/cache/false-hit-guard";
import type { SemanticCache } from "../../src/cache/semantic-cache";
import { type Config, LOCAL_EMBEDDINGS_URL, loadConfig } from "../../src/config";
import { createEventBus } from "../../src/events";
import { createEmbedder } from "../../src/llm";
import type { ChatResult, Embedder } from "../../src/llm/provider";
import { createLogger } from "../../src/log";
import { connectRedis } from "../../src/redis/client";
import {
  calibrate,
  cosine,
  type PairObservation,
  perKind,
  round,
  sweep,
  thresholdsEnv,
} from "../cache-quality/analysis";
import { httpPathReport, runHttpPath } from "../cache-quality/http-path";
import { type LabelledPair, loadPairs, spread } from "../cache-quality/pairs";
import type { CacheQualityReport } from "../cache-quality/report";
import { type BenchOptions, MissingServiceError } from "../options";
import type { Progress } from "../progress";
import type { PartResult } from "../result";
import { dropCache } from "./cache";
import type { Scenario } from "./scenario";

/** Texts per embeddings request: about 2.8 s for the local model on one core. */
const EMBED_BATCH = 100;
/** Pairs looked up at once: enough to fill the KNN pipelines, few enough to keep Redis honest. */
const CONCURRENCY = 16;

async function ensureReachable(embedding: Config["embedding"]): Promise<void> {
  if (embedding.provider !== "local") return;
  const baseUrl = embedding.baseUrl ?? LOCAL_EMBEDDINGS_URL;
  try {
    const response = await fetch(`${baseUrl}/models`, { signal: AbortSignal.timeout(3000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
  } catch (error) {
    throw new MissingServiceError(
      `the local embedding model is not reachable at ${baseUrl} (${error instanceof Error ? error.message : String(error)}): ` +
        "start it with `bun run services:up` (or set EMBEDDING_BASE_URL), or run with --embeddings simulated",
    );
  }
}

/** Every distinct text embedded once, in batches; the caches then read these vectors. */
async function embedAll(
  embedder: Embedder,
  texts: readonly string[],
  note: (line: string) => void,
  signal: AbortSignal,
): Promise<Map<string, Float32Array>> {
  const vectors = new Map<string, Float32Array>();
  for (let start = 0; start < texts.length && !signal.aborted; start += EMBED_BATCH) {
    const batch = texts.slice(start, start + EMBED_BATCH);
    const embedded = await embedder.embed(batch);
    for (const [i, text] of batch.entries()) vectors.set(text, embedded[i] as Float32Array);
    note(`  embedded ${Math.min(texts.length, start + EMBED_BATCH)}/${texts.length} texts`);
  }
  return vectors;
}

const answer = (text: string): ChatResult => ({
  text,
  model: "bench-cache-quality",
  finishReason: "stop",
  usage: { promptTokens: 10, completionTokens: 10, totalTokens: 20 },
});

/** Stores A's answer, looks B up; true when B was served from the cache. */
async function servedFromCache(cache: SemanticCache, pair: LabelledPair, tenant: string): Promise<boolean> {
  const request = (text: string) => ({
    tenant,
    taskType: pair.task_type,
    text,
    model: "bench",
    system: "bench-cache-quality",
    temperature: 0,
    maxTokens: 256,
  });
  const options = { useCache: true, refresh: false };
  await cache.resolve(request(pair.a), options, async () => answer(`answer to: ${pair.a}`));
  const outcome = await cache.resolve(request(pair.b), options, async () => answer(`answer to: ${pair.b}`));
  return outcome.fromCache;
}

interface ModuleRun {
  observations: PairObservation[];
  seconds: number;
  embedSeconds: number;
  texts: number;
  target: string;
}

/** The pairs through createCache directly: two caches (guard off, guard on), one tenant per pair. */
async function runModulePath(args: {
  pairs: readonly LabelledPair[];
  options: BenchOptions;
  progress: Progress;
  signal: AbortSignal;
  base: Config;
  real: Embedder;
}): Promise<ModuleRun> {
  const { pairs, options, progress, signal, base, real } = args;
  const logger = createLogger({ level: "warn" });
  const texts = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  progress.note(`cache-quality: ${pairs.length} pairs, ${texts.length} texts, embeddings ${real.embeddingModel}`);
  const embedStarted = performance.now();
  const vectors = await embedAll(real, texts, (line) => progress.note(line), signal);
  const embedSeconds = (performance.now() - embedStarted) / 1000;
  const embedder: Embedder = {
    name: real.name,
    embeddingModel: real.embeddingModel,
    embeddingDim: real.embeddingDim,
    embed: async (batch) => {
      const missing = batch.filter((t) => !vectors.has(t));
      if (missing.length > 0) {
        const fresh = await real.embed(missing);
        for (const [i, text] of missing.entries()) vectors.set(text, fresh[i] as Float32Array);
      }
      return batch.map((t) => vectors.get(t) as Float32Array);
    },
  };
  const cacheUrl = new URL(options.redisUrl);
  cacheUrl.pathname = "/0"; // the Query Engine indexes database 0 only
  const redis = await connectRedis(cacheUrl.toString());
  const prefix = `benchquality-${process.pid}`;
  const build = (guard: boolean) => {
    const built = createCache({
      redis,
      // The run measures one threshold for every task type; --calibrate finds the per-type ones.
      config: {
        ...base.cache,
        prefix: `${prefix}-${guard ? "guard" : "plain"}`,
        thresholds: new Map(),
        falseHitGuard: guard,
      },
      embedder,
      bus: createEventBus(),
      logger,
      jobTimeoutMs: 5000,
    });
    return built;
  };
  const plain = build(false);
  const guarded = build(true);
  const observations: PairObservation[] = [];
  const started = performance.now();
  try {
    for (const built of [plain, guarded]) {
      if (!(await built.ensure()))
        throw new MissingServiceError(
          `semantic search unavailable on ${cacheUrl}: ${built.admin.index.status().reason}; start Redis with the Query Engine (\`bun run services:up\`)`,
        );
    }
    for (let start = 0; start < pairs.length && !signal.aborted; start += CONCURRENCY) {
      const chunk = pairs.slice(start, start + CONCURRENCY);
      const results = await Promise.all(
        chunk.map(async (pair, i) => {
          const tenant = `pair-${start + i}`;
          const [servedThresholdOnly, servedWithGuard] = await Promise.all([
            servedFromCache(plain.cache, pair, tenant),
            servedFromCache(guarded.cache, pair, tenant),
          ]);
          return {
            pair,
            similarity: round(cosine(vectors.get(pair.a) as Float32Array, vectors.get(pair.b) as Float32Array), 4),
            exactKey: normaliseForKey(pair.a) === normaliseForKey(pair.b),
            guardOk: checkSemanticHit(pair.b, pair.a).ok,
            servedThresholdOnly,
            servedWithGuard,
          };
        }),
      );
      observations.push(...results);
      if ((start / CONCURRENCY) % 8 === 0 || start + CONCURRENCY >= pairs.length)
        progress.note(`  looked up ${observations.length}/${pairs.length} pairs`);
    }
  } finally {
    await dropCache(cacheUrl.toString(), `${prefix}-plain`).catch(() => {});
    await dropCache(cacheUrl.toString(), `${prefix}-guard`).catch(() => {});
    redis.disconnect();
  }
  return {
    observations,
    seconds: (performance.now() - started) / 1000,
    embedSeconds,
    texts: texts.length,
    target: `cache module (createCache) on ${cacheUrl}, prefix ${prefix}`,
  };
}

export const cacheQualityScenario: Scenario = {
  name: "cache-quality",
  description:
    "labelled pairs through the cache (--embeddings local|simulated, --path module|http|both): false hits and paraphrase hits per kind, threshold sweep, --calibrate",
  async run({ options, progress, signal }) {
    const all = loadPairs();
    const pairs = options.limit === undefined ? all : spread(all, options.limit);
    const base = loadConfig({ ...process.env, EMBEDDING_PROVIDER: options.embeddings });
    await ensureReachable(base.embedding);
    const logger = createLogger({ level: "warn" });
    const real = createEmbedder(base.embedding, { apiKey: base.llm.apiKey, logger });
    const threshold = base.cache.similarityThreshold;
    const withModule = options.qualityPath !== "http";
    const withHttp = options.qualityPath !== "module";
    const moduleRun = withModule ? await runModulePath({ pairs, options, progress, signal, base, real }) : undefined;
    const httpRun =
      withHttp && !signal.aborted ? await runHttpPath({ pairs, options, progress, signal, threshold }) : undefined;
    const observations = moduleRun?.observations ?? [];
    const http = httpRun ? httpPathReport(httpRun, moduleRun?.observations) : undefined;
    const same = observations.filter((o) => o.pair.same);
    const different = observations.filter((o) => !o.pair.same);
    const share = (list: PairObservation[], key: "servedThresholdOnly" | "servedWithGuard") =>
      list.length === 0 ? 0 : round(list.filter((o) => o[key]).length / list.length, 4);
    const calibration = options.calibrate && moduleRun ? calibrate(observations) : undefined;
    const report: CacheQualityReport = {
      embeddingModel: real.embeddingModel,
      embeddingDim: real.embeddingDim,
      threshold,
      pairs: moduleRun ? observations.length : (http?.pairs ?? 0),
      safeguards:
        "Safeguards measured: the similarity threshold, and the threshold with the lexical false-hit guard; there is no LLM verification stage yet.",
      paths: [...(moduleRun ? (["module"] as const) : []), ...(http ? (["http"] as const) : [])],
      ...(moduleRun
        ? {
            falseHitRate: {
              thresholdOnly: share(different, "servedThresholdOnly"),
              withGuard: share(different, "servedWithGuard"),
            },
            paraphraseHitRate: {
              thresholdOnly: share(same, "servedThresholdOnly"),
              withGuard: share(same, "servedWithGuard"),
            },
          }
        : {}),
      kinds: perKind(observations),
      sweep: moduleRun ? sweep(observations) : [],
      ...(calibration ? { calibration, calibrationEnv: thresholdsEnv(calibration) } : {}),
      ...(http ? { http } : {}),
    };
    const parts: PartResult[] = [];
    if (moduleRun)
      parts.push({
        name: `pairs through the cache (${real.embeddingModel})`,
        mode: "fixed",
        durationS: round(moduleRun.seconds, 3),
        sent: pairs.length,
        completed: observations.length,
        errors: {},
        throughput: round(observations.length / Math.max(moduleRun.seconds, 1e-3), 1),
        unit: "pairs",
        timeline: [],
        resources: {},
        extra: {
          embedding_model: real.embeddingModel,
          texts_embedded: moduleRun.texts,
          embed_seconds: round(moduleRun.embedSeconds, 2),
          threshold,
          false_hit_rate_threshold_only: report.falseHitRate?.thresholdOnly ?? 0,
          false_hit_rate_with_guard: report.falseHitRate?.withGuard ?? 0,
          paraphrase_hit_rate_threshold_only: report.paraphraseHitRate?.thresholdOnly ?? 0,
          paraphrase_hit_rate_with_guard: report.paraphraseHitRate?.withGuard ?? 0,
        },
        interrupted: signal.aborted,
      });
    if (http)
      parts.push({
        name: `pairs through the app over HTTP (${real.embeddingModel})`,
        mode: "fixed",
        durationS: http.durationS,
        sent: pairs.length,
        completed: http.pairs,
        errors: http.errors > 0 ? { pair_failed: http.errors } : {},
        throughput: round(http.pairs / Math.max(http.durationS, 1e-3), 1),
        unit: "pairs",
        timeline: [],
        resources: {},
        extra: {
          threshold,
          http_false_hit_rate: http.falseHitRate,
          http_paraphrase_hit_rate: http.paraphraseHitRate,
          ...(http.agreement ? { paths_agreement_rate: http.agreement.rate } : {}),
        },
        interrupted: signal.aborted,
      });
    return {
      target:
        [moduleRun?.target, httpRun?.target].filter(Boolean).join("; ") +
        `; embeddings ${options.embeddings} (${real.embeddingModel})`,
      parts,
      cacheQuality: report,
    };
  },
};
