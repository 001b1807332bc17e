/**
 * Issue 17's first step, end to end: the real app (API + worker processes)
 * against the real Redis, three providers behind the project's mock servers,
 * each through its real SDK over HTTP. One task type answered by an
 * OpenAI-compatible server, Anthropic and Cohere gives results of one
 * shape, each with its provider, model, usage and cost at the price table,
 * streamed or not; a 500 of the primary ends SUCCESS through the fallback; a
 * 400 never falls back; the circuit opens after N failures so that few calls
 * reach the failing mock while it is open, and closes after recovery.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_PRICES } from "../../src/llm/prices";
import type { TaskResult } from "../../src/task/contract";
import { createMockAnthropicServer } from "../../tools/mock-anthropic-server";
import { createMockCohereServer } from "../../tools/mock-cohere-server";
import { createMockOpenAiServer } from "../../tools/mock-openai-server";
import type { MockServer } from "../../tools/mock-provider-kit";
import { openSse, type ReceivedEvent } from "../../tools/sse-client";
import { type AppProcess, isolatedRedisUrl, startApp } from "../helpers/app-process";
import { json, waitFor } from "../helpers/services";

type Task = { task_id: string; status: string; result?: TaskResult; error?: { code: string; retriable: boolean } };
type Metrics = {
  completed_tasks: number;
  llm_costs: {
    total_usd: number;
    by: { tenant: string; provider: string; model: string; task_type: string; calls: number; cost_usd: number }[];
  };
  llm_routing: {
    fallbacks: number;
    fallback_pairs: { from: string; to: string; count: number }[];
    breakers: { model: string; opened: number; closed: number; skipped: number }[];
  };
};

const ANTHROPIC = "anthropic/claude-3-5-haiku-latest";
const COHERE = "cohere/command-r";
/** The OpenAI-compatible server's model: priced by the prices file, as any model missing from the built-in table. */
const OPENAI = "mock-model";
const OPENAI_PRICE = { input: 1.5, output: 7, cached_input: 0.5 };
const pricesFile = join(tmpdir(), `aies-prices-${process.pid}.json`);

let mocks: { openai: MockServer; anthropic: MockServer; cohere: MockServer };
let app: AppProcess | undefined;

beforeAll(async () => {
  mocks = {
    openai: createMockOpenAiServer({ latencyMs: 2 }),
    anthropic: createMockAnthropicServer({ latencyMs: 2 }),
    cohere: createMockCohereServer({ latencyMs: 2 }),
  };
  await Bun.write(pricesFile, JSON.stringify({ [`openai/${OPENAI}`]: OPENAI_PRICE }));
});
afterEach(async () => {
  const running = app;
  app = undefined;
  if (running) expect(await running.stop()).toBe(0);
  for (const mock of Object.values(mocks)) mock.reset();
});
afterAll(async () => {
  for (const mock of Object.values(mocks)) await mock.stop();
  await rm(pricesFile, { force: true });
});

async function launch(db: number, env: Record<string, string> = {}): Promise<AppProcess> {
  app = await startApp({
    REDIS_URL: await isolatedRedisUrl(db),
    LLM_PROVIDER: "openai",
    OPENAI_API_KEY: "sk-test-not-a-real-key",
    OPENAI_BASE_URL: mocks.openai.url,
    ANTHROPIC_API_KEY: "sk-ant-test-not-a-real-key",
    ANTHROPIC_BASE_URL: mocks.anthropic.url,
    COHERE_API_KEY: "co-test-not-a-real-key",
    COHERE_BASE_URL: mocks.cohere.url,
    LLM_MODEL: OPENAI,
    LLM_PRICES_FILE: pricesFile,
    JOB_BACKOFF_MS: "100",
    JOB_STALL_INTERVAL_MS: "1000",
    ...env,
  });
  return app;
}

async function submit(base: string, body: Record<string, unknown>): Promise<string> {
  const response = await fetch(`${base}/process`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ task_type: "summarization", use_cache: false, ...body }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { task_id: string }).task_id;
}

function waitForEnd(base: string, id: string): Promise<Task> {
  return waitFor(
    async () => {
      const task = await json<Task>(await fetch(`${base}/task/${id}?wait=5000`));
      return task.status === "SUCCESS" || task.status === "FAILURE" ? task : undefined;
    },
    `task ${id} to end`,
    30_000,
    10,
  );
}

/** The price table's cost of a result's own token counts, USD. */
function expectedCost(model: string, result: TaskResult): number {
  const price =
    model === OPENAI ? { input: OPENAI_PRICE.input, output: OPENAI_PRICE.output } : DEFAULT_PRICES.get(model);
  if (!price) throw new Error(`no price for ${model}`);
  return (result.metadata.prompt_tokens * price.input + result.metadata.completion_tokens * price.output) / 1e6;
}

const tokenText = (events: readonly ReceivedEvent[]) => {
  let text = "";
  for (const event of events) {
    if (event.event === "reset") text = "";
    else if (event.event === "token") text += (JSON.parse(event.data) as { text: string }).text;
  }
  return text;
};

const keysOf = (value: object): string[] => Object.keys(value).sort();

describe("one task type, three providers (issue 17)", () => {
  test("OpenAI-compatible, Anthropic and Cohere answer results of one shape, each with provider, model, usage and cost", async () => {
    const { url } = await launch(34);
    const text = "The quarterly report shows revenue grew while costs fell in every region.";
    const cases = [
      { model: OPENAI, provider: "openai", mock: mocks.openai },
      { model: ANTHROPIC, provider: "anthropic", mock: mocks.anthropic },
      { model: COHERE, provider: "cohere", mock: mocks.cohere },
    ];
    const results: TaskResult[] = [];
    for (const { model, provider, mock } of cases) {
      const task = await waitForEnd(url, await submit(url, { text, model }));
      expect(task.status).toBe("SUCCESS");
      const result = task.result as TaskResult;
      results.push(result);
      expect(result.metadata.provider).toBe(provider);
      expect(result.metadata.fallback).toBe(false);
      expect(result.model).toBe(model.replace(/^[a-z]+\//, ""));
      expect(result.metadata.prompt_tokens).toBeGreaterThan(0);
      expect(result.metadata.completion_tokens).toBeGreaterThan(0);
      // The mock's own counts are the result's: usage mapped from each wire format.
      expect(result.metadata.prompt_tokens).toBe(mock.counters().prompt_tokens);
      expect(result.metadata.completion_tokens).toBe(mock.counters().completion_tokens);
      expect(result.metadata.cost_usd).toBeCloseTo(expectedCost(model, result), 12);
      expect(result.metadata.cost_usd).toBeGreaterThan(0);
    }
    const [first, ...rest] = results as [TaskResult, ...TaskResult[]];
    for (const other of rest) {
      expect(keysOf(other)).toEqual(keysOf(first));
      expect(keysOf(other.metadata)).toEqual(keysOf(first.metadata));
    }

    // /metrics sums the cost per tenant, provider, model and task type; Prometheus says the same.
    const metrics = await waitFor(
      async () => {
        const m = await json<Metrics>(await fetch(`${url}/metrics`));
        return m.llm_costs.by.length === 3 ? m : undefined;
      },
      "/metrics to sum three models' costs",
      10_000,
      200,
    );
    const total = results.reduce((sum, r) => sum + (r.metadata.cost_usd ?? 0), 0);
    expect(metrics.llm_costs.total_usd).toBeCloseTo(total, 8);
    expect(metrics.llm_costs.by.map((e) => `${e.provider}/${e.model}`).sort()).toEqual(
      [`openai/${OPENAI}`, ANTHROPIC, COHERE].sort(),
    );
    for (const entry of metrics.llm_costs.by) expect(entry).toMatchObject({ task_type: "summarization", calls: 1 });
    const prometheus = await (await fetch(`${url}/metrics/prometheus`)).text();
    expect(prometheus).toContain(
      'aies_llm_task_cost_usd_total{tenant="",provider="anthropic",model="claude-3-5-haiku-latest",task_type="summarization"}',
    );
  });

  test("streaming works for each provider: the tokens join into the stored answer", async () => {
    const { url } = await launch(34);
    for (const mock of Object.values(mocks)) mock.setStream({ tokens: 30, tokenLatencyMs: 2 });
    for (const model of [OPENAI, ANTHROPIC, COHERE]) {
      const id = await submit(url, { text: `stream this through ${model}`, model, stream: true });
      const stream = await openSse(`${url}/task/${id}/stream`);
      await stream.ended;
      const tokens = stream.events.filter((e) => e.event === "token");
      expect(tokens.length).toBeGreaterThanOrEqual(5);
      const end = JSON.parse((stream.events.at(-1) as ReceivedEvent).data) as Task;
      expect(end.status).toBe("SUCCESS");
      expect(tokenText(stream.events)).toBe(end.result?.response as string);
      expect(end.result?.metadata.provider).toBe(model.includes("/") ? model.split("/")[0] : "openai");
    }
    for (const mock of Object.values(mocks)) expect(mock.counters().chat_streams).toBe(1);
  });

  test("a model the allow-list does not name is refused at once (422), naming the field", async () => {
    const { url } = await launch(34, { LLM_ALLOWED_MODELS: `${OPENAI},${ANTHROPIC}` });
    const refused = await fetch(`${url}/process`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "hello", model: COHERE }),
    });
    expect(refused.status).toBe(422);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("MODEL_NOT_ALLOWED");
    const task = await waitForEnd(url, await submit(url, { text: "hello", model: ANTHROPIC }));
    expect(task.status).toBe("SUCCESS");
  });
});

describe("fallback and circuit breaker (issue 17 §3)", () => {
  const fallbackEnv = { LLM_FALLBACKS: `${OPENAI}>${ANTHROPIC}>${COHERE}` };

  test("the primary answering 500 ends SUCCESS through the fallback, which the result and /metrics show", async () => {
    const { url } = await launch(35, fallbackEnv);
    mocks.openai.setFault({ kind: "500" });
    const task = await waitForEnd(url, await submit(url, { text: "the primary is down" }));
    expect(task.status).toBe("SUCCESS");
    expect(task.result?.metadata).toMatchObject({ provider: "anthropic", fallback: true });
    expect(task.result?.metadata.cost_usd).toBeCloseTo(expectedCost(ANTHROPIC, task.result as TaskResult), 12);
    expect(mocks.openai.counters().chat_requests).toBe(2); // the adapter's one in-call retry, then the fallback
    expect(mocks.anthropic.counters().chat_requests).toBe(1);
    const metrics = await waitFor(
      async () => {
        const m = await json<Metrics>(await fetch(`${url}/metrics`));
        return m.llm_routing.fallbacks > 0 ? m : undefined;
      },
      "/metrics to count the fallback",
      10_000,
      200,
    );
    expect(metrics.llm_routing.fallback_pairs).toEqual([{ from: `openai/${OPENAI}`, to: ANTHROPIC, count: 1 }]);
  });

  test("a fallback's answer is not cached under the route's model: answers of different models stay apart", async () => {
    const { url } = await launch(35, fallbackEnv);
    const text = "cache me only from the model I asked for";
    mocks.openai.setFault({ kind: "500" });
    const during = await waitForEnd(url, await submit(url, { text, use_cache: true }));
    expect(during.result?.metadata).toMatchObject({ provider: "anthropic", fallback: true });
    mocks.openai.setFault({ kind: "none" });
    const after = await waitForEnd(url, await submit(url, { text, use_cache: true }));
    expect(after.result).toMatchObject({ from_cache: false, metadata: { provider: "openai", fallback: false } });
    const again = await waitForEnd(url, await submit(url, { text, use_cache: true }));
    expect(again.result).toMatchObject({ from_cache: true, metadata: { provider: "openai", cost_usd: 0 } });
  });

  test("a model's own rate limit (LLM_MODEL_RATE_LIMITS) spaces its calls, shared through Redis", async () => {
    const { url } = await launch(35, { LLM_MODEL_RATE_LIMITS: `${ANTHROPIC}=5/1s` });
    const started = Date.now();
    const ids = await Promise.all(
      Array.from({ length: 10 }, (_, i) => submit(url, { text: `limited ${i}`, model: ANTHROPIC })),
    );
    const tasks = await Promise.all(ids.map((id) => waitForEnd(url, id)));
    expect(tasks.every((t) => t.status === "SUCCESS")).toBe(true);
    // 10 calls at 5 a second, evenly spaced: the last goes 1.8 s after the first.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1800);
    // Another model is not held back by it.
    const other = Date.now();
    await Promise.all(
      (await Promise.all(Array.from({ length: 10 }, (_, i) => submit(url, { text: `free ${i}`, model: COHERE })))).map(
        (id) => waitForEnd(url, id),
      ),
    );
    expect(Date.now() - other).toBeLessThan(1800);
  });

  test("a 400 of the request never falls back: the task fails at once, and no other provider is asked", async () => {
    const { url } = await launch(35, fallbackEnv);
    mocks.openai.setFault({ kind: "400" });
    const task = await waitForEnd(url, await submit(url, { text: "a bad request" }));
    expect(task.status).toBe("FAILURE");
    expect(task.error).toMatchObject({ code: "LLM_BAD_REQUEST", retriable: false });
    expect(mocks.openai.counters().chat_requests).toBe(1);
    expect(mocks.anthropic.counters().chat_requests + mocks.cohere.counters().chat_requests).toBe(0);
  });

  test("the breaker opens after N failures, few calls reach the failing mock while open, and it closes after recovery", async () => {
    const failures = 3;
    const cooldownMs = 1000;
    const { url } = await launch(35, {
      ...fallbackEnv,
      LLM_BREAKER_FAILURES: String(failures),
      LLM_BREAKER_COOLDOWN_MS: String(cooldownMs),
      WORKER_CONCURRENCY: process.env.AIES_BREAKER_WORKERS ?? "1",
    });
    mocks.openai.setFault({ kind: "500" });
    // Every task of the outage must end SUCCESS through the fallback. CI runs 40 tasks/s for 4 s; the issue's
    // 200 tasks/s for 30 s runs with AIES_BREAKER_RATE=200 AIES_BREAKER_SECONDS=30 (see the README).
    const rate = Number(process.env.AIES_BREAKER_RATE ?? 40);
    const count = rate * Number(process.env.AIES_BREAKER_SECONDS ?? 4);
    const submissions: Promise<string>[] = [];
    const started = Date.now();
    // Requests that reached the mock once the circuit was surely open (it opens within the first ~200 ms).
    let openSince: { at: number; requests: number } | undefined;
    for (let i = 0; i < count; i++) {
      submissions.push(submit(url, { text: `outage task ${i}` }));
      if (!openSince && Date.now() - started >= 1000)
        openSince = { at: Date.now(), requests: mocks.openai.counters().chat_requests };
      const due = started + ((i + 1) * 1000) / rate;
      if (due > Date.now()) await Bun.sleep(due - Date.now());
    }
    const ids = await Promise.all(submissions);
    const outageMs = Date.now() - started;
    const whileOpen = mocks.openai.counters().chat_requests - (openSince?.requests ?? 0);
    const openMs = Date.now() - (openSince?.at ?? started);
    const tasks = await Promise.all(ids.map((id) => waitForEnd(url, id)));
    expect(tasks.filter((t) => t.status !== "SUCCESS")).toEqual([]);
    expect(tasks.every((t) => t.result?.metadata.fallback === true)).toBe(true);
    const hits = mocks.openai.counters().chat_requests;
    const probes = Math.ceil(outageMs / cooldownMs) + 1;
    console.info(
      `breaker: ${hits} requests reached the failing mock for ${count} tasks over ${outageMs} ms; ${whileOpen} of them in the ${openMs} ms it was open`,
    );
    // Without a breaker: 2 requests a task (the in-call retry). While open: one probe (one request, no
    // retry) per cooldown for every process together, and a straggler or two.
    expect(whileOpen).toBeLessThanOrEqual(Math.ceil(openMs / cooldownMs) + 3);
    // Before it opened: the failures that open it (2 requests each) and the calls already in flight.
    expect(hits).toBeLessThanOrEqual(whileOpen + 2 * failures + rate);

    // Recovery: after a cooldown the probe succeeds, the circuit closes, and the primary answers again.
    mocks.openai.setFault({ kind: "none" });
    await Bun.sleep(cooldownMs + 200);
    const after = await waitFor(
      async () => {
        const task = await waitForEnd(url, await submit(url, { text: `after recovery ${crypto.randomUUID()}` }));
        return task.result?.metadata.fallback === false ? task : undefined;
      },
      "the primary to answer again",
      10_000,
      100,
    );
    expect(after.result?.metadata.provider).toBe("openai");
    const metrics = await waitFor(
      async () => {
        const m = await json<Metrics>(await fetch(`${url}/metrics`));
        const breaker = m.llm_routing.breakers.find((b) => b.model === `openai/${OPENAI}`);
        return breaker && breaker.closed >= 1 ? m : undefined;
      },
      "/metrics to show the circuit closed",
      10_000,
      200,
    );
    const breaker = metrics.llm_routing.breakers.find((b) => b.model === `openai/${OPENAI}`);
    expect(breaker?.opened).toBeGreaterThanOrEqual(1);
    expect(breaker?.skipped).toBeGreaterThan(count - 2 * (failures + probes) - 10);
    expect(metrics.llm_routing.fallbacks).toBeGreaterThanOrEqual(count);
  });
});
