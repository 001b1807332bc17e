/**
 * The real app as a child process, the way users run it, against the real
 * Redis (a database of its own, emptied first, so counts are exact) and the
 * project's mock OpenAI server.
 */

import { afterAll, afterEach, beforeAll, expect } from "bun:test";
import { join } from "node:path";
import Redis from "ioredis";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { emptyDatabase } from "../../tools/redis-admin";
import { testConfig, waitFor } from "./services";

const ROOT = join(import.meta.dir, "..", "..");

export function freePort(): number {
  const server = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = server.port ?? 0;
  server.stop(true);
  return port;
}

/** REDIS_URL of the test Redis with another database number; the database is emptied (key by key, see emptyDatabase). */
export async function isolatedRedisUrl(db: number): Promise<string> {
  const url = new URL(testConfig.redisUrl);
  url.pathname = `/${db}`;
  const client = new Redis(url.toString(), { protocol: 2, lazyConnect: true });
  await client.connect();
  await emptyDatabase(client);
  await client.quit();
  return url.toString();
}

export interface AppProcess {
  url: string;
  proc: ReturnType<typeof Bun.spawn>;
  output: () => string;
  stop(): Promise<number>;
}

export async function startApp(env: Record<string, string>): Promise<AppProcess> {
  const port = freePort();
  let output = "";
  const proc = Bun.spawn(["bun", "src/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "warn", KAFKA_TOPIC_OUT: "", ROLES: "api,worker", ...env, PORT: String(port) },
    stdout: "pipe",
    stderr: "pipe",
  });
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) output += decoder.decode(chunk);
  };
  void collect(proc.stdout as ReadableStream<Uint8Array>);
  void collect(proc.stderr as ReadableStream<Uint8Array>);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`the app exited with ${proc.exitCode}:\n${output}`);
      return (await fetch(`${url}/health`).catch(() => undefined))?.status === 200;
    },
    "the app to answer /health",
    20_000,
    100,
  );
  return {
    url,
    proc,
    output: () => output,
    async stop() {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
      const code = await proc.exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The app with the LLM behind the project's mock OpenAI server, short retry and stall timings, its own database. */
export async function launchWithMock(
  mock: MockOpenAiServer,
  db: number,
  env: Record<string, string> = {},
  options: { keepDatabase?: boolean } = {},
): Promise<AppProcess> {
  let redisUrl: string;
  if (options.keepDatabase) {
    // A restarted app finds what the previous one left in its database.
    const url = new URL(testConfig.redisUrl);
    url.pathname = `/${db}`;
    redisUrl = url.toString();
  } else {
    redisUrl = await isolatedRedisUrl(db);
  }
  return startApp({
    REDIS_URL: redisUrl,
    LLM_PROVIDER: "openai",
    OPENAI_API_KEY: "sk-test-not-a-real-key",
    OPENAI_BASE_URL: mock.url,
    LLM_MODEL: "mock-model",
    JOB_BACKOFF_MS: "100",
    JOB_STALL_INTERVAL_MS: "1000",
    ...env,
  });
}

/**
 * The usual setup of a test file that runs the app against the mock server: one mock for the file, and
 * `launch(db, env)` for an app per test, stopped after each test (it must exit 0) with the mock's faults and
 * counters reset.
 */
export function mockAppPerTest(options: { latencyMs?: number | { min: number; max: number } } = {}) {
  let mock: MockOpenAiServer | undefined;
  let app: AppProcess | undefined;
  beforeAll(() => {
    mock = createMockOpenAiServer({ port: 0, ...options });
  });
  afterEach(async () => {
    const running = app;
    app = undefined;
    if (running) expect(await running.stop()).toBe(0);
    mock?.setFault({ kind: "none" });
    mock?.reset();
  });
  afterAll(() => mock?.stop());
  return {
    get mock(): MockOpenAiServer {
      if (!mock) throw new Error("the mock server starts in beforeAll: use it inside a test");
      return mock;
    },
    async launch(db: number, env: Record<string, string> = {}): Promise<AppProcess> {
      app = await launchWithMock(this.mock, db, env);
      return app;
    },
  };
}
