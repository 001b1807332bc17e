/**
 * The fine-tuning loop through the whole product, and its follower killed
 * with -9 (issue 17 §6): tasks are posted and answered by the mock OpenAI
 * server, a tenant rates them, an admin key starts a fine-tune of that
 * tenant's examples, and the app is killed while the job runs. A new app on
 * the same Redis takes the fine-tune over once the dead follower's lease
 * expires, and follows it to success; no second job is created. The
 * fine-tuned model joins a new experiment at 10 % of the task type's traffic,
 * and a user the experiment assigns to it gets the fine-tuned model's answer.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { FineTuneView } from "../../src/api/fine-tunes";
import { DEFAULT_PROMPTS } from "../../src/llm/prompts";
import { assignVariant, type Experiment, type Variant } from "../../src/store/experiments";
import { createMockOpenAiServer, type MockOpenAiServer } from "../../tools/mock-openai-server";
import { type AppProcess, launchWithMock } from "../helpers/app-process";
import { json, waitFor } from "../helpers/services";

const DB = 49;
const ADMIN = "ops-key-0123456789";
const TENANT = "web-key-0123456789";
const TASK_TYPE = "summarization";
const env = {
  API_KEYS: `ops:${ADMIN},web:${TENANT}`,
  API_ADMINS: "ops",
  FINETUNE_LEASE_MS: "1000",
  FINETUNE_POLL_MIN_MS: "100",
  FINETUNE_POLL_MAX_MS: "400",
};

let mock: MockOpenAiServer;
const apps: AppProcess[] = [];

beforeAll(() => {
  mock = createMockOpenAiServer({ port: 0, fineTuning: { validatingMs: 100, queuedMs: 100, runningMs: 4000 } });
});
afterAll(async () => {
  for (const app of apps) if (app.proc.exitCode === null) await app.stop();
  await mock.stop();
});

const call = (app: AppProcess, key: string, path: string, body?: unknown) =>
  fetch(`${app.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

async function answeredTask(app: AppProcess, text: string): Promise<string> {
  const accepted = await call(app, TENANT, "/process", { text, task_type: TASK_TYPE, use_cache: false });
  expect(accepted.status).toBe(202);
  const { task_id } = await json<{ task_id: string }>(accepted);
  const done = await json<{ status: string }>(await call(app, TENANT, `/task/${task_id}?wait=20000`));
  expect(done.status).toBe("SUCCESS");
  return task_id;
}

test("a fine-tune outlives its follower killed with -9: another process follows it to success", async () => {
  const first = await launchWithMock(mock, DB, env);
  apps.push(first);
  const good = Array.from({ length: 12 }, (_, n) => `The quarterly report number ${n} shows growth in region ${n}.`);
  for (const text of good) {
    const id = await answeredTask(first, text);
    expect((await call(first, TENANT, `/task/${id}/feedback`, { rating: 5 })).status).toBe(200);
  }
  const bad = "This rambling memo about nothing was summarised badly.";
  const badId = await answeredTask(first, bad);
  expect((await call(first, TENANT, `/task/${badId}/feedback`, { correct: false })).status).toBe(200);

  // Operators only: a tenant's key may not start a fine-tune.
  const forbidden = await call(first, TENANT, "/fine-tunes", { task_type: TASK_TYPE, tenant: "web" });
  expect(forbidden.status).toBe(403);

  const started = await call(first, ADMIN, "/fine-tunes", { task_type: TASK_TYPE, tenant: "web", suffix: "sum" });
  expect(started.status).toBe(202);
  const { id, counts } = await json<FineTuneView>(started);
  expect(counts).toMatchObject({ examples: 12, training: 11, validation: 1, skipped: 0 });
  await waitFor(
    async () => (await json<FineTuneView>(await call(first, ADMIN, `/fine-tunes/${id}`))).provider_status === "running",
    "the job to run",
  );

  first.proc.kill("SIGKILL");
  await first.proc.exited;
  const second = await launchWithMock(mock, DB, env, { keepDatabase: true });
  apps.push(second);
  const done = await waitFor(
    async () => {
      const view = await json<FineTuneView>(await call(second, ADMIN, `/fine-tunes/${id}`));
      return ["succeeded", "failed", "cancelled"].includes(view.status) ? view : undefined;
    },
    "the fine-tune to end under the new process",
    20_000,
    100,
  );
  expect(done.status).toBe("succeeded");
  expect(done.fine_tuned_model).toStartWith("ft:mock-model:aies:sum:");
  // Registered as a variant of a new experiment against what the task type runs today, at the default 10 %.
  const variant = done.variant as { experiment_id: string; variant: string };
  expect(variant).toBeDefined();
  const experiment = await json<Experiment & { variants: Variant[] }>(
    await call(second, ADMIN, `/experiments/${variant.experiment_id}`),
  );
  expect(experiment).toMatchObject({ task_type: TASK_TYPE, status: "running" });
  const ft = experiment.variants.find((v) => v.name === variant.variant);
  expect(ft?.model).toBe(`openai/${done.fine_tuned_model}`);
  const total = experiment.variants.reduce((sum, v) => sum + v.weight, 0);
  expect((ft?.weight ?? 0) / total).toBeCloseTo(0.1, 6);
  expect(mock.fineTuning.jobs()).toHaveLength(1);

  const uploaded = mock.fineTuning
    .files()
    .filter((file) => file.id === done.files?.training || file.id === done.files?.validation)
    .map((file) => file.content)
    .join("");
  const lines = uploaded
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { messages: { role: string; content: string }[] });
  expect(lines.map((line) => line.messages[1]?.content).sort()).toEqual([...good].sort());
  expect(lines.every((line) => line.messages[0]?.content === DEFAULT_PROMPTS[TASK_TYPE])).toBe(true);
  expect(uploaded).not.toContain(bad);

  // A user the experiment assigns to the new variant gets the fine-tuned model's answer (workers re-read
  // experiments within a second).
  await Bun.sleep(1500);
  const user = Array.from({ length: 1000 }, (_, n) => `user-${n}`).find(
    (u) => assignVariant(experiment, u)?.name === variant.variant,
  ) as string;
  const routed = await call(second, TENANT, "/process", {
    text: "The annual report shows steady growth.",
    task_type: TASK_TYPE,
    user_id: user,
    use_cache: false,
  });
  expect(routed.status).toBe(202);
  const { task_id } = await json<{ task_id: string }>(routed);
  const answer = await json<{
    status: string;
    result: { model: string; metadata: { provider: string; experiment?: { id: string; variant: string } } };
  }>(await call(second, TENANT, `/task/${task_id}?wait=20000`));
  expect(answer).toMatchObject({
    status: "SUCCESS",
    result: {
      model: done.fine_tuned_model as string,
      metadata: { provider: "openai", experiment: { id: variant.experiment_id, variant: variant.variant } },
    },
  });
  expect(await second.stop()).toBe(0);
}, 90_000);
