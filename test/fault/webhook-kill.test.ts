/**
 * Webhooks pending when the app is killed -9 are delivered after a restart
 * (issue 15 §4): their schedule is in Redis, not in a process. The real app
 * runs with a receiver that answers 503 to everything, so every delivery is
 * retrying; the main process and its worker processes are killed -9 at once
 * (some attempts are in flight then, their claims held); the receiver comes
 * back, a new app starts on the same Redis, and every webhook arrives.
 * Counted: accepted, delivered, lost (must be 0), and duplicates (the same
 * webhook-id answered 2xx more than once: at least once delivery allows them,
 * the count shows them).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import type { AppProcess } from "../helpers/app-process";
import { json, testConfig, waitFor } from "../helpers/services";
import { launchWithMock, report } from "./fault-helpers";

const DB = 42;
const TASKS = 150;
const MASTER = `fault-master-${crypto.randomUUID()}`;
const ENV = {
  WEBHOOK_SECRET: MASTER,
  WEBHOOK_ALLOW_PRIVATE: "true",
  WEBHOOK_RETRY_BASE_MS: "300",
  // A short timeout makes a short claim lease (2 × timeout + 10 s): claims of the killed processes lapse sooner.
  WEBHOOK_TIMEOUT_MS: "1000",
  WORKER_CONCURRENCY: "2",
};

let mock: MockOpenAiServer;
let receiver: ReturnType<typeof Bun.serve>;
let apps: AppProcess[] = [];
let up = false;
/** Per webhook-id: requests seen, and those answered 2xx. */
const seen = new Map<string, { requests: number; delivered: number }>();

beforeAll(() => {
  mock = createMockOpenAiServer({ port: 0, latencyMs: 5 });
  receiver = Bun.serve({
    port: 0,
    async fetch(request) {
      await request.text();
      const id = request.headers.get("webhook-id") ?? "(none)";
      const entry = seen.get(id) ?? { requests: 0, delivered: 0 };
      entry.requests++;
      if (up) entry.delivered++;
      seen.set(id, entry);
      return new Response(null, { status: up ? 204 : 503 });
    },
  });
});

afterAll(async () => {
  for (const app of apps) if (app.proc.exitCode === null) await app.stop();
  receiver.stop(true);
  mock.stop();
});

async function submitAll(base: string): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < TASKS; i = next++) {
      const response = await fetch(`${base}/process`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          text: `webhook kill ${i}: ${crypto.randomUUID()}`,
          use_cache: false,
          callback_url: `http://127.0.0.1:${receiver.port}/hooks/${i}`,
        }),
      });
      expect(response.status).toBe(202);
      ids.push((await json<{ task_id: string }>(response)).task_id);
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  return ids;
}

test("webhooks pending at a kill -9 of the whole app are delivered after a restart; none lost, duplicates counted", async () => {
  const first = await launchWithMock(mock, DB, ENV);
  apps = [first];
  const ids = await submitAll(first.url);
  const webhookIds = ids.map((id) => `msg_${id}`);
  // Every webhook tried and refused at least once: all of them retrying, none delivered.
  await waitFor(
    () => webhookIds.every((id) => (seen.get(id)?.requests ?? 0) >= 1),
    `a first attempt of all ${TASKS} webhooks`,
    60_000,
    100,
  );

  const { workers } = await json<{ workers: { pid: number }[] }>(await fetch(`${first.url}/workers`));
  expect(workers.length).toBe(2);
  for (const pid of [first.proc.pid, ...workers.map((w) => w.pid)]) process.kill(pid, "SIGKILL");
  await first.proc.exited;
  const attemptsBeforeKill = [...seen.values()].reduce((sum, e) => sum + e.requests, 0);
  expect([...seen.values()].every((e) => e.delivered === 0)).toBe(true);

  // What the killed app left in Redis: every delivery still scheduled.
  const url = new URL(testConfig.redisUrl);
  url.pathname = `/${DB}`;
  const { connectRedis } = await import("../../src/redis/client");
  const redis = await connectRedis(url.toString());
  try {
    expect(await redis.zcard("webhook:due")).toBe(TASKS);
  } finally {
    await redis.quit();
  }

  up = true;
  const restarted = Date.now();
  const second = await launchWithMock(mock, DB, ENV, { keepDatabase: true });
  apps = [first, second];
  await waitFor(
    () => webhookIds.every((id) => (seen.get(id)?.delivered ?? 0) >= 1),
    `all ${TASKS} webhooks delivered after the restart`,
    60_000,
    100,
  );
  const deliveredMs = Date.now() - restarted;

  // The app's own record agrees: every delivery delivered, its last attempt a 204.
  for (const id of ids) {
    const view = await json<{ deliveries: { state: string; attempts: { status_code?: number }[] }[] }>(
      await fetch(`${second.url}/task/${id}/deliveries`),
    );
    expect(view.deliveries[0]?.state).toBe("delivered");
    expect(view.deliveries[0]?.attempts.at(-1)?.status_code).toBe(204);
  }
  const delivered = webhookIds.filter((id) => (seen.get(id)?.delivered ?? 0) >= 1).length;
  const duplicates = webhookIds.reduce((sum, id) => sum + Math.max(0, (seen.get(id)?.delivered ?? 0) - 1), 0);
  report("webhooks across kill -9", {
    accepted: TASKS,
    succeeded: delivered,
    failed: 0,
    reRuns: duplicates,
    extra: { attempts_before_kill: attemptsBeforeKill, delivered_after_restart_ms: deliveredMs },
  });
  expect(delivered).toBe(TASKS);
  expect(await second.stop()).toBe(0);
}, 180_000);
