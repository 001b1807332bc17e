/**
 * Issue 15's load promise for SSE: 1,000 tasks, each followed by its own
 * subscriber (1,000 streams open at once, from a process allowed that many):
 * every subscriber gets every state change of its task in order, the final
 * event equals GET /task/:id, and the tenth of them that drop the connection
 * in mid-stream and come back with Last-Event-ID miss nothing and get nothing twice.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import type { TasksReport } from "../../tools/sse-load";
import { type AppProcess, launchWithMock } from "../helpers/app-process";

const DB = 22;
const COUNT = 1000;

let mock: MockOpenAiServer;
let app: AppProcess;

beforeAll(async () => {
  // Slow enough that subscribers are connected while their tasks run, not only replayed afterwards.
  mock = createMockOpenAiServer({ port: 0, latencyMs: { min: 200, max: 400 } });
  app = await launchWithMock(mock, DB, { WORKER_JOBS_PER_PROCESS: "250" });
});

afterAll(async () => {
  if (app) expect(await app.stop()).toBe(0);
  await mock.stop();
});

test(`${COUNT} tasks with an SSE subscriber each: all state changes in order, the final event as GET /task/:id, nothing lost on reconnect`, async () => {
  const load = Bun.spawn(
    [
      "bun",
      join(import.meta.dir, "..", "..", "tools", "sse-load.ts"),
      "tasks",
      "--url",
      app.url,
      "--count",
      String(COUNT),
      "--reconnect-every",
      "10",
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [code, stdout, stderr] = await Promise.all([
    load.exited,
    new Response(load.stdout).text(),
    new Response(load.stderr).text(),
  ]);
  expect({ code, stderr: stderr.slice(-2000) }).toEqual({ code: 0, stderr: "" });
  const report = JSON.parse(stdout) as TasksReport;
  expect(report.errors).toEqual([]);
  expect(report.tasks.length).toBe(COUNT);

  let reconnected = 0;
  for (const trace of report.tasks) {
    const events = trace.connections.flat();
    expect(events.map((e) => e.status)).toEqual(["PENDING", "STARTED", "SUCCESS"]);
    // Ids strictly increase across the reconnection: nothing twice, nothing skipped.
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    if (trace.connections.length > 1) reconnected++;
  }
  expect(reconnected).toBe(COUNT / 10);

  // The final event is the task as GET /task/:id shows it (a sample of 100, to keep the test short).
  for (const trace of report.tasks.slice(0, 100)) {
    const task = await (await fetch(`${app.url}/task/${trace.task_id}`)).json();
    expect(trace.final).toEqual(task);
  }
}, 120_000);
