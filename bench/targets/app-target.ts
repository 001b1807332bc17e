/**
 * The system under test: a running deployment (--url, optionally --pid for
 * its CPU/RSS), or the app started here the way users run it (`bun
 * src/main.ts`) on an emptied Redis database, with the simulated LLM or the
 * project's mock OpenAI server (its own process) at the chosen latency.
 */
import { join, resolve } from "node:path";
import Redis from "ioredis";
import { emptyDatabase as emptyKeys } from "../../tools/redis-admin";
import type { BenchOptions } from "../options";
import type { Progress } from "../progress";
import { freePort, spawnService } from "./spawn";

export interface Target {
  url: string;
  /** Root pid of the system under test, when known (its worker processes are counted with it). */
  pid: number | undefined;
  /** The app's Redis, when the harness started it (for the app's own histograms). */
  redisUrl: string | undefined;
  /** The mock OpenAI server's base URL (its /__mock/ control), when the harness started one. */
  mockUrl: string | undefined;
  describe: string;
  stop(): Promise<void>;
}

const ROOT = join(import.meta.dir, "..", "..");

async function emptyDatabase(redisUrl: string): Promise<void> {
  const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  client.on("error", () => {}); // reported once, below, with the way out
  try {
    await client.connect();
    await emptyKeys(client);
  } catch (error) {
    throw new Error(`Redis at ${redisUrl} is not reachable (${String(error)}); start it with \`bun run services:up\``);
  } finally {
    client.disconnect();
  }
}

export async function resolveTarget(
  options: BenchOptions,
  progress: Progress,
  app: { roles: string; env?: Record<string, string>; mockArgs?: readonly string[] },
): Promise<Target> {
  if (options.url) {
    return {
      url: options.url,
      pid: options.pid,
      redisUrl: undefined,
      mockUrl: undefined,
      describe: `${options.url} (running deployment${options.pid ? `, pid ${options.pid}` : ""})`,
      stop: async () => {},
    };
  }
  await emptyDatabase(options.redisUrl);
  const stops: (() => Promise<void>)[] = [];
  const env: Record<string, string> = {
    ROLES: app.roles,
    REDIS_URL: options.redisUrl,
    LOG_LEVEL: "warn",
    KAFKA_TOPIC_OUT: "",
    WORKER_CONCURRENCY: options.workers,
    ...(options.rateLimit ? { LLM_RATE_LIMIT: options.rateLimit } : {}),
    ...(options.rateBurst === undefined ? {} : { LLM_RATE_BURST: String(options.rateBurst) }),
    ...(options.jobsPerProcess ? { WORKER_JOBS_PER_PROCESS: options.jobsPerProcess } : {}),
    // BUN_OPTIONS reaches the worker processes too: the supervisor passes its environment on.
    ...(options.cpuProf ? { BUN_OPTIONS: `--cpu-prof --cpu-prof-md --cpu-prof-dir=${resolve(options.cpuProf)}` } : {}),
    ...app.env,
  };
  let llm = `simulated LLM ${options.latency} ms`;
  let mockUrl: string | undefined;
  if (options.llm === "mock") {
    const port = freePort();
    const mock = await spawnService({
      name: "mock OpenAI server",
      command: [
        "bun",
        "tools/mock-openai-server.ts",
        ...["--port", String(port), "--latency", options.latency],
        ...(app.mockArgs ?? []),
      ],
      cwd: ROOT,
      env: {},
      ready: `http://127.0.0.1:${port}/v1/models`,
    });
    stops.push(mock.stop);
    Object.assign(env, {
      LLM_PROVIDER: "openai",
      OPENAI_API_KEY: "sk-bench-mock",
      OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`,
    });
    llm = `mock OpenAI server ${options.latency} ms`;
    mockUrl = `http://127.0.0.1:${port}`;
  } else {
    Object.assign(env, {
      LLM_PROVIDER: "simulated",
      SIMULATED_LATENCY_MS: options.latency,
      SIMULATED_TOKEN_LATENCY_MS: String(options.tokenLatencyMs),
    });
  }
  const port = freePort();
  progress.note(`starting the app: ROLES=${app.roles} on :${port}, ${llm}, Redis ${options.redisUrl} (emptied)`);
  const started = await spawnService({
    name: "the app",
    command: ["bun", "src/main.ts"],
    cwd: ROOT,
    env: { ...env, PORT: String(port) },
    ready: `http://127.0.0.1:${port}/health`,
  }).catch(async (error: unknown) => {
    for (const stop of stops) await stop();
    throw error;
  });
  stops.unshift(started.stop);
  return {
    url: `http://127.0.0.1:${port}`,
    pid: started.pid,
    redisUrl: options.redisUrl,
    mockUrl,
    describe: `bun src/main.ts (ROLES=${app.roles}, WORKER_CONCURRENCY=${options.workers}${options.jobsPerProcess ? `, WORKER_JOBS_PER_PROCESS=${options.jobsPerProcess}` : ""}${options.rateLimit ? `, LLM_RATE_LIMIT=${options.rateLimit}` : ""}${options.rateBurst === undefined ? "" : `, LLM_RATE_BURST=${options.rateBurst}`}, ${llm}), started by the harness`,
    async stop() {
      for (const stop of stops) await stop();
      // Jobs piled up by an api-only run would otherwise sit in Redis's memory.
      await emptyDatabase(options.redisUrl).catch(() => {});
    },
  };
}
