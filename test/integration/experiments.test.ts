/**
 * Prompt experiments end to end (issue 17 §5): the real app (API + a worker
 * process) against the real Redis and the project's mock OpenAI server over
 * the real SDK.
 *
 * Two prompt versions at 50/50 over 2,000 tasks of 1,000 users: every user
 * gets one variant only, the split is within ±3 %, each result says its
 * prompt version and variant, and the longer prompt shows in the prompt
 * tokens the mock counted. The test then rates one variant's answers worse
 * (2–3 against 4–5): the report flags the rating difference as significant
 * and names the better variant its leader; ending the experiment makes it
 * the task type's default, which a task outside any experiment then gets.
 */
import { describe, expect, test } from "bun:test";
import type { TaskResult } from "../../src/task/contract";
import { mockAppPerTest } from "../helpers/app-process";
import { json, waitFor } from "../helpers/services";

type Task = { task_id: string; status: string; result?: TaskResult };
type Estimate = { value?: number; low?: number; high?: number; n: number };
type Report = {
  status: string;
  winner?: string | null;
  report: {
    variants: {
      name: string;
      tasks: number;
      failures: number;
      feedback: { rating: Estimate };
      latency_ms: { p50: number };
    }[];
    comparisons: {
      metric: string;
      variant: string;
      difference: number;
      p_value: number;
      significant: boolean;
      better: boolean;
    }[];
    leader: { variant: string; significant: boolean; reason: string };
  };
};

const harness = mockAppPerTest({ latencyMs: 1 });
const AB = [
  { name: "a", weight: 1 },
  { name: "b", weight: 1 },
];
const TASK_TYPE = "summarization";
const LONG_PROMPT =
  "You summarise the user's text for an executive audience. Keep every figure, name and date exact, " +
  "lead with the single most important fact, never speculate, and end with one sentence on what to do next. " +
  "Answer in at most two sentences.";

async function post(base: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: "POST",
    ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
}

/** Runs `work` over `items` with at most `limit` at a time. */
async function pool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await work(items[i] as T);
      }
    }),
  );
  return out;
}

async function submit(base: string, body: Record<string, unknown>): Promise<string> {
  const response = await post(base, "/process", { task_type: TASK_TYPE, use_cache: false, ...body });
  expect(response.status).toBe(202);
  return (await json<{ task_id: string }>(response)).task_id;
}

async function result(base: string, id: string): Promise<TaskResult> {
  const task = await waitFor(
    async () => {
      const t = await json<Task>(await fetch(`${base}/task/${id}?wait=5000`));
      return t.status === "SUCCESS" || t.status === "FAILURE" ? t : undefined;
    },
    `task ${id} to end`,
    60_000,
    10,
  );
  expect(task.status).toBe("SUCCESS");
  return task.result as TaskResult;
}

describe("prompt experiments (issue 17 §5)", () => {
  test("a 50/50 split of 2,000 tasks is sticky per user and within ±3 %; planted worse feedback is significant; the winner becomes the default", async () => {
    const { url } = await harness.launch(58);

    const version = await post(url, `/prompts/${TASK_TYPE}`, { prompt: LONG_PROMPT, note: "executive summary" });
    expect(version.status).toBe(201);
    expect(await version.json()).toMatchObject({ task_type: TASK_TYPE, version: 1, prompt: LONG_PROMPT });

    const created = await post(url, "/experiments", {
      id: "exec-summary",
      task_type: TASK_TYPE,
      variants: [
        { name: "control", weight: 1, prompt_version: 0 },
        { name: "executive", weight: 1, prompt_version: 1 },
      ],
    });
    expect(created.status).toBe(201);
    // A second one for the same task type is refused while this one runs.
    const twice = await post(url, "/experiments", {
      task_type: TASK_TYPE,
      variants: AB,
    });
    expect(twice.status).toBe(409);
    expect((await json<{ error: { code: string } }>(twice)).error.code).toBe("EXPERIMENT_ACTIVE");
    // Workers re-read experiments within a second of a change.
    await Bun.sleep(1500);

    const users = Array.from({ length: 1000 }, (_, i) => `user-${String(i).padStart(4, "0")}`);
    const jobs = users.flatMap((user) => [0, 1].map((n) => ({ user, text: `Report ${user} #${n}: revenue rose 4%.` })));
    const ids = await pool(jobs, 64, (job) => submit(url, { text: job.text, user_id: job.user }));
    const results = await pool(ids, 64, (id) => result(url, id));

    const variantOfUser = new Map<string, Set<string>>();
    const byVariant = new Map<string, { ids: string[]; promptTokens: number[] }>();
    results.forEach((r, i) => {
      const experiment = r.metadata.experiment;
      expect(experiment?.id).toBe("exec-summary");
      const variant = experiment?.variant as string;
      expect(r.metadata.prompt_version).toBe(variant === "executive" ? 1 : 0);
      const user = jobs[i]?.user as string;
      variantOfUser.set(user, (variantOfUser.get(user) ?? new Set()).add(variant));
      const entry = byVariant.get(variant) ?? { ids: [], promptTokens: [] };
      entry.ids.push(ids[i] as string);
      entry.promptTokens.push(r.metadata.prompt_tokens);
      byVariant.set(variant, entry);
    });
    expect([...variantOfUser.values()].every((set) => set.size === 1)).toBe(true);
    const control = byVariant.get("control");
    const executive = byVariant.get("executive");
    if (!control || !executive) throw new Error("a variant got no task");
    expect(control.ids.length + executive.ids.length).toBe(2000);
    expect(Math.abs(control.ids.length - 1000)).toBeLessThanOrEqual(60);
    // The longer prompt reached the provider: the mock counts the system message's tokens.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(executive.promptTokens)).toBeGreaterThan(mean(control.promptTokens) + 20);

    // Planted: the control's answers are rated 2–3, the executive's 4–5 (150 of each).
    const rate = (id: string, rating: number) =>
      post(url, `/task/${id}/feedback`, { rating }).then((r) => expect(r.status).toBe(200));
    await pool(control.ids.slice(0, 150), 32, (id) => rate(id, 2 + (id.charCodeAt(id.length - 1) % 2)));
    await pool(executive.ids.slice(0, 150), 32, (id) => rate(id, 4 + (id.charCodeAt(id.length - 1) % 2)));
    // A second rating of a task replaces its first in the variant's score.
    await rate(control.ids[0] as string, 3);
    // So do eight at the same instant: each replaces the one before it, and the task's 5 is taken off once.
    await rate(control.ids[1] as string, 5);
    await Promise.all(Array.from({ length: 8 }, () => rate(control.ids[1] as string, 1)));
    const finalRatings = control.ids
      .slice(0, 150)
      .map((id, i) => (i === 0 ? 3 : i === 1 ? 1 : 2 + (id.charCodeAt(id.length - 1) % 2)));

    const report = await waitFor(
      async () => {
        const r = await json<Report>(await fetch(`${url}/experiments/exec-summary`));
        const tasks = r.report.variants.reduce((sum, v) => sum + v.tasks, 0);
        const rated = r.report.variants.reduce((sum, v) => sum + v.feedback.rating.n, 0);
        return tasks === 2000 && rated === 300 ? r : undefined;
      },
      "the report to count every task and rating (metrics flush every second)",
      15_000,
      200,
    );
    const variants = new Map(report.report.variants.map((v) => [v.name, v]));
    expect(variants.get("control")?.tasks).toBe(control.ids.length);
    expect(variants.get("executive")?.tasks).toBe(executive.ids.length);
    expect(variants.get("control")?.feedback.rating.value).toBeCloseTo(mean(finalRatings), 9);
    expect(variants.get("control")?.feedback.rating.value).toBeLessThan(3.01);
    expect(variants.get("executive")?.feedback.rating.value).toBeGreaterThan(4.4);
    const rating = report.report.comparisons.find((c) => c.metric === "rating");
    expect(rating).toMatchObject({ variant: "executive", significant: true, better: true });
    expect(rating?.p_value).toBeLessThan(0.001);
    // No failures on either side: that difference is not significant.
    expect(report.report.comparisons.find((c) => c.metric === "failure_rate")?.significant).toBe(false);
    expect(report.report.leader).toMatchObject({ variant: "executive", significant: true });

    const ended = await post(url, "/experiments/exec-summary/end");
    expect(ended.status).toBe(200);
    expect(await ended.json()).toMatchObject({ status: "ended", winner: "executive" });
    const prompts = await json<{ default_version: number }>(await fetch(`${url}/prompts/${TASK_TYPE}`));
    expect(prompts.default_version).toBe(1);
    await Bun.sleep(1500);
    const after = await result(
      url,
      await submit(url, { text: "After the experiment: costs fell 2%.", user_id: "user-0001" }),
    );
    expect(after.metadata.prompt_version).toBe(1);
    expect(after.metadata.experiment).toBeUndefined();
  }, 120_000);

  test("pause, resume, a request's own model, and the errors an operator can make", async () => {
    const { url } = await harness.launch(59);
    expect((await post(url, `/prompts/no_such_type`, { prompt: "x" })).status).toBe(404);
    const unknownType = await post(url, "/experiments", {
      task_type: "no_such_type",
      variants: AB,
    });
    expect(unknownType.status).toBe(422);
    const missingVersion = await post(url, "/experiments", {
      id: "bad",
      task_type: TASK_TYPE,
      variants: [
        { name: "a", weight: 1 },
        { name: "b", weight: 1, prompt_version: 7 },
      ],
    });
    expect(missingVersion.status).toBe(422);
    expect((await json<{ error: { code: string } }>(missingVersion)).error.code).toBe("PROMPT_VERSION_NOT_FOUND");
    const sameNames = await post(url, "/experiments", {
      task_type: TASK_TYPE,
      variants: [
        { name: "a", weight: 1 },
        { name: "a", weight: 2 },
      ],
    });
    expect(sameNames.status).toBe(422);
    expect((await fetch(`${url}/experiments/nope`)).status).toBe(404);

    expect(
      (
        await post(url, "/experiments", {
          id: "ab",
          task_type: TASK_TYPE,
          variants: AB,
        })
      ).status,
    ).toBe(201);
    await Bun.sleep(1500);
    const enrolledId = await submit(url, { text: "Enrolled while running." });
    const enrolled = await result(url, enrolledId);
    expect(enrolled.metadata.experiment?.id).toBe("ab");
    // GraphQL shows the same assignment.
    const graphql = await post(url, "/graphql", {
      query: "query ($id: ID!) { task(id: $id) { result { metadata { prompt_version experiment { id variant } } } } }",
      variables: { id: enrolledId },
    });
    expect(await graphql.json()).toEqual({
      data: { task: { result: { metadata: { prompt_version: 0, experiment: enrolled.metadata.experiment } } } },
    });
    // A task that names its model is kept out: it would blur a comparison of models.
    const own = await result(url, await submit(url, { text: "My own model.", model: "mock-model" }));
    expect(own.metadata.experiment).toBeUndefined();

    expect(await (await post(url, "/experiments/ab/pause")).json()).toMatchObject({ status: "paused" });
    await Bun.sleep(1500);
    const paused = await result(url, await submit(url, { text: "While paused." }));
    expect(paused.metadata.experiment).toBeUndefined();

    expect(await (await post(url, "/experiments/ab/resume")).json()).toMatchObject({ status: "running" });
    const added = await post(url, "/experiments/ab/variants", { name: "c", weight: 0.5 });
    expect(added.status).toBe(201);
    expect(((await added.json()) as { variants: unknown[] }).variants).toHaveLength(3);
    await Bun.sleep(1500);
    const resumed = await result(url, await submit(url, { text: "After resume." }));
    expect(resumed.metadata.experiment?.id).toBe("ab");

    // Malformed JSON is refused, as everywhere: the optional body does not make it "no body".
    const malformed = await fetch(`${url}/experiments/ab/end`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "\u0000",
    });
    expect(malformed.status).toBe(400);
    // A misspelt field is refused by name, not dropped in silence (Elysia would strip it).
    const misspelt = await post(url, "/experiments/ab/end", { winnner: "b" });
    expect(misspelt.status).toBe(422);
    expect(await misspelt.json()).toMatchObject({
      error: { code: "VALIDATION_FAILED", details: { field: "winnner" } },
    });
    // Ended with no significant difference, the control stays; a named winner would replace it.
    const ended = await json<{ winner: string; outcome: string }>(await post(url, "/experiments/ab/end", {}));
    expect(ended.winner).toBe("a");
    expect(ended.outcome).toContain("control stays");
    expect((await post(url, "/experiments/ab/pause")).status).toBe(409);
    const list = await json<{ experiments: { id: string; status: string }[] }>(await fetch(`${url}/experiments`));
    expect(list.experiments.map((e) => [e.id, e.status])).toEqual([["ab", "ended"]]);
  }, 60_000);
});
