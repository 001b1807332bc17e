/**
 * Redis restarted in the middle of a load (AOF on, a clean shutdown): while
 * it is away the API answers 503 with Retry-After (not 500, not a hang), it
 * recovers by itself when Redis is back, and no task that got a 202 is lost.
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

test("Redis restarted under load: 503 with Retry-After while it is away, recovery by itself, every 202 ends SUCCESS", async () => {
  app = await launchWithMock(mock, 14, { WORKER_CONCURRENCY: "1" });
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
        console.log(`[fault] redis restart: ${status} ${await response.text()}`);
      else if (status === 503) {
        expect(Number(response?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
        await Bun.sleep(50);
      } else await Bun.sleep(50);
    }
  };
  const clients = Array.from({ length: 8 }, client);

  await waitFor(() => accepted.length >= 300, "300 tasks accepted before the restart", 20_000, 50);
  await redisDown(log);
  const downFor = 3000;
  await Bun.sleep(downFor);
  const during = new Map(statuses);
  await redisUp(target, log);
  await waitFor(
    async () => (await fetch(`${base}/health`).catch(() => undefined))?.status === 200,
    "the app to be healthy again",
    20_000,
    100,
  );
  const acceptedBefore = accepted.length;
  await waitFor(() => accepted.length >= acceptedBefore + 300, "300 more tasks accepted after the restart", 20_000, 50);
  stop = true;
  await Promise.all(clients);

  const tasks = await outcomes(base, accepted, 120_000);
  const ended = [...tasks.values()];
  const succeeded = ended.filter((t) => t.status === "SUCCESS").length;
  const failed = ended.filter((t) => t.status === "FAILURE").length;
  report("redis restart", {
    accepted: accepted.length,
    succeeded,
    failed,
    reRuns: mock.counters().chat_requests - succeeded,
    extra: { statuses: Object.fromEntries(statuses), slow_answers: slow, down_ms: downFor },
  });
  const unhandled = app
    .output()
    .split("\n")
    .filter((line) => line.includes("unhandled error"));
  if (unhandled.length > 0) console.log(`[fault] redis restart: app errors:\n${unhandled.slice(0, 3).join("\n")}`);
  expect(during.get(503) ?? 0).toBeGreaterThan(0);
  expect(statuses.get(500) ?? 0).toBe(0);
  expect(statuses.get(0) ?? 0).toBe(0);
  expect(slow).toBe(0);
  expect(succeeded).toBe(accepted.length);
}, 240_000);
