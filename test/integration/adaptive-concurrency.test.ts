/**
 * WORKER_JOBS_PER_PROCESS=auto (the default) in a real worker process against
 * the mock OpenAI server: with a slow LLM and a backlog, the process keeps
 * far more than the old fixed 32 jobs in flight; on a storm of 429s it backs
 * off (AIMD) and says so in /workers and /metrics/prometheus; with a rate
 * limit, it holds about rate × latency; and no task is lost on the way.
 */
import { expect, test } from "bun:test";
import type { JobsInFlightStatus } from "../../src/queue/adaptive-concurrency";
import { outcomes, submitMany } from "../fault/fault-helpers";
import { mockAppPerTest } from "../helpers/app-process";
import { json, waitFor } from "../helpers/services";

// One mock for the file (500 ms a call), an app per test, stopped after it with the mock's faults reset.
const harness = mockAppPerTest({ latencyMs: 500 });

type Workers = { workers: { id: string; concurrency: number; jobs_in_flight?: JobsInFlightStatus }[] };

async function status(base: string): Promise<JobsInFlightStatus> {
  const { workers } = await json<Workers>(await fetch(`${base}/workers`));
  const s = workers[0]?.jobs_in_flight;
  if (!s) throw new Error("no worker with a jobs_in_flight block yet");
  return s;
}

/** Samples /workers every 250 ms while `during` runs. */
async function sampled<T>(base: string, during: Promise<T>): Promise<{ value: T; samples: JobsInFlightStatus[] }> {
  const samples: JobsInFlightStatus[] = [];
  let done = false;
  const sampling = (async () => {
    while (!done) {
      samples.push(await status(base).catch(() => undefined as unknown as JobsInFlightStatus));
      await Bun.sleep(250);
    }
  })();
  const value = await during;
  done = true;
  await sampling;
  return { value, samples: samples.filter(Boolean) };
}

test("a slow LLM and a backlog: jobs in flight grow far past 32; 429s make them back off", async () => {
  // No circuit breaker: 429s beyond the wait budget count as its failures, and an open circuit would end the
  // storm this test is about (the calls would skip the mock) before a heartbeat shows the backoff.
  const app = await harness.launch(14, { WORKER_CONCURRENCY: "1", LLM_BREAKER_FAILURES: "0" });
  const base = app.url;
  await waitFor(async () => (await status(base)).mode === "auto", "the worker's first heartbeat");
  expect((await status(base)).limit).toBeLessThanOrEqual(64);

  const { accepted } = await submitMany(base, 3000, { label: "grow", useCache: false, concurrency: 100 });
  // The heartbeat (every 2 s) shows the limit and what is in flight.
  let grown: JobsInFlightStatus | undefined;
  await waitFor(
    async () => {
      const s = await status(base);
      if (s.in_flight >= 300) grown = s;
      return grown !== undefined;
    },
    "300 jobs in flight",
    20_000,
  );
  expect(grown?.limit).toBeGreaterThanOrEqual(300);
  // event_loop: a loaded test machine may slow the loop past its threshold while the backlog flows in.
  expect(["probing", "max", "latency", "event_loop"]).toContain(grown?.reason as string);
  expect(grown?.latency_ms).toBeGreaterThan(400);

  // A storm of 429s: the limit drops, and /workers says why.
  harness.mock.setFault({ kind: "429", endpoint: "chat", retryAfterSeconds: 1 });
  // The backlog may have drained by now: more tasks, so that calls meet the 429s.
  const more = await submitMany(base, 500, { label: "throttled", useCache: false, concurrency: 100 });
  accepted.push(...more.accepted);
  let backedOff: JobsInFlightStatus | undefined;
  await waitFor(
    async () => {
      const s = await status(base);
      if (s.reason === "429 backoff") backedOff = s;
      return backedOff !== undefined;
    },
    "a 429 backoff",
    20_000,
  );
  harness.mock.setFault({ kind: "none" });
  expect(backedOff?.limit).toBeLessThan((grown?.limit ?? 0) * 0.75);
  expect(backedOff?.throttled).toBeGreaterThan(0);

  const prometheus = await (await fetch(`${base}/metrics/prometheus`)).text();
  expect(prometheus).toMatch(/^aies_worker_jobs_in_flight_limit\{worker="[^"]+"\} \d+$/m);
  expect(prometheus).toMatch(/^aies_worker_jobs_in_flight_limit_reason\{worker="[^"]+",reason="429 backoff"\} [01]$/m);
  expect(prometheus).toMatch(/^aies_worker_llm_throttled_total\{worker="[^"]+"\} [1-9]\d*$/m);
  const metrics = await json<{ jobs_in_flight: { limit: number; workers: unknown[] } }>(await fetch(`${base}/metrics`));
  expect(metrics.jobs_in_flight.workers.length).toBe(1);

  // Every task still ends SUCCESS (429s are retried).
  const tasks = await outcomes(base, accepted, 120_000);
  expect([...tasks.values()].filter((t) => t.status !== "SUCCESS").length).toBe(0);
}, 180_000);

test("with a rate limit: about rate × latency in flight, not more", async () => {
  const app = await harness.launch(15, { WORKER_CONCURRENCY: "1", LLM_RATE_LIMIT: "200/1s" });
  const base = app.url;
  await waitFor(async () => (await status(base)).mode === "auto", "the worker's first heartbeat");
  const { value, samples } = await sampled(
    base,
    (async () => {
      const { accepted } = await submitMany(base, 1500, { label: "rate", useCache: false, concurrency: 100 });
      await Bun.sleep(4000);
      return accepted;
    })(),
  );
  const last = samples.at(-1) as JobsInFlightStatus;
  // 200/s × ~0.5 s × 1.2 headroom ≈ 120: the backlog does not pull more into `active`.
  expect(last.reason).toBe("rate_limit×latency");
  expect(last.limit).toBeGreaterThan(90);
  expect(last.limit).toBeLessThan(200);
  expect(Math.max(...samples.map((s) => s.in_flight))).toBeLessThanOrEqual(200);
  const tasks = await outcomes(base, value, 120_000);
  expect([...tasks.values()].filter((t) => t.status !== "SUCCESS").length).toBe(0);
}, 180_000);
