import { describe, expect, test } from "bun:test";
import {
  countLabel,
  labelOf,
  type MinuteCounts,
  polylinePoints,
  ratesOf,
  type Sample,
} from "../../src/api/dashboard/logic";

const sample = (at: number, n: Partial<Sample> & { tokens?: [number, number]; calls?: number } = {}): Sample => ({
  at,
  total_tasks: n.total_tasks ?? 0,
  completed_tasks: n.completed_tasks ?? 0,
  failed_tasks: n.failed_tasks ?? 0,
  retried_tasks: n.retried_tasks ?? 0,
  started_tasks: n.started_tasks ?? 0,
  latency_ms: { p50: 1, p95: 2, p99: 3 },
  llm: { calls: n.calls ?? 0, prompt_tokens: n.tokens?.[0] ?? 0, completion_tokens: n.tokens?.[1] ?? 0 },
});

describe("dashboard rates", () => {
  test("per-second rates come from the last two seconds of snapshots, per-minute ones from the last minute", () => {
    const samples = [
      sample(0, { total_tasks: 0, completed_tasks: 0, calls: 0, tokens: [0, 0] }),
      sample(58_000, { total_tasks: 500, completed_tasks: 400, calls: 400 }),
      sample(60_000, { total_tasks: 540, completed_tasks: 430, failed_tasks: 10, calls: 440, tokens: [2e6, 1e6] }),
    ];
    const rates = ratesOf(samples, { input: 0.15, output: 0.6 });
    expect(rates?.accepted_per_s).toBe(20);
    expect(rates?.completed_per_s).toBe(15);
    expect(rates?.failed_per_s).toBe(5);
    expect(rates?.failure_rate).toBeCloseTo(10 / 440);
    expect(rates?.llm_calls_per_min).toBe(440);
    expect(rates?.tokens_per_min).toBe(3e6);
    expect(rates?.cost_usd_per_min).toBeCloseTo(2 * 0.15 + 1 * 0.6);
  });

  test("in the first minute, per-minute rates are scaled up from what there is; without prices no cost", () => {
    const rates = ratesOf([sample(0), sample(10_000, { calls: 10, started_tasks: 20, retried_tasks: 5 })]);
    expect(rates?.llm_calls_per_min).toBe(60);
    expect(rates?.retry_rate).toBe(0.25);
    expect(rates?.cost_usd_per_min).toBeUndefined();
  });

  test("one snapshot gives no rates, and a counter that went down (Redis emptied) is not a negative rate", () => {
    expect(ratesOf([sample(0)])).toBeUndefined();
    const rates = ratesOf([sample(0, { completed_tasks: 100 }), sample(1000, { completed_tasks: 3 })]);
    expect(rates?.completed_per_s).toBe(0);
  });
});

describe("sentiment labels", () => {
  test("the label is the answer's first word, from a result or its text, in any case", () => {
    expect(labelOf({ response: "positive (confidence 0.70; lexicon score 2)" })).toBe("positive");
    expect(labelOf("  Negative. The customer is upset")).toBe("negative");
    expect(labelOf({ response: "neutral (confidence 0.50; lexicon score 0)" })).toBe("neutral");
  });

  test("anything that does not start with a label is unlabelled, not guessed", () => {
    expect(labelOf({ response: "The sentiment is positive" })).toBeUndefined();
    expect(labelOf({ response: "positively great" })).toBeUndefined();
    expect(labelOf(undefined)).toBeUndefined();
    expect(labelOf({ error: "x" })).toBeUndefined();
  });

  test("labels are counted per minute, keeping the last minutes only", () => {
    const buckets: MinuteCounts[] = [];
    countLabel(buckets, "positive", 60_000 + 5);
    countLabel(buckets, "positive", 60_000 + 59_999);
    countLabel(buckets, "negative", 120_000);
    expect(buckets).toEqual([
      { minute: 60_000, positive: 2, neutral: 0, negative: 0 },
      { minute: 120_000, positive: 0, neutral: 0, negative: 1 },
    ]);
    for (let m = 3; m < 20; m++) countLabel(buckets, "neutral", m * 60_000, 10);
    expect(buckets.length).toBe(10);
    expect(buckets[0]?.minute).toBe(10 * 60_000);
  });

  test("chart points span the box, 0 at the bottom, values over the top clipped to it", () => {
    expect(polylinePoints([0, 50, 200], 100, 10, 100)).toBe("0.0,10.0 50.0,5.0 100.0,0.0");
    expect(polylinePoints([], 100, 10, 100)).toBe("");
  });
});
