/**
 * The experiment store against the real Redis (store/experiments.ts): two
 * operators changing one experiment at once both land (compare-and-set),
 * and a new model (a fine-tuned one) joins its task type's experiment at the
 * share asked for, or starts one against the current default.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Redis from "ioredis";
import {
  assignVariant,
  createExperimentStore,
  type Experiment,
  type ExperimentStore,
  readSnapshot,
  registerModelVariant,
} from "../../src/store/experiments";
import { isolatedRedisUrl } from "../helpers/app-process";

let redis: Redis;
let store: ExperimentStore;

beforeAll(async () => {
  redis = new Redis(await isolatedRedisUrl(16), { protocol: 2 });
  store = createExperimentStore(redis);
});
afterAll(async () => {
  await redis.quit();
});

const experiment = (id: string, taskType: string): Experiment => ({
  id,
  task_type: taskType,
  status: "running",
  variants: [
    { name: "a", weight: 1, prompt_version: 0, added_at: 0 },
    { name: "b", weight: 1, prompt_version: 0, added_at: 0 },
  ],
  significance_level: 0.05,
  primary_metric: "rating",
  created_at: Date.now(),
  created_by: "test",
  updated_at: Date.now(),
});

describe("experiment store", () => {
  test("concurrent changes of one experiment all land; a second active one per task type is refused", async () => {
    await store.create(experiment("concurrent", "classification"));
    await expect(store.create(experiment("other", "classification"))).rejects.toMatchObject({
      code: "EXPERIMENT_ACTIVE",
    });
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        store.update("concurrent", (e) => ({
          ...e,
          variants: [...e.variants, { name: `v${i}`, weight: 1, prompt_version: 0, added_at: 0 }],
        })),
      ),
    );
    expect((await store.get("concurrent"))?.variants).toHaveLength(12);
    const snapshot = await readSnapshot(redis);
    expect(snapshot.active.get("classification")?.variants).toHaveLength(12);
  });

  test("a fine-tuned model joins the running experiment at the share asked; without one it starts its own", async () => {
    await store.create(experiment("running", "summarization"));
    const joined = await registerModelVariant(store, {
      taskType: "summarization",
      model: "openai/ft:gpt-4o-mini:aies::abc123",
      share: 0.1,
      source: "fine-tune:ftjob-abc123",
      by: "fine-tunes",
    });
    expect(joined.experiment_id).toBe("running");
    const running = (await store.get("running")) as Experiment;
    const added = running.variants.find((v) => v.name === joined.variant);
    expect(added?.model).toBe("openai/ft:gpt-4o-mini:aies::abc123");
    const total = running.variants.reduce((sum, v) => sum + v.weight, 0);
    expect((added?.weight ?? 0) / total).toBeCloseTo(0.1, 6);
    const users = Array.from({ length: 20_000 }, (_, i) => `u${i}`);
    const share = users.filter((u) => assignVariant(running, u)?.name === joined.variant).length / users.length;
    expect(Math.abs(share - 0.1)).toBeLessThan(0.01);

    // Registered again (a follower that died after registering): the first registration stands.
    const again = await registerModelVariant(store, {
      taskType: "summarization",
      model: "openai/ft:gpt-4o-mini:aies::abc123",
      share: 0.1,
      source: "fine-tune:ftjob-abc123",
      by: "fine-tunes",
    });
    expect(again).toEqual(joined);
    expect((await store.get("running"))?.variants).toHaveLength(3);

    const fresh = await registerModelVariant(store, {
      taskType: "question_answering",
      model: "openai/ft:gpt-4o-mini:aies::def456",
      share: 0.05,
      source: "fine-tune:ftjob-def456",
      by: "fine-tunes",
    });
    const created = (await store.get(fresh.experiment_id)) as Experiment;
    expect(created).toMatchObject({ task_type: "question_answering", status: "running" });
    expect(created.variants.map((v) => [v.name, v.weight])).toEqual([
      ["current", 0.95],
      [fresh.variant, 0.05],
    ]);
  });
});
