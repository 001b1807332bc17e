/**
 * Redis taken away in the middle of a load, by a clean shutdown and by kill
 * -9 (AOF on; Redis writes the AOF before it answers, so a killed process
 * loses nothing it acknowledged): while it is away the API answers 503 with
 * Retry-After (not 500, not a hang), it recovers by itself when Redis is
 * back, and no task that got a 202 is lost or fails (a lost connection is
 * retried, an answer already obtained waits Redis out).
 *
 * It stops the Redis that `bun run services:up` started (the suite's own),
 * so it runs alone in CI like every test file, and starts it again whatever
 * happens.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { redisDown, redisStatus, redisTarget, redisUp } from "../../scripts/services/redis";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import type { AppProcess } from "../helpers/app-process";
import { testConfig, waitFor } from "../helpers/services";
import { launchWithMock, outcomes, report } from "./fault-helpers";

const target = redisTarget(testConfig.redisUrl);
const log = () => {};
let mock: MockOpenAiServer;
let app: AppProcess | undefined;

beforeAll(async () => {
  const status = await redisStatus(target);
  if (!status.running || status.ownedPid === undefined) {
    throw new Error(
      "this test restarts the Redis that `bun run services:up` started in this checkout; none is running " +
        "(start the services with `bun run services:up`, or run the suite with `bun run test`)",
    );
  }
  mock = createMockOpenAiServer({ port: 0, latencyMs: 20 });
});

afterAll(async () => {
  // Whatever happened, leave Redis running for the tests that follow.
  await redisUp(target, log);
  if (app) await app.stop();
  mock?.stop();
});

/**
 * Clients POST for as long as the load runs (8 at a time, 50 ms apart after an error); `disrupt` takes Redis
 * away and brings it back once 300 tasks are in. Every task that got a 202 must end SUCCESS.
 */
async function cacheHits(base: string): Promise<number> {
  const metrics = (await (await fetch(`${base}/metrics`)).json()) as { cache: { hits: number } };
  return metrics.cache.hits;
}

async function underLoad(name: string, llmLatencyMs: number, disrupt: () => Promise<void>) {
  const llm = llmLatencyMs === 20 ? mock : createMockOpenAiServer({ port: 0, latencyMs: llmLatencyMs });
  // One app at a time on database 14: a second one would take this one's jobs to a mock that is gone.
  await app?.stop();
  app = await launchWithMock(llm, 14, { WORKER_CONCURRENCY: "1" });
  const base = app.url;
  const accepted: string[] = [];
  const statuses = new Map<number, number>();
  let slow = 0;
  let stop = false;
  let i = 0;
  const client = async () => {
    while (!stop) {
      const started = performance.now();
      const response = await fetch(`${base}/process`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: `restart ${i++} ${crypto.randomUUID()}` }),
        signal: AbortSignal.timeout(5000),
      }).catch(() => undefined);
      // A hang is a failure: a client must get an answer quickly, even an error.
      if (performance.now() - started > 4000) slow++;
      const status = response?.status ?? 0;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (response && status === 202) accepted.push(((await response.json()) as { task_id: string }).task_id);
      else if (response && status >= 500 && status !== 503)
        console.log(`[fault] ${name}: ${status} ${await response.text()}`);
      else if (status === 503) {
        expect(Number(response?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
        await Bun.sleep(50);
      } else await Bun.sleep(50);
    }
  };
  const clients = Array.from({ length: 8 }, client);

  await waitFor(() => accepted.length >= 300, "300 tasks accepted before the outage", 20_000, 50);
  await disrupt();
  const during = new Map(statuses);
  await waitFor(
    async () => (await fetch(`${base}/health`).catch(() => undefined))?.status === 200,
    "the app to be healthy again",
    20_000,
    100,
  );
  const acceptedBefore = accepted.length;
  await waitFor(() => accepted.length >= acceptedBefore + 300, "300 more tasks accepted after the outage", 20_000, 50);
  stop = true;
  await Promise.all(clients);

  const tasks = await outcomes(base, accepted, 120_000);
  const ended = [...tasks.values()];
  const succeeded = ended.filter((t) => t.status === "SUCCESS").length;
  const failures = ended.filter((t) => t.status === "FAILURE");
  report(name, {
    accepted: accepted.length,
    succeeded,
    failed: failures.length,
    // Near-identical texts are semantic cache hits: LLM calls beyond one per task that asked are the re-runs.
    reRuns: Math.max(0, llm.counters().chat_requests - (succeeded - (await cacheHits(base)))),
    extra: { statuses: Object.fromEntries(statuses), slow_answers: slow, first_failure: failures[0]?.error },
  });
  const unhandled = app
    .output()
    .split("\n")
    .filter((line) => line.includes("unhandled error"));
  if (unhandled.length > 0) console.log(`[fault] ${name}: app errors:\n${unhandled.slice(0, 3).join("\n")}`);
  if (llm !== mock) llm.stop();
  expect(during.get(503) ?? 0).toBeGreaterThan(0);
  expect(statuses.get(500) ?? 0).toBe(0);
  expect(statuses.get(0) ?? 0).toBe(0);
  expect(slow).toBe(0);
  expect(failures).toEqual([]);
  expect(succeeded).toBe(accepted.length);
}

test("Redis restarted under load: 503 with Retry-After while it is away, recovery by itself, every 202 ends SUCCESS", async () => {
  await underLoad("redis restart", 20, async () => {
    await redisDown(log);
    await Bun.sleep(3000);
    await redisUp(target, log);
  });
}, 240_000);

test("Redis killed with -9 under load, with LLM calls in flight: services:up starts a new one over its stale pid file, and no accepted task fails", async () => {
  await underLoad("redis kill -9", 300, async () => {
    const { ownedPid } = await redisStatus(target);
    expect(ownedPid).toBeDefined();
    process.kill(ownedPid as number, "SIGKILL");
    await Bun.sleep(2000);
    // What an operator runs: it used to exit 1 now and then, reading the dead server's pid file as the new one's.
    const status = await redisUp(target, log);
    expect(status.running).toBe(true);
  });
}, 240_000);
