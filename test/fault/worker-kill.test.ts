/**
 * kill -9 of a worker process every 1.5 s while 10,000 tasks flow: every
 * accepted task ends SUCCESS, once from the client's point of view (one
 * result, never a FAILURE); the jobs a killed process held are re-run, and
 * the re-runs are counted, never hidden.
 *
 * Where the product counts them: each start of a task increments `attempts`
 * in its record (result:{task_id}, the task store's start script), so the
 * re-runs are the attempts beyond one per task. /metrics cannot say it: a
 * process killed -9 loses the counts it had not flushed. The mock provider's
 * LLM calls beyond one per task are the re-runs that got as far as the LLM
 * (a job can be killed before its call): never more than the counted ones.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connectRedis } from "../../src/redis/client";
import { resultKey } from "../../src/store/task-store";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import type { AppProcess } from "../helpers/app-process";
import { json, testConfig } from "../helpers/services";
import { launchWithMock, outcomes, report, submitMany } from "./fault-helpers";

const TASKS = 10_000;
const DB = 15;
let mock: MockOpenAiServer;
let app: AppProcess | undefined;

/** The `attempts` of each task's record in the app's database: how many times a worker started it. */
async function attemptsOf(ids: readonly string[]): Promise<number[]> {
  const url = new URL(testConfig.redisUrl);
  url.pathname = `/${DB}`;
  const redis = await connectRedis(url.toString());
  try {
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hget(resultKey(id), "attempts");
    return ((await pipeline.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return Number(value ?? 0);
    });
  } finally {
    await redis.quit();
  }
}

beforeAll(() => {
  mock = createMockOpenAiServer({ port: 0, latencyMs: 10 });
});

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  mock.stop();
});

test("kill -9 of a worker every 1.5 s while 10,000 tasks flow: all end SUCCESS, the jobs it held re-run and counted, none lost", async () => {
  app = await launchWithMock(mock, DB, { WORKER_CONCURRENCY: "2", WORKER_JOBS_PER_PROCESS: "64" });
  const base = app.url;
  let kills = 0;
  /** Kills of a process whose last heartbeat reported jobs in flight. */
  let killsMidJob = 0;
  let stop = false;
  const killer = (async () => {
    while (!stop) {
      await Bun.sleep(1500);
      if (stop) break;
      const { workers } = await json<{ workers: { pid: number; active_jobs: number }[] }>(
        await fetch(`${base}/workers`),
      );
      const victim = workers[kills % Math.max(1, workers.length)];
      if (!victim) continue;
      try {
        process.kill(victim.pid, "SIGKILL");
        kills++;
        if (victim.active_jobs > 0) killsMidJob++;
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
  const attempts = await attemptsOf(accepted);
  const reRuns = attempts.reduce((sum, n) => sum + n - 1, 0);
  const tasksReRun = attempts.filter((n) => n > 1).length;
  const llmReRuns = mock.counters().chat_requests - TASKS;
  const { supervisor } = await json<{ supervisor?: { restarted: number } }>(await fetch(`${base}/workers`));
  report("worker kill -9", {
    accepted: accepted.length,
    succeeded,
    failed,
    reRuns,
    extra: { kills, killsMidJob, tasksReRun, llmReRuns, restarted: supervisor?.restarted },
  });
  expect(kills).toBeGreaterThanOrEqual(2);
  expect(supervisor?.restarted).toBeGreaterThanOrEqual(kills);
  expect(succeeded).toBe(TASKS);
  expect(failed).toBe(0);
  // Every task that ended was started, and its starts are on record.
  expect(attempts.filter((n) => n < 1)).toEqual([]);
  // The test's premise: processes died with jobs in flight. Their jobs ran again, and the store counted it.
  expect(killsMidJob).toBeGreaterThanOrEqual(1);
  expect(reRuns).toBeGreaterThanOrEqual(1);
  // None hidden: every LLM call beyond one per task belongs to a start the store counted.
  expect(llmReRuns).toBeGreaterThanOrEqual(0);
  expect(llmReRuns).toBeLessThanOrEqual(reRuns);
}, 180_000);
