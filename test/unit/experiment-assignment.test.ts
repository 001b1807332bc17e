/**
 * Who gets which variant (store/experiments.ts): weighted rendezvous hashing
 * gives each variant its weight's share, keeps a user on one variant, and a
 * variant added later only takes users to itself. planTask: a paused
 * experiment or a request that names its model runs the default instead.
 */
import { describe, expect, test } from "bun:test";
import {
  assignVariant,
  EMPTY_SNAPSHOT,
  type Experiment,
  type ExperimentSnapshot,
  planTask,
  type Variant,
} from "../../src/store/experiments";

const variant = (name: string, weight: number, extra: Partial<Variant> = {}): Variant => ({
  name,
  weight,
  prompt_version: 0,
  added_at: 0,
  ...extra,
});

const experiment = (variants: Variant[], status: Experiment["status"] = "running"): Experiment => ({
  id: "exp-1",
  task_type: "summarization",
  status,
  variants,
  significance_level: 0.05,
  primary_metric: "rating",
  created_at: 0,
  created_by: "test",
  updated_at: 0,
});

const users = Array.from({ length: 100_000 }, (_, i) => `user-${i}`);

describe("assignVariant", () => {
  test("each variant gets its weight's share of users (100,000 users, within 1 %)", () => {
    const e = experiment([variant("a", 1), variant("b", 1), variant("c", 2)]);
    const counts = new Map<string, number>();
    for (const user of users) {
      const name = assignVariant(e, user)?.name ?? "none";
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    expect(Math.abs((counts.get("a") ?? 0) / users.length - 0.25)).toBeLessThan(0.01);
    expect(Math.abs((counts.get("b") ?? 0) / users.length - 0.25)).toBeLessThan(0.01);
    expect(Math.abs((counts.get("c") ?? 0) / users.length - 0.5)).toBeLessThan(0.01);
  });

  test("a user always gets the same variant; another experiment draws anew", () => {
    const e = experiment([variant("a", 1), variant("b", 1)]);
    for (const user of users.slice(0, 1000)) expect(assignVariant(e, user)?.name).toBe(assignVariant(e, user)?.name);
    const other = { ...e, id: "exp-2" };
    const moved = users.slice(0, 10_000).filter((u) => assignVariant(e, u)?.name !== assignVariant(other, u)?.name);
    expect(moved.length / 10_000).toBeGreaterThan(0.4);
    expect(moved.length / 10_000).toBeLessThan(0.6);
  });

  test("a variant added at a small weight takes about its share, and nobody moves between the others", () => {
    const before = experiment([variant("a", 1), variant("b", 1)]);
    const after = experiment([variant("a", 1), variant("b", 1), variant("ft", 0.1)]);
    let toNew = 0;
    for (const user of users) {
      const was = assignVariant(before, user)?.name;
      const now = assignVariant(after, user)?.name;
      if (now === "ft") toNew++;
      else expect(now).toBe(was);
    }
    expect(Math.abs(toNew / users.length - 0.1 / 2.1)).toBeLessThan(0.005);
  });
});

describe("planTask", () => {
  const prompts = new Map([["summarization:1", "Summarise in one line."]]);
  const snapshot = (e: Experiment): ExperimentSnapshot => ({
    ...EMPTY_SNAPSHOT,
    active: new Map([[e.task_type, e]]),
    prompts,
  });
  const split = experiment([variant("control", 1), variant("short", 1, { prompt_version: 1, model: "gpt-x" })]);

  test("an enrolled task gets its variant's prompt text, model and the experiment's reference", () => {
    const plans = users
      .slice(0, 200)
      .map((u) => planTask(snapshot(split), { task_id: u, task_type: "summarization", user_id: u }));
    const short = plans.find((p) => p?.experiment?.variant === "short");
    expect(short).toEqual({
      system: "Summarise in one line.",
      model: "gpt-x",
      prompt_version: 1,
      experiment: { id: "exp-1", variant: "short" },
    });
    expect(plans.find((p) => p?.experiment?.variant === "control")).toEqual({
      prompt_version: 0,
      experiment: { id: "exp-1", variant: "control" },
    });
  });

  test("a task that names its model, a paused experiment, another task type: not enrolled", () => {
    const task = { task_id: "t", task_type: "summarization", user_id: "u" };
    expect(planTask(snapshot(split), { ...task, model: "mine" })).toBeUndefined();
    expect(planTask(snapshot({ ...split, status: "paused" }), task)).toBeUndefined();
    expect(planTask(snapshot(split), { ...task, task_type: "classification" })).toBeUndefined();
  });

  test("outside an experiment the task type's default (an ended experiment's winner) applies", () => {
    const withDefault: ExperimentSnapshot = {
      ...EMPTY_SNAPSHOT,
      prompts,
      defaults: new Map([
        [
          "summarization",
          {
            task_type: "summarization",
            prompt_version: 1,
            model: "gpt-x",
            experiment_id: "exp-0",
            variant: "short",
            at: 0,
            by: "ops",
          },
        ],
      ]),
    };
    const task = { task_id: "t", task_type: "summarization" };
    expect(planTask(withDefault, task)).toEqual({
      system: "Summarise in one line.",
      model: "gpt-x",
      prompt_version: 1,
    });
    // A request's own model is kept; the default's prompt still applies.
    expect(planTask(withDefault, { ...task, model: "mine" })).toEqual({
      system: "Summarise in one line.",
      prompt_version: 1,
    });
  });
});
