/**
 * What one metrics flush costs, client and Redis side, and what one /metrics
 * read costs: `--processes` recorders (an API and its workers) each record
 * `--samples` durations into each of the 4 histograms, then flush; repeated
 * `--flushes` times. Only the recorder's public API is used, so the same file
 * measures any layout of the histograms in Redis (issue 12: bucket counts vs
 * per-process HDR fields).
 *
 *   bun bench/metrics-flush.ts [--samples 1000] [--flushes 100] [--processes 4] [--runs 3] [--json out.json]
 *
 * Redis time is the growth of INFO commandstats' EXEC usec over one flush
 * (a flush is one MULTI; EXEC's usec includes the commands it ran, scripts'
 * nested calls counted once): on a shared Redis another client's EXEC in that
 * window counts too, hence medians. Keys `metricsbench-*`, removed afterwards.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config";
import { createEventBus, type EventBus } from "../src/events";
import { createLogger } from "../src/log";
import { createMetricsRecorder } from "../src/metrics/recorder";
import { readMetrics } from "../src/metrics/snapshot";
import { connectRedis, type RedisClient } from "../src/redis/client";
import { deleteKeys } from "./measure/delete-keys";
import { median } from "./measure/median";

export interface MetricsFlushRun {
  us_per_flush_p50: number;
  us_per_flush_p99: number;
  redis_us_per_flush: number;
  us_per_read: number;
}

const { values: args } = parseArgs({
  options: {
    samples: { type: "string", default: "1000" },
    flushes: { type: "string", default: "100" },
    processes: { type: "string", default: "4" },
    runs: { type: "string", default: "3" },
    json: { type: "string" },
  },
});
const samples = Number(args.samples);
const flushes = Number(args.flushes);
const processes = Number(args.processes);
const runs = Number(args.runs);

// Seeded: every run and every version records the same durations.
let seed = 7;
const random = () => {
  seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
  return seed / 2 ** 32;
};
/** Log-uniform between lo and hi ms: spreads samples over many buckets, as real latencies do. */
const between = (lo: number, hi: number) => lo * (hi / lo) ** random();

function record(bus: EventBus) {
  for (let i = 0; i < samples; i++) {
    bus.emit("task.succeeded", {
      task_id: "t",
      queue: "q",
      task_type: "summarization",
      latency_ms: between(20, 5000),
      processing_ms: between(10, 3000),
      from_cache: false,
      tokens: 10,
    });
    const ms = between(50, 2000);
    bus.emit("llm.call", { provider: "p", model: "m", ms, ok: true, prompt_tokens: 5, completion_tokens: 5 });
    bus.emit("cache.lookup", { tier: "miss", ms: between(0.05, 20), round_trips: 1 });
  }
}

async function execUsec(redis: RedisClient): Promise<number> {
  const text = await redis.info("commandstats");
  return Number(/^cmdstat_exec:calls=\d+,usec=(\d+)/m.exec(text)?.[1] ?? 0);
}

async function run(redis: RedisClient, index: number): Promise<MetricsFlushRun> {
  const prefix = `metricsbench-${process.pid}-${index}`;
  const logger = createLogger({ level: "error" });
  const members = Array.from({ length: processes }, (_, p) => {
    const bus = createEventBus();
    const recorder = createMetricsRecorder({ redis, bus, processId: `p${p}`, logger, prefix, flushIntervalMs: 3e6 });
    return { bus, recorder };
  });
  const times: number[] = [];
  const redisTimes: number[] = [];
  try {
    for (let k = 0; k < flushes; k++) {
      for (const { bus, recorder } of members) {
        record(bus);
        const before = await execUsec(redis);
        const started = performance.now();
        await recorder.flush();
        times.push((performance.now() - started) * 1000);
        redisTimes.push((await execUsec(redis)) - before);
      }
    }
    const reads: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await readMetrics({ redis, prefix, queues: [] });
      reads.push((performance.now() - started) * 1000);
    }
    times.sort((a, b) => a - b);
    return {
      us_per_flush_p50: Math.round(median(times)),
      us_per_flush_p99: Math.round(times[Math.floor(times.length * 0.99)] ?? 0),
      redis_us_per_flush: Math.round(median(redisTimes)),
      us_per_read: Math.round(median(reads)),
    };
  } finally {
    await Promise.all(members.map(({ recorder }) => recorder.close()));
    await deleteKeys(redis, `${prefix}:*`);
  }
}

const redis = await connectRedis(loadConfig().redisUrl);
const results: MetricsFlushRun[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const result = await run(redis, i);
    results.push(result);
    console.log(`run ${i + 1}: ${JSON.stringify(result)}`);
  }
} finally {
  await redis.quit();
}
const figures = Object.keys(results[0] ?? {}) as (keyof MetricsFlushRun)[];
const summary = Object.fromEntries(figures.map((name) => [name, median(results.map((r) => r[name]))]));
console.log(`median of ${runs} runs (${processes} processes × ${samples} samples × 4 histograms per flush):`);
console.log(JSON.stringify(summary));
if (args.json) writeFileSync(args.json, `${JSON.stringify({ samples, flushes, processes, runs, results, summary })}\n`);
