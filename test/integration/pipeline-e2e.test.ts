/**
 * The whole pipeline as users run it: the real app (API + worker processes)
 * against the real Redis, the LLM through the project's mock OpenAI server
 * and the real openai client over HTTP.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, launchWithMock } from "../helpers/app-process";
import { json, waitFor } from "../helpers/services";

type Accepted = { task_id: string; status: string };
type Task = {
  task_id: string;
  status: string;
  result?: { response: string; model: string; from_cache: boolean; metadata: { tokens_used: number } };
  error?: { code: string; message: string; retriable: boolean };
};
type Metrics = { total_tasks: number; completed_tasks: number; failed_tasks: number; retried_tasks: number };
type Workers = {
  count: number;
  workers: { pid: number; processed: number }[];
  supervisor?: { recycled: number; restarted: number };
};

let mock: MockOpenAiServer;
let app: AppProcess | undefined;

beforeAll(() => {
  mock = createMockOpenAiServer({ port: 0, latencyMs: 5 });
});

afterEach(async () => {
  const running = app;
  app = undefined;
  if (running) expect(await running.stop()).toBe(0);
  mock.setFault({ kind: "none" });
  mock.reset();
});

afterAll(() => mock.stop());

async function launch(db: number, env: Record<string, string> = {}) {
  app = await launchWithMock(mock, db, env);
  return app;
}

async function submit(base: string, text: string, taskType = "general_analysis"): Promise<string> {
  const response = await fetch(`${base}/process`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text, task_type: taskType }),
  });
  expect(response.status).toBe(202);
  return (await json<Accepted>(response)).task_id;
}

async function waitForEnd(base: string, id: string, timeoutMs = 30_000): Promise<Task> {
  return waitFor(
    async () => {
      const task = await json<Task>(await fetch(`${base}/task/${id}?wait=5000`));
      return task.status === "SUCCESS" || task.status === "FAILURE" ? task : undefined;
    },
    `task ${id} to end`,
    timeoutMs,
    10,
  );
}

/** /metrics once it counts `completed` tasks: processes flush their counters every second. */
function metricsOnceCompleted(base: string, completed: number): Promise<Metrics> {
  return waitFor(
    async () => {
      const metrics = await json<Metrics>(await fetch(`${base}/metrics`));
      return metrics.completed_tasks === completed ? metrics : undefined;
    },
    `/metrics to count ${completed} completed tasks`,
    10_000,
    200,
  );
}

describe("pipeline end to end", () => {
  test("1,000 concurrent POST /process end as 1,000 SUCCESS tasks, and /metrics counts exactly 1,000", async () => {
    const { url } = await launch(10, { WORKER_CONCURRENCY: "2", WORKER_JOBS_PER_PROCESS: "64" });
    const ids = await Promise.all(Array.from({ length: 1000 }, (_, i) => submit(url, `text number ${i}`)));
    expect(new Set(ids).size).toBe(1000);

    const tasks = await Promise.all(ids.map((id) => waitForEnd(url, id, 60_000)));
    expect(tasks.filter((t) => t.status === "SUCCESS")).toHaveLength(1000);
    expect(tasks[0]?.result?.model).toBe("mock-model");
    expect(mock.counters().chat_requests).toBe(1000);

    const metrics = await metricsOnceCompleted(url, 1000);
    expect(metrics).toMatchObject({ total_tasks: 1000, completed_tasks: 1000, failed_tasks: 0 });
  }, 120_000);

  test("kill -9 of a worker process in the middle of a job: the job is re-run and ends SUCCESS", async () => {
    const { url } = await launch(11, { WORKER_CONCURRENCY: "1" });
    mock.setFault({ kind: "slow", slowMs: 2000, times: 1, endpoint: "chat" });
    const id = await submit(url, "a slow one");
    // In the middle of the job: STARTED, and its LLM request is on the wire (the mock holds it for 2 s).
    await waitFor(
      async () =>
        mock.counters().chat_requests === 1 &&
        (await json<Task>(await fetch(`${url}/task/${id}`))).status === "STARTED",
      "the task's LLM call to be in flight",
    );
    const workers = await json<Workers>(await fetch(`${url}/workers`));
    const pid = workers.workers[0]?.pid;
    expect(pid).toBeNumber();
    process.kill(pid as number, "SIGKILL");

    const task = await waitForEnd(url, id, 30_000);
    expect(task.status).toBe("SUCCESS");
    expect(mock.counters().chat_requests).toBe(2);
    const after = await json<Workers>(await fetch(`${url}/workers`));
    expect(after.supervisor?.restarted).toBe(1);
  }, 60_000);

  test("with WORKER_MAX_JOBS=50, 1,000 tasks all end SUCCESS, once each, while worker processes are replaced", async () => {
    const { url } = await launch(12, { WORKER_CONCURRENCY: "2", WORKER_MAX_JOBS: "50", WORKER_JOBS_PER_PROCESS: "8" });
    // Jobs of ~25 ms keep the run long enough (~2 s) for several replacements to start and take over.
    mock.setFault({ kind: "slow", slowMs: 20, endpoint: "chat" });
    const ids = await Promise.all(Array.from({ length: 1000 }, (_, i) => submit(url, `recycle ${i}`)));
    const tasks = await Promise.all(ids.map((id) => waitForEnd(url, id, 90_000)));
    expect(tasks.filter((t) => t.status === "SUCCESS")).toHaveLength(1000);
    // Graceful: a recycled process finished its jobs; none was cut off and run again.
    expect(mock.counters().chat_requests).toBe(1000);
    // A recycle still finishing at the end shows three processes for a moment (the replacement is ready
    // before the old one drains): by design. Then exactly WORKER_CONCURRENCY serve.
    const workers = await waitFor(async () => {
      const listed = await json<Workers>(await fetch(`${url}/workers`));
      return listed.count === 2 ? listed : undefined;
    }, "the replaced worker processes to leave /workers");
    expect(workers.supervisor?.recycled).toBeGreaterThanOrEqual(3);
    expect(workers.supervisor?.restarted).toBe(0);
  }, 150_000);

  test("bad input over a real socket gets a 4xx in the error shape, nothing is enqueued, and the server keeps serving", async () => {
    const { url } = await launch(9);
    const post = (body: string, type = "application/json") =>
      fetch(`${url}/process`, { method: "POST", headers: { "content-type": type }, body });
    const cases = [
      [await post(JSON.stringify({ text: "x".repeat(2 * 1024 * 1024) })), 413],
      [await post("hello", "text/plain"), 415],
      [await post('{"text": '), 400],
      [await post(JSON.stringify({ text: "hi", task_type: "Bad-Type" })), 422],
    ] as const;
    for (const [response, status] of cases) {
      expect(response.status).toBe(status);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBeString();
    }
    expect((await fetch(`${url}/health`)).status).toBe(200);
    const metrics = await json<Metrics>(await fetch(`${url}/metrics`));
    expect(metrics.total_tasks).toBe(0);
    expect(mock.counters().chat_requests).toBe(0);
  }, 30_000);

  describe("provider faults", () => {
    test("429 with Retry-After: 1 → the task waits, then ends SUCCESS", async () => {
      const { url } = await launch(13);
      mock.setFault({ kind: "429", retryAfterSeconds: 1, times: 1, endpoint: "chat" });
      const started = performance.now();
      const id = await submit(url, "rate limited once");
      const task = await waitForEnd(url, id);
      expect(task.status).toBe("SUCCESS");
      expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
      expect(mock.counters().chat_requests).toBe(2);
    }, 30_000);

    test("429 with a Retry-After longer than an in-call wait → RETRY (the job goes back to the queue), then SUCCESS", async () => {
      const { url } = await launch(13);
      mock.setFault({ kind: "429", retryAfterSeconds: 3, times: 1, endpoint: "chat" });
      const started = performance.now();
      const id = await submit(url, "rate limited for longer");
      await waitFor(async () => (await json<Task>(await fetch(`${url}/task/${id}`))).status === "RETRY", "RETRY");
      const task = await waitForEnd(url, id);
      expect(task.status).toBe("SUCCESS");
      expect(performance.now() - started).toBeGreaterThanOrEqual(3000);
      expect(mock.counters().chat_requests).toBe(2);
      const metrics = await metricsOnceCompleted(url, 1);
      expect(metrics.retried_tasks).toBe(1);
    }, 30_000);

    test("400 → FAILURE at once, with no retry", async () => {
      const { url } = await launch(14);
      mock.setFault({ kind: "400", endpoint: "chat" });
      const task = await waitForEnd(url, await submit(url, "a bad request"));
      expect(task.status).toBe("FAILURE");
      expect(task.error?.retriable).toBe(false);
      expect(mock.counters().chat_requests).toBe(1);
    }, 30_000);

    test("a hanging provider: the task fails on its timeout, and its error says so", async () => {
      const { url } = await launch(15, { JOB_TIMEOUT_MS: "500", JOB_RETRIES: "1" });
      mock.setFault({ kind: "hang", endpoint: "chat" });
      const task = await waitForEnd(url, await submit(url, "never answered"));
      expect(task.status).toBe("FAILURE");
      expect(task.error?.code).toBe("JOB_TIMEOUT");
      expect(task.error?.message).toContain("timed out after 500 ms");
      expect(mock.counters().chat_requests).toBe(2);
    }, 30_000);
  });
});
