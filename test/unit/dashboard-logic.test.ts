import { describe, expect, test } from "bun:test";
import {
  countLabel,
  formatDuration,
  formatUsd,
  hitRatesByTier,
  labelOf,
  type MinuteCounts,
  matchesTaskFilter,
  partitionRows,
  polylinePoints,
  queueAcceptedPerSecond,
  queueSeries,
  ratesOf,
  type Sample,
  tasksQuery,
  taskTimings,
  truncate,
  upsertTask,
  workerAges,
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

describe("queues", () => {
  const q = (at: number, queues?: Record<string, Partial<Record<string, number>>>) => ({
    at,
    ...(queues
      ? {
          queues: Object.fromEntries(
            Object.entries(queues).map(([name, d]) => [
              name,
              { waiting: 0, active: 0, delayed: 0, failed: 0, accepted: 0, ...d },
            ]),
          ),
        }
      : {}),
  });

  test("each state's depth over the samples, one value per sample, 0 where the queue was not reported", () => {
    const samples = [q(0), q(1000, { fast: { waiting: 5, active: 2 } }), q(2000, { fast: { waiting: 1, failed: 3 } })];
    expect(queueSeries(samples, "fast")).toEqual({
      waiting: [0, 5, 1],
      active: [0, 2, 0],
      delayed: [0, 0, 0],
      failed: [0, 0, 3],
    });
    expect(queueSeries(samples, "other").waiting).toEqual([0, 0, 0]);
  });

  test("accepted per second comes from the queue's counter over the last two seconds, never negative", () => {
    const samples = [
      q(0, { fast: { accepted: 0 } }),
      q(1000, { fast: { accepted: 10 } }),
      q(3000, { fast: { accepted: 50 } }),
    ];
    expect(queueAcceptedPerSecond(samples, "fast")).toBe(20);
    expect(queueAcceptedPerSecond(samples.slice(0, 1), "fast")).toBeUndefined();
    expect(queueAcceptedPerSecond([q(0, { fast: { accepted: 9 } }), q(1000, { fast: { accepted: 1 } })], "fast")).toBe(
      0,
    );
  });
});

describe("workers", () => {
  const worker = (started: number, seen: number) => ({
    id: "w1",
    pid: 42,
    started_at: new Date(started).toISOString(),
    last_seen: new Date(seen).toISOString(),
  });
  const now = Date.parse("2026-01-01T12:00:00Z");

  test("uptime and heartbeat age are measured at the server's time; stale after twice the interval", () => {
    expect(workerAges(worker(now - 3_600_000, now - 1000), now, 2000)).toEqual({
      uptime_ms: 3_600_000,
      heartbeat_age_ms: 1000,
      stale: false,
    });
    expect(workerAges(worker(now - 10_000, now - 4000), now, 2000).stale).toBe(false);
    expect(workerAges(worker(now - 10_000, now - 4001), now, 2000).stale).toBe(true);
    // A beat that landed after the list's time is not a negative age.
    expect(workerAges(worker(now, now + 50), now, 2000).heartbeat_age_ms).toBe(0);
  });

  test("durations read as an operator would", () => {
    expect(formatDuration(850)).toBe("850 ms");
    expect(formatDuration(42_400)).toBe("42 s");
    expect(formatDuration(185_000)).toBe("3 m 05 s");
    expect(formatDuration(2 * 3_600_000 + 7 * 60_000)).toBe("2 h 07 m");
    expect(formatDuration(3 * 86_400_000 + 4 * 3_600_000)).toBe("3 d 04 h");
    expect(formatDuration(-1)).toBe("–");
  });
});

describe("tasks", () => {
  const none = { status: "", task_type: "", queue: "", tenant: "" };

  test("the list's query carries only the filters that are set, trimmed, and the page size", () => {
    expect(tasksQuery(none, 50)).toBe("limit=50");
    expect(tasksQuery({ ...none, status: "FAILURE", queue: " fast ", tenant: "web" }, 20)).toBe(
      "status=FAILURE&queue=fast&tenant=web&limit=20",
    );
  });

  test("a live completion joins the list only when it matches every filter set", () => {
    const done = { task_id: "t1", status: "SUCCESS", task_type: "summarization", queue: "default", tenant: "web" };
    expect(matchesTaskFilter(none, done)).toBe(true);
    expect(matchesTaskFilter({ ...none, status: "SUCCESS", task_type: "summarization" }, done)).toBe(true);
    expect(matchesTaskFilter({ ...none, status: "FAILURE" }, done)).toBe(false);
    expect(matchesTaskFilter({ ...none, tenant: "ops" }, done)).toBe(false);
    expect(matchesTaskFilter({ ...none, queue: "default" }, { task_id: "t2", status: "SUCCESS" })).toBe(false);
  });

  test("an ended task replaces its older row at the top, and the list keeps its size", () => {
    const rows = [
      { task_id: "a", status: "PENDING" },
      { task_id: "b", status: "SUCCESS" },
      { task_id: "c", status: "SUCCESS" },
    ];
    expect(upsertTask(rows, { task_id: "b", status: "FAILURE" }, 3).map((r) => `${r.task_id}:${r.status}`)).toEqual([
      "b:FAILURE",
      "a:PENDING",
      "c:SUCCESS",
    ]);
    expect(upsertTask(rows, { task_id: "d", status: "SUCCESS" }, 3).map((r) => r.task_id)).toEqual(["d", "a", "b"]);
  });

  test("timings come from the timestamps and the result; missing ones stay absent, none is negative", () => {
    expect(
      taskTimings({ accepted_at: 1000, started_at: 1250, finished_at: 2000, result: { processing_time: 0.5 } }),
    ).toEqual({ queued_ms: 250, processing_ms: 500, total_ms: 1000 });
    expect(taskTimings({ accepted_at: 1000 })).toEqual({});
    expect(taskTimings({ accepted_at: 2000, started_at: 1990 }).queued_ms).toBe(0);
  });

  test("a long text is cut with an ellipsis that says how long the whole was", () => {
    expect(truncate("short", 10)).toBe("short");
    expect(truncate("abcdefghij", 4)).toBe("abcd… (10 characters)");
    // The server already cut it to 1000 of 5000 characters.
    expect(truncate("x".repeat(1000), 1000, 5000)).toBe(`${"x".repeat(1000)}… (5000 characters)`);
  });
});

describe("cache and kafka", () => {
  test("each tier's hits are a share of every lookup, hits and misses; none before any lookup", () => {
    const rates = hitRatesByTier({ hits: 6, misses: 4, exact_hits: 3, semantic_hits: 2, single_flight_hits: 1 });
    expect(rates).toEqual({
      exact: { hits: 3, rate: 0.3 },
      semantic: { hits: 2, rate: 0.2 },
      single_flight: { hits: 1, rate: 0.1 },
    });
    expect(
      hitRatesByTier({ hits: 0, misses: 0, exact_hits: 0, semantic_hits: 0, single_flight_hits: 0 }).exact.rate,
    ).toBe(0);
  });

  test("partitions are listed by topic, then by partition number", () => {
    const entry = { lag: 1, committed: "5", at: 0 };
    const rows = partitionRows({ "b:0": entry, "a.x:10": entry, "a.x:9": entry });
    expect(rows.map((r) => `${r.topic}/${r.partition}`)).toEqual(["a.x/9", "a.x/10", "b/0"]);
  });

  test("dollars keep their significant digits when small, and say when they are negative", () => {
    expect(formatUsd(12.345)).toBe("$12.35");
    expect(formatUsd(0.012345)).toBe("$0.0123");
    expect(formatUsd(0.0000123)).toBe("$0.000012");
    expect(formatUsd(-0.5)).toBe("-$0.5000");
    expect(formatUsd(0)).toBe("$0");
  });
});
