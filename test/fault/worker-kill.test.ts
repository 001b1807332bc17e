/**
 * kill -9 of a worker process every 1.5 s while 10,000 tasks flow: every
 * accepted task ends SUCCESS, once from the client's point of view (one
 * result, never a FAILURE); the jobs a killed process held are re-run, and
 * the re-runs are counted (LLM calls beyond one per task), never hidden.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import type { AppProcess } from "../helpers/app-process";
import { json } from "../helpers/services";
import { launchWithMock, outcomes, report, submitMany } from "./fault-helpers";

const TASKS = 10_000;
let mock: MockOpenAiServer;
let app: AppProcess | undefined;

beforeAll(() => {
  mock = createMockOpenAiServer({ port: 0, latencyMs: 10 });
});

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  mock.stop();
});

test("kill -9 of a worker every 1.5 s while 10,000 tasks flow: all end SUCCESS, re-runs counted, none lost", async () => {
  app = await launchWithMock(mock, 15, { WORKER_CONCURRENCY: "2", WORKER_JOBS_PER_PROCESS: "64" });
  const base = app.url;
  let kills = 0;
  let stop = false;
  const killer = (async () => {
    while (!stop) {
      await Bun.sleep(1500);
      if (stop) break;
      const { workers } = await json<{ workers: { pid: number }[] }>(await fetch(`${base}/workers`));
      const victim = workers[kills % Math.max(1, workers.length)];
      if (!victim) continue;
      try {
        process.kill(victim.pid, "SIGKILL");
        kills++;
      } catch {
        // Already gone (recycled or killed a moment ago): nothing to count.
      }
    }
  })();

  const { accepted, refused } = await submitMany(base, TASKS, { label: "kill", useCache: false });
  expect(refused.size).toBe(0);
  expect(accepted).toHaveLength(TASKS);
  const tasks = await outcomes(base, accepted, 120_000);
  stop = true;
  await killer;

  const statuses = [...tasks.values()].map((t) => t.status);
  const succeeded = statuses.filter((s) => s === "SUCCESS").length;
  const failed = statuses.filter((s) => s === "FAILURE").length;
  const reRuns = mock.counters().chat_requests - TASKS;
  const { supervisor } = await json<{ supervisor?: { restarted: number } }>(await fetch(`${base}/workers`));
  report("worker kill -9", {
    accepted: accepted.length,
    succeeded,
    failed,
    reRuns,
    extra: { kills, restarted: supervisor?.restarted },
  });
  expect(kills).toBeGreaterThanOrEqual(2);
  expect(supervisor?.restarted).toBeGreaterThanOrEqual(kills);
  expect(succeeded).toBe(TASKS);
  expect(failed).toBe(0);
  expect(reRuns).toBeGreaterThanOrEqual(0);
}, 180_000);
