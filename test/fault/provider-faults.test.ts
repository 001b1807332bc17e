/**
 * The LLM provider misbehaving while tasks flow, under a global rate limit:
 * a storm of 500s, a storm of 429s with Retry-After, then hanging requests.
 * Retries are bounded and back off, timeouts fire, the rate limiter spaces
 * calls, no job is left stuck, and the queue drains once the provider
 * recovers: every accepted task ends SUCCESS.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import type { AppProcess } from "../helpers/app-process";
import { waitFor } from "../helpers/services";
import { launchWithMock, metricsOf, outcomes, report, submitMany } from "./fault-helpers";

let mock: MockOpenAiServer;
let app: AppProcess | undefined;

beforeAll(() => {
  mock = createMockOpenAiServer({ port: 0, latencyMs: 5 });
});

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  mock.stop();
});

test("500 storm, 429 storm, hangs: bounded retries, timeouts that fire, a rate limit that spaces calls, the queue drains", async () => {
  app = await launchWithMock(mock, 12, {
    WORKER_CONCURRENCY: "1",
    WORKER_JOBS_PER_PROCESS: "16",
    JOB_RETRIES: "8",
    JOB_BACKOFF_MS: "200",
    JOB_TIMEOUT_MS: "400",
    LLM_RATE_LIMIT: "100/1s",
  });
  const base = app.url;
  const accepted: string[] = [];
  const phase = async (fault: Parameters<MockOpenAiServer["setFault"]>[0], ms: number, label: string) => {
    mock.setFault(fault);
    const submitted = submitMany(base, 100, { label, useCache: false, concurrency: 20 });
    await Bun.sleep(ms);
    mock.setFault({ kind: "none" });
    const { accepted: ids, refused } = await submitted;
    expect(refused.size).toBe(0);
    accepted.push(...ids);
  };
  await phase({ kind: "500", endpoint: "chat" }, 1500, "storm-500");
  await phase({ kind: "429", endpoint: "chat", retryAfterSeconds: 1 }, 1500, "storm-429");
  await phase({ kind: "hang", endpoint: "chat" }, 1500, "hang");

  const tasks = await outcomes(base, accepted, 120_000);
  const ended = [...tasks.values()];
  const succeeded = ended.filter((t) => t.status === "SUCCESS").length;
  const failed = ended.filter((t) => t.status === "FAILURE").length;
  const m = await metricsOf(base);
  report("provider faults", {
    accepted: accepted.length,
    succeeded,
    failed,
    reRuns: m.retried_tasks,
    extra: {
      faults_served: mock.counters().faults_served,
      llm_errors: m.llm.errors,
      rate_limited_waits: m.llm.rate_limited_waits,
    },
  });
  expect(succeeded).toBe(accepted.length);
  expect(m.retried_tasks).toBeGreaterThan(0);
  expect(m.llm.errors).toBeGreaterThan(0);
  expect(m.llm.rate_limited_waits).toBeGreaterThan(0);
  // Nothing stuck: every queue empties once the tasks have ended (Bee-Queue removes a job just after its result).
  await waitFor(
    async () => Object.values((await metricsOf(base)).queues).every((d) => d.waiting + d.active + d.delayed === 0),
    "every queue to be empty",
    10_000,
  );
}, 240_000);
