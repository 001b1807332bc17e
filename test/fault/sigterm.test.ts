/**
 * SIGTERM under load: the process stops accepting, its workers finish the
 * jobs in flight (or give them back to the queue), and it exits 0; a new
 * process on the same Redis then finishes what was queued. Every task that
 * got a 202 ends SUCCESS, none is left half-done, and a graceful stop re-runs
 * nothing.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import type { AppProcess } from "../helpers/app-process";
import { waitFor } from "../helpers/services";
import { launchWithMock, metricsOf, outcomes, report, submitMany } from "./fault-helpers";

const DB = 13;
let mock: MockOpenAiServer;
let apps: AppProcess[] = [];

beforeAll(() => {
  mock = createMockOpenAiServer({ port: 0, latencyMs: 150 });
});

afterAll(async () => {
  for (const app of apps) await app.stop();
  mock.stop();
});

test("SIGTERM under load: in-flight jobs finish, the process exits 0, the next one finishes the queue, nothing is lost or run twice", async () => {
  const first = await launchWithMock(mock, DB, { WORKER_CONCURRENCY: "1", WORKER_JOBS_PER_PROCESS: "32" });
  apps = [first];
  const { accepted, refused } = await submitMany(first.url, 1000, { label: "sigterm", useCache: false });
  expect(refused.size).toBe(0);
  await waitFor(async () => (await metricsOf(first.url)).completed_tasks >= 100, "100 tasks done", 30_000, 100);

  const inFlight = mock.counters().chat_requests;
  const stopped = performance.now();
  expect(await first.stop()).toBe(0);
  const stopMs = Math.round(performance.now() - stopped);
  const callsAtStop = mock.counters().chat_requests;
  // Stopping takes new jobs no more: at most the ones already in flight were still called.
  expect(callsAtStop - inFlight).toBeLessThanOrEqual(32);

  const second = await launchWithMock(mock, DB, { WORKER_CONCURRENCY: "2" }, { keepDatabase: true });
  apps = [second];
  const tasks = await outcomes(second.url, accepted, 120_000);
  const ended = [...tasks.values()];
  const succeeded = ended.filter((t) => t.status === "SUCCESS").length;
  const failed = ended.filter((t) => t.status === "FAILURE").length;
  const reRuns = mock.counters().chat_requests - accepted.length;
  report("SIGTERM under load", {
    accepted: accepted.length,
    succeeded,
    failed,
    reRuns,
    extra: { stop_ms: stopMs, done_before_stop: callsAtStop },
  });
  expect(succeeded).toBe(accepted.length);
  expect(reRuns).toBe(0);
}, 240_000);
