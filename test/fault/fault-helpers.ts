/**
 * Shared pieces of the fault-injection tests: the real app against the
 * project's mock OpenAI server, submitting many tasks, and counting what
 * came out (accepted, succeeded, failed, re-run, lost).
 */
import { expect } from "bun:test";
import type { MetricsSnapshot } from "../../src/metrics/snapshot";

export { launchWithMock } from "../helpers/app-process";

import { json } from "../helpers/services";

export type Task = { task_id: string; status: string; result?: { response: string }; error?: { code: string } };

/** POSTs `count` distinct texts, `concurrency` at a time; returns the accepted ids and the other statuses seen. */
export async function submitMany(
  base: string,
  count: number,
  options: { concurrency?: number; label?: string; useCache?: boolean } = {},
): Promise<{ accepted: string[]; refused: Map<number, number> }> {
  const { concurrency = 200, label = "task", useCache = true } = options;
  const accepted: string[] = [];
  const refused = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const response = await fetch(`${base}/process`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: `${label} ${i}: ${crypto.randomUUID()}`, use_cache: useCache }),
      }).catch(() => undefined);
      if (response?.status === 202) accepted.push(((await response.json()) as { task_id: string }).task_id);
      else refused.set(response?.status ?? 0, (refused.get(response?.status ?? 0) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { accepted, refused };
}

export async function metricsOf(base: string): Promise<MetricsSnapshot> {
  return json<MetricsSnapshot>(await fetch(`${base}/metrics`));
}

/**
 * Each task's final state as its client sees it: GET /task/:id?wait= until it
 * ends (or the deadline passes), 200 at a time. Never read from /metrics: a
 * process killed -9 loses the counts it had not flushed yet (up to 1 s).
 */
export async function outcomes(base: string, ids: readonly string[], timeoutMs: number): Promise<Map<string, Task>> {
  const deadline = Date.now() + timeoutMs;
  const tasks = new Map<string, Task>();
  let next = 0;
  const reader = async () => {
    for (let i = next++; i < ids.length; i = next++) {
      const id = ids[i] as string;
      let task: Task | undefined;
      while (Date.now() < deadline) {
        task = await fetch(`${base}/task/${id}?wait=5000`)
          .then((r) => json<Task>(r))
          .catch(() => undefined);
        if (task && (task.status === "SUCCESS" || task.status === "FAILURE")) break;
        if (!task) await Bun.sleep(200);
      }
      tasks.set(id, task ?? { task_id: id, status: "UNKNOWN" });
    }
  };
  await Promise.all(Array.from({ length: 200 }, reader));
  return tasks;
}

/** Prints and checks the counts every fault test reports: nothing lost, re-runs shown, not hidden. */
export function report(
  name: string,
  counts: { accepted: number; succeeded: number; failed: number; reRuns: number; extra?: Record<string, unknown> },
): void {
  const lost = counts.accepted - counts.succeeded - counts.failed;
  console.log(
    `[fault] ${name}: accepted=${counts.accepted} succeeded=${counts.succeeded} failed=${counts.failed} ` +
      `re-run=${counts.reRuns} lost=${lost}${counts.extra ? ` ${JSON.stringify(counts.extra)}` : ""}`,
  );
  expect(lost).toBe(0);
}
